// workerd (Cloudflare Workers) entry, picked by the `workerd` export condition that
// wrangler resolves: wrangler imports the .wasm as a compiled WebAssembly.Module (a
// Worker may not compile wasm from bytes); instantiate it synchronously (no I/O at
// module scope).
import { VccError, markReady } from "./errors.mjs";
import { __primeQueue, __setErrorClass, initSync } from "./vcc_auth.js";
import wasmModule from "./vcc_auth_bg.wasm";

initSync({ module: wasmModule });
// The wasm's futures schedule with a promise's `then`, not workerd's costlier
// `queueMicrotask` (see `prime_queue` in src/glue/js.rs).
__primeQueue();
__setErrorClass(VccError);
markReady();

export { VccClient } from "./client.mjs";
export { VccError };
