// A counter of queueMicrotask calls, imported first by the workerd test workers
// (tests/workerd/, tests/gateway/microtask/), so it is in place before vcc-auth's entry runs.
const real = globalThis.queueMicrotask;
let n = 0;
export function counter(task) {
  n += 1;
  real(task);
}
export const calls = () => n;
globalThis.queueMicrotask = counter;
