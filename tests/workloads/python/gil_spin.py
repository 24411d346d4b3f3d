"""Two threads spinning in pure Python: they hand the GIL to each other every 5 ms
(sys.getswitchinterval()), so each shows about half a CPU plus futex calls. Prints both threads'
kernel ids, then "hung"; the main thread waits in join."""
import sys
import threading

started = threading.Barrier(3)
printing = threading.Lock()


def spin_forever_in_python(name):
    with printing:
        sys.stdout.write(f"{name} tid={threading.get_native_id()}\n")
        sys.stdout.flush()
    started.wait()
    x = 0
    while True:
        x += 1


threads = [threading.Thread(target=spin_forever_in_python, args=(f"spinner{i}",), daemon=True) for i in (1, 2)]
for t in threads:
    t.start()
started.wait()
with printing:
    print("hung", flush=True)
for t in threads:
    t.join()
