// Healthy Node: a few timers and promises on the main thread and two worker_threads that sum a
// little and post the result back; everything settles and the process exits 0.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

if (!isMainThread) {
  let sum = 0;
  for (let i = 0; i < 200000; i++) sum += i % (workerData + 2);
  parentPort.postMessage(sum);
} else {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const worker = (n) =>
    new Promise((resolve, reject) => {
      const w = new Worker(__filename, { workerData: n });
      w.once('message', resolve);
      w.once('error', reject);
    });
  (async () => {
    const ticks = [];
    const timer = setInterval(() => ticks.push(Date.now()), 10);
    const sums = await Promise.all([worker(1), worker(2), sleep(30).then(() => 'slept')]);
    clearInterval(timer);
    console.log('sums', sums.join(' '), 'ticks', ticks.length > 0);
  })();
}
