(* Two threads take two mutexes in opposite orders (ABBA): each holds one and waits in Mutex.lock
   for the other. Prints both threads' kernel ids (from /proc/thread-self), then "hung". *)
let a = Mutex.create ()
let b = Mutex.create ()
let printing = Mutex.create ()

let tid () =
  let link = Unix.readlink "/proc/thread-self" in
  String.sub link (String.rindex link '/' + 1) (String.length link - String.rindex link '/' - 1)

let transfer name first second =
  Mutex.lock first;
  Mutex.lock printing;
  Printf.printf "%s tid=%s\n%!" name (tid ());
  Mutex.unlock printing;
  Thread.delay 0.3;
  Mutex.lock second;
  Mutex.unlock second;
  Mutex.unlock first

let () =
  let t1 = Thread.create (fun () -> transfer "a_then_b" a b) () in
  let t2 = Thread.create (fun () -> transfer "b_then_a" b a) () in
  Thread.delay 0.1;
  print_endline "hung";
  Thread.join t1;
  Thread.join t2
