// The gateway's entry (worker/build/, from `scripts/build-pkg.sh --gateway`): as
// workerd.mjs, but that build leaves VccClient out, so only Gateway and Broker exist.
// wrangler imports the .wasm as a compiled WebAssembly.Module; instantiate it
// synchronously (no I/O at module scope).
import wasmModule from "./vcc_auth_bg.wasm";
import { __primeQueue, initSync } from "./vcc_auth.js";

initSync({ module: wasmModule });
// The wasm's futures schedule with a promise's `then`, not workerd's costlier
// `queueMicrotask` (see `prime_queue` in src/glue/js.rs).
__primeQueue();

export { Broker, Gateway } from "./vcc_auth.js";
