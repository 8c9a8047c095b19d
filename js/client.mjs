// The class every entry exports. It adds two things to the wasm class: a cached
// `getToken` answered without entering the wasm (no string copy into linear memory, no
// call), and a clear error when vcc-auth/slim's `init()` has not run. The Rust side
// publishes a token into `__published` only while its cache says the token is fresh
// (before its refresh-ahead time, `until`), and deletes the entry the moment that cache
// entry changes (refresh, invalidate, a rejected token, close). This file decides
// nothing: it compares the clock with the time Rust gave it.
import { VccError, isReady } from "./errors.mjs";
import { VccClient as WasmVccClient } from "./vcc_auth.js";

export class VccClient extends WasmVccClient {
  #published;

  constructor(options) {
    if (!isReady()) throw new VccError("vcc-auth/slim: await init() before new VccClient()", "invalid_config");
    super(options);
    this.#published = this.__published;
  }

  getToken(scope) {
    const entry = this.#published.get(scope);
    if (entry !== undefined && Date.now() < entry.until) return Promise.resolve(entry.token);
    return super.getToken(scope);
  }
}
