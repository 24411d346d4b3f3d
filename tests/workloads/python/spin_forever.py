"""One thread spinning forever in a named Python function: CPython's interpreter loop on a CPU,
no syscalls. Prints its kernel thread id, then "hung"."""
import threading


def spin_forever_in_python():
    x = 0
    while True:
        x = (x * 31 + 7) & 0xFFFF


print(f"main tid={threading.get_native_id()}")
print("hung", flush=True)
spin_forever_in_python()
