// The class of every error the client rejects or throws. JS, not wasm: a class the wasm
// defined could not be `extends Error`. Each entry hands it to the wasm once
// (`__setErrorClass`), which then builds every error as an instance of it.
export class VccError extends Error {
  constructor(message, code = "invalid_config") {
    super(message);
    this.name = "VccError";
    this.code = code;
  }
}

let ready = false;
/** For the entries: the wasm is instantiated and knows the error class. */
export function markReady() {
  ready = true;
}
/** Whether an entry has instantiated the wasm (vcc-auth/slim: not before `init()`). */
export function isReady() {
  return ready;
}
