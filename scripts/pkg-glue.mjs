// The npm package's edits to wasm-bindgen's output (scripts/build-pkg.sh says why), each
// on an exact text of wasm-bindgen 0.2.130 (pinned): a text that is not found fails the
// build, so a new wasm-bindgen cannot slip past them. Usage: node scripts/pkg-glue.mjs <dir>
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
function edit(file, from, to) {
  const path = join(dir, file);
  const text = readFileSync(path, "utf8");
  if (!text.includes(from)) throw new Error(`${file}: the text to replace is not there (a new wasm-bindgen?): ${from.slice(0, 80)}`);
  writeFileSync(path, text.replace(from, to));
}

edit(
  "vcc_auth.js",
  "    if (module_or_path === undefined) {\n        module_or_path = new URL('vcc_auth_bg.wasm', import.meta.url);\n    }\n",
  "    if (module_or_path === undefined) {\n        throw new Error('vcc-auth: init() needs the wasm (vcc-auth/slim passes it)');\n    }\n",
);
edit("vcc_auth.d.ts", "    [Symbol.dispose](): void;\n", "");
// Everything from the init types to the end: the entries instantiate the wasm.
const dts = join(dir, "vcc_auth.d.ts");
const text = readFileSync(dts, "utf8");
const at = text.indexOf("export type InitInput =");
if (at < 0) throw new Error("vcc_auth.d.ts: no InitInput (a new wasm-bindgen?)");
writeFileSync(dts, `${text.slice(0, at).trimEnd()}\n`);
