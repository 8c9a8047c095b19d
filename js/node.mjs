// Node 20+ entry: compile the wasm synchronously at import, so `import { VccClient }
// from "vcc-auth"` works with no init call.
import { readFileSync } from "node:fs";
import { initSync } from "./vcc_auth.js";

initSync({ module: readFileSync(new URL("./vcc_auth_bg.wasm", import.meta.url)) });

export * from "./vcc_auth.js";
export { VccClient } from "./client.mjs";
