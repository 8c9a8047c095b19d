// The class every entry exports. It adds one thing to the wasm class: a cached
// `getToken` answered without entering the wasm (no string copy into linear memory, no
// call). The Rust side publishes a token into `__published` only while its cache says
// the token is fresh (before its refresh-ahead time, `until`), and deletes the entry the
// moment that cache entry changes (refresh, invalidate, a rejected token, close). This
// file decides nothing: it compares the clock with the time Rust gave it.
import { VccClient as WasmVccClient } from "./vcc_auth.js";

export class VccClient extends WasmVccClient {
  #published;

  constructor(options) {
    super(options);
    this.#published = this.__published;
  }

  getToken(scope) {
    const entry = this.#published.get(scope);
    if (entry !== undefined && Date.now() < entry.until) return Promise.resolve(entry.token);
    return super.getToken(scope);
  }
}
