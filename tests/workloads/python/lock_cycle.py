"""Two threads take two threading.Locks in opposite orders: each holds one and waits to acquire
the other (CPython records no lock owner). Prints both threads' kernel ids, then "hung"."""
import threading
import time

a = threading.Lock()
b = threading.Lock()
printing = threading.Lock()


def transfer(name, first, second):
    with first:
        with printing:
            print(f"{name} tid={threading.get_native_id()}", flush=True)
        time.sleep(0.3)
        with second:
            pass


t1 = threading.Thread(target=transfer, args=("a_then_b", a, b))
t2 = threading.Thread(target=transfer, args=("b_then_a", b, a))
t1.start()
t2.start()
time.sleep(0.1)
print("hung", flush=True)
t1.join()
t2.join()
