(* Healthy OCaml threads: four threads each add to a shared counter under a Mutex, the main thread
   joins them and exits 0. The runtime's tick thread runs meanwhile, as in every threaded program. *)
let counter = ref 0
let m = Mutex.create ()

let work n =
  for _ = 1 to 2000 do
    Mutex.lock m;
    counter := !counter + n;
    Mutex.unlock m
  done;
  Thread.delay 0.05

let () =
  let threads = List.init 4 (fun i -> Thread.create work (i + 1)) in
  List.iter Thread.join threads;
  Printf.printf "counter %d\n%!" !counter
