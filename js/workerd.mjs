// workerd (Cloudflare Workers) entry: wrangler imports the .wasm as a compiled
// WebAssembly.Module; instantiate it synchronously (no I/O at module scope).
import wasmModule from "./vcc_auth_bg.wasm";
import { initSync } from "./vcc_auth.js";

initSync({ module: wasmModule });

export * from "./vcc_auth.js";
export { VccClient } from "./client.mjs";
