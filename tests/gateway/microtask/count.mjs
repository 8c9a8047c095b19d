// Imported before the gateway, so the counter is in place when the gateway's entry runs.
const real = globalThis.queueMicrotask;
let n = 0;
export function counter(task) {
  n += 1;
  real(task);
}
export const calls = () => n;
globalThis.queueMicrotask = counter;
