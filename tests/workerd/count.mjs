// A counter of queueMicrotask calls, imported first by the workerd test workers
// (tests/workerd/, tests/gateway/microtask/), so it is in place before vcc-auth's entry runs.
// It replaces the function where workerd defines it, on the global's prototype, not on
// the global itself: so vcc-auth's entry meets the global as it is in production.
let holder = globalThis;
while (holder !== null && !Object.hasOwn(holder, "queueMicrotask")) holder = Object.getPrototypeOf(holder);
const real = globalThis.queueMicrotask;
let n = 0;
export function counter(task) {
  n += 1;
  real(task);
}
export const calls = () => n;
Object.defineProperty(holder ?? globalThis, "queueMicrotask", { value: counter, configurable: true, writable: true });
/** Whether the global is as it was: the counter, found where it was put. */
export const restored = () =>
  globalThis.queueMicrotask === counter && Object.hasOwn(globalThis, "queueMicrotask") === (holder === globalThis);
