"""Healthy CPython threading: four threads each sum a little under a Lock, a Condition hands a
result back, and the program exits 0."""
import threading

total = 0
lock = threading.Lock()
done = threading.Condition()
finished = 0


def work(n):
    global total, finished
    s = sum(i % (n + 2) for i in range(20000))
    with lock:
        total += s
    with done:
        finished += 1
        done.notify()


threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
with done:
    done.wait_for(lambda: finished == 4, timeout=10)
for t in threads:
    t.join()
print("total", total)
