// The default entry: Node 20+, browsers, Deno, Bun, and whatever bundles them (Vite,
// webpack, Rollup, esbuild, Next.js), with no init call and no file to serve or find:
// the wasm is inlined (base64, wasm-inline.mjs) and instantiated synchronously here, so
// there is no top-level await and no `new URL(…, import.meta.url)` for a bundler to move.
// The cost: ~30 % more bytes than the .wasm alone (docs in the README, "Using it with");
// vcc-auth/slim serves the .wasm as its own file instead.
import { VccError, markReady } from "./errors.mjs";
import { __setErrorClass, initSync } from "./vcc_auth.js";
import base64 from "./wasm-inline.mjs";

/** The wasm's bytes from base64: the platform's decoder where there is one. */
function decode(text) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

initSync({ module: decode(base64) });
__setErrorClass(VccError);
markReady();

export { VccClient } from "./client.mjs";
export { VccError };
