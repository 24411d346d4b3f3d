// One JavaScript function spinning forever on the main thread, as a prerender service pegging a
// core inside V8 does: no syscalls, the code JIT-compiled into anonymous memory. Prints its pid
// and "hung" before it starts.
function spinForeverInJs() {
  let x = 0;
  for (;;) {
    x = (x * 31 + 7) | 0;
  }
}
console.log(`main tid=${process.pid}`);
console.log("hung");
spinForeverInJs();
