(* The handler-mutex shape of a real hang: the handler thread holds the runtime mutex while it
   blocks reading a pipe for a reply, and the thread that would write the reply must take that
   mutex first. OCaml's tick thread meanwhile wakes every 50 ms (select/pselect6). Prints both
   threads' kernel ids (from /proc/thread-self), then "hung". *)
let runtime_mutex = Mutex.create ()
let reply_r, reply_w = Unix.pipe ()

let tid () =
  let link = Unix.readlink "/proc/thread-self" in
  String.sub link (String.rindex link '/' + 1) (String.length link - String.rindex link '/' - 1)

let handle_request () =
  Mutex.lock runtime_mutex;
  Printf.printf "handler tid=%s holds the runtime mutex and reads the reply pipe\n%!" (tid ());
  let buf = Bytes.create 1 in
  ignore (Unix.read reply_r buf 0 1);
  Mutex.unlock runtime_mutex

let send_reply () =
  Thread.delay 0.2;
  Printf.printf "replier tid=%s waits for the runtime mutex\nhung\n%!" (tid ());
  Mutex.lock runtime_mutex;
  ignore (Unix.write_substring reply_w "r" 0 1);
  Mutex.unlock runtime_mutex

let () =
  let handler = Thread.create handle_request () in
  let replier = Thread.create send_reply () in
  Thread.join handler;
  Thread.join replier;
  print_endline "unreachable"
