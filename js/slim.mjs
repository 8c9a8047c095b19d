// vcc-auth/slim: the same client, with the wasm as its own file (vcc_auth_bg.wasm),
// compiled while it downloads, after an explicit `await init()`. For pages that want
// the smaller download; everything else uses the default entry. `init()` takes the
// wasm as a WebAssembly.Module, its bytes, a Response, a URL (or a promise of one);
// without an argument it fetches the .wasm next to this file.
import { VccError, markReady } from "./errors.mjs";
import initWasm, { __setErrorClass } from "./vcc_auth.js";

let ready;

/** Instantiates the wasm once (later calls share the first); retried after a failure. */
export function init(input) {
  ready ??= initWasm({ module_or_path: input ?? new URL("./vcc_auth_bg.wasm", import.meta.url) }).then(
    () => {
      __setErrorClass(VccError);
      markReady();
    },
    (e) => {
      ready = undefined;
      throw e;
    },
  );
  return ready;
}

export { VccClient } from "./client.mjs";
export { VccError };
