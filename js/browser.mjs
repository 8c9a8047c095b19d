// Browser entry: top-level await fetches and instantiates the wasm (streaming), so by
// the time `import { VccClient } from "vcc-auth"` resolves the client is ready.
import init from "./vcc_auth.js";

await init({ module_or_path: new URL("./vcc_auth_bg.wasm", import.meta.url) });

export * from "./vcc_auth.js";
export { VccClient } from "./client.mjs";
