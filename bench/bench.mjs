// `make bench`: figures, not pass/fail. Prints a markdown table; with
// BENCH_UPDATE_README=1 it also replaces the table in README.md.
// Needs VCC_EMULATOR_URL (make bench runs it under scripts/with-emulator.sh) and pkg/.
import { readFileSync, writeFileSync, mkdtempSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VccClient } from "../pkg/index.mjs";
import { initSync } from "../pkg/vcc_auth.js";
import { gatewayRows } from "./gateway-bench.mjs";
import { brokerRows } from "./broker-bench.mjs";
import { storeRows } from "./store-bench.mjs";
import { EMU, clientOptions, newClient, stats } from "../tests/emulator.mjs";

const root = new URL("../", import.meta.url).pathname;
if (!EMU) throw new Error("VCC_EMULATOR_URL is not set (run via make bench)");
const gc = globalThis.gc ?? (() => {});
const rows = [];
const row = (what, figure, goal, note = "") => {
  rows.push([what, figure, goal, note]);
  console.error(`  ${what}: ${figure}${note ? ` (${note})` : ""}`);
};
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;

const newClientOptions = async () => clientOptions(await newClient("bench"));

// 1. Size of what a browser downloads, gzipped, per entry: the default one (wasm inlined
// as base64 in a module) and vcc-auth/slim (the .wasm as its own file), each with the
// JS glue (wasm-bindgen's module, the entry, the classes, the JS helpers in snippets/).
console.error("size");
const wasm = readFileSync(join(root, "pkg/vcc_auth_bg.wasm"));
const snippets = readdirSync(join(root, "pkg/snippets"), { recursive: true })
  .filter((f) => f.endsWith(".js"))
  .map((f) => join("snippets", f));
const shared = ["vcc_auth.js", "client.mjs", "errors.mjs", ...snippets];
const glueFiles = ["slim.mjs", ...shared];
const gz = (files) => gzipSync(Buffer.concat(files.map((f) => readFileSync(join(root, "pkg", f)))), { level: 9 }).length;
const gzWasm = gzipSync(wasm, { level: 9 }).length;
const gzGlue = gz(glueFiles);
const gzDefault = gz(["index.mjs", "wasm-inline.mjs", ...shared]);
let dominates = "";
try {
  // Same build with names kept, optimised like the package, read by twiggy.
  const dir = mkdtempSync(join(tmpdir(), "vcc-size-"));
  execFileSync("wasm-bindgen", [
    "--target",
    "web",
    "--keep-debug",
    "--out-dir",
    dir,
    join(root, "target/wasm32-unknown-unknown/release/vcc_auth.wasm"),
  ]);
  execFileSync(join(root, "node_modules/.bin/wasm-opt"), [join(dir, "vcc_auth_bg.wasm"), "-Oz", "-g", "-o", join(dir, "named.wasm")]);
  const items = JSON.parse(execFileSync("twiggy", ["top", "-n", "100000", "-f", "json", join(dir, "named.wasm")], { maxBuffer: 64 << 20 }));
  const byCrate = new Map();
  let code = 0;
  for (const { name, shallow_size: size } of items) {
    if (/names|custom section|^type\[|^import |^export |^table|^elem/.test(name)) continue;
    const m = name.replace(/^<+/, "").match(/^([A-Za-z_][A-Za-z0-9_]*)/);
    const crate = name.startsWith("data segment") ? "data (strings, tables)" : m ? m[1] : "other";
    byCrate.set(crate, (byCrate.get(crate) ?? 0) + size);
    code += size;
  }
  dominates = [...byCrate]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([c, s]) => `${c} ${Math.round((100 * s) / code)} %`)
    .join(", ");
} catch (e) {
  dominates = `twiggy unavailable (${e.message.split("\n")[0]})`;
}
row(
  "gzip size, vcc-auth/slim: wasm + JS glue",
  kb(gzWasm + gzGlue),
  "",
  `wasm ${kb(gzWasm)} (${kb(wasm.length)} raw) + glue ${kb(gzGlue)}; by crate: ${dominates}`,
);
row(
  "gzip size, default entry (wasm inlined as base64)",
  kb(gzDefault),
  "",
  `${((100 * gzDefault) / (gzWasm + gzGlue) - 100).toFixed(0)} % over vcc-auth/slim; no asset to serve or find`,
);
// Start: from a new Node process's import to a usable client, per entry (median of 7:
// V8 keeps compiled modules for a process's life, so each sample is a new process).
const START = (entry) => `
const t0 = performance.now();
const m = await import(${JSON.stringify(join(root, "pkg", entry))});
if (m.init) await m.init((await import("node:fs")).readFileSync(${JSON.stringify(join(root, "pkg/vcc_auth_bg.wasm"))}));
new m.VccClient({ region: "emea", clientId: "x", clientSecret: "y" }).close();
console.log(performance.now() - t0);`;
const startOf = (entry) => {
  const xs = [];
  for (let i = 0; i < 7; i++)
    xs.push(Number(execFileSync(process.execPath, ["--input-type=module", "-e", START(entry)], { encoding: "utf8" })));
  return xs.sort((a, b) => a - b)[3];
};
const [startDefault, startSlim] = [startOf("index.mjs"), startOf("slim.mjs")];
row(
  "start in Node: import to a first client",
  `${startDefault.toFixed(1)} ms default, ${startSlim.toFixed(1)} ms slim`,
  "",
  "a new Node process each (the default entry decodes its base64 and compiles synchronously; slim compiles bytes read from disk); median of 7",
);

// 1b. The demo page: what gateway mode downloads (each file gzipped, as served), and
// what opening direct mode adds (its module, the wasm and the glue). The baseline is
// the package alone: gateway mode should cost a fraction of it.
const gzFiles = (dir, files) => files.reduce((n, f) => n + gzipSync(readFileSync(join(root, dir, f)), { level: 9 }).length, 0);
const pageGateway = gzFiles("www", ["index.html", "style.css", "app.js", "ui.js"]);
const pageDirect = gzFiles("www", ["direct.js"]) + gzFiles("pkg", ["vcc_auth_bg.wasm", ...glueFiles]);
row(
  "demo page download, gzipped",
  `${kb(pageGateway)} gateway mode`,
  "",
  `direct mode adds ${kb(pageDirect)} on demand (wasm + glue + direct.js); no framework, no CDN`,
);

// 2. Cached getToken against a pure-JS Map + expiry check, same process, same await.
console.error("cached getToken");
const scope = "agents-availability:read";
const client = new VccClient({ ...(await newClientOptions()), autoRefresh: false });
const token = await client.getToken(scope);
const map = new Map([[scope, { token, expiresAt: Date.now() + 3_600_000 }]]);
async function jsGetToken(s) {
  const e = map.get(s);
  if (e && e.expiresAt - 60_000 > Date.now()) return e.token;
  throw new Error("miss");
}
async function timeLoop(fn, n) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(scope);
  return Number(process.hrtime.bigint() - t) / n;
}
const N = 200_000;
await timeLoop(jsGetToken, N);
await timeLoop((s) => client.getToken(s), N);
const wasmNs = [],
  jsNs = [];
for (let round = 0; round < 5; round++) {
  jsNs.push(await timeLoop(jsGetToken, N));
  wasmNs.push(await timeLoop((s) => client.getToken(s), N));
}
const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
const w = median(wasmNs),
  j = median(jsNs);
row(
  "cached getToken, ns/call",
  `${w.toFixed(0)} ns vs ${j.toFixed(0)} ns JS Map: ${(w / j).toFixed(2)}×`,
  "≤ 1.5×",
  `median of 5 × ${N / 1000}k awaited calls`,
);

// 3. Cold stampede: 1000 concurrent callers, one token request.
console.error("cold stampede");
const coldOpts = await newClientOptions();
const cold = new VccClient({ ...coldOpts, autoRefresh: false });
const tokens = await Promise.all(Array.from({ length: 1000 }, () => cold.getToken("stats")));
const requests = (await stats(coldOpts.clientId)).tokenRequests.stats;
row("token requests for 1000 concurrent cold callers", String(requests), "1", `${new Set(tokens).size} distinct token(s) handed out`);
cold.close();

// 4. Memory: 1 M cached calls, then 10 k rotations against the emulator.
console.error("memory");
const memory = initSync({ module: wasm }).memory; // already initialised: returns the live exports
const snapshot = () => {
  gc();
  gc();
  return { wasm: memory.buffer.byteLength, heap: process.memoryUsage().heapUsed };
};
// "Flat" is judged on the second half against the first: the first calls warm up
// V8 and undici (plain fetch alone grows the heap ~1.5 MB before it plateaus).
const m0 = snapshot();
for (let i = 0; i < 500_000; i++) await client.getToken(scope);
const mHalf = snapshot();
for (let i = 0; i < 500_000; i++) await client.getToken(scope);
const m1 = snapshot();
const rotOpts = await newClientOptions();
const rot = new VccClient({ ...rotOpts, autoRefresh: false });
await rot.getToken("stats");
const rotate = async (n) => {
  for (let i = 0; i < n; i++) {
    rot.invalidate("stats");
    await rot.getToken("stats");
  }
};
const r0 = snapshot();
const t0 = Date.now();
await rotate(5_000);
const rHalf = snapshot();
await rotate(5_000);
const rotMs = Date.now() - t0;
const r1 = snapshot();
const delta = (a, b) => `${b - a >= 0 ? "+" : "−"}${mb(Math.abs(b - a))}`;
row(
  "1 M cached calls: wasm memory / JS heap",
  `${mb(m1.wasm)} / ${mb(m1.heap)}`,
  "flat",
  `second 500 k: wasm ${delta(mHalf.wasm, m1.wasm)}, heap ${delta(mHalf.heap, m1.heap)} (start ${mb(m0.wasm)} / ${mb(m0.heap)})`,
);
row(
  "10 k token rotations: wasm memory / JS heap",
  `${mb(r1.wasm)} / ${mb(r1.heap)}`,
  "flat",
  `second 5 k: wasm ${delta(rHalf.wasm, r1.wasm)}, heap ${delta(rHalf.heap, r1.heap)} (start ${mb(r0.wasm)} / ${mb(r0.heap)}); ${(rotMs / 10_000).toFixed(2)} ms per rotation over loopback`,
);
client.close();
rot.close();

// 5. A fleet of Node processes sharing tokens through a Redis store.
console.error("store");
for (const r of await storeRows()) row(...r);

// 6. The gateway in workerd against a plain JS pass-through worker.
console.error("gateway");
for (const r of await gatewayRows()) row(...r);
for (const r of await brokerRows()) row(...r);

const header = ["| benchmark | measured | goal | notes |", "|---|---|---|---|"];
const table = [...header, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
// The README shows the headline rows; docs/performance.md every row.
const HEADLINE = [
  /^gzip size/,
  /^cached getToken, ns/,
  /^token requests for 1000/,
  /^gateway req\/s vs JS pass-through/,
  /^gateway, a signed-in person/,
  /^cold start/,
  /^token requests per .* lifetime, 4 gateway/,
  /^token requests per .* lifetime, 4 Node/,
];
const headline = [...header, ...rows.filter((r) => HEADLINE.some((h) => h.test(r[0]))).map((r) => `| ${r.join(" | ")} |`)].join("\n");
const stamp = `Measured ${new Date().toISOString().slice(0, 10)} on ${process.platform}/${process.arch}, Node ${process.version}, ${(await import("node:os")).cpus().length} cores.`;
console.log(`\n${table}\n\n${stamp}`);
if (process.env.BENCH_UPDATE_README === "1") {
  const update = (file, text) => {
    const path = join(root, file);
    const before = readFileSync(path, "utf8");
    const after = before.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${text}\n<!-- bench:end -->`);
    if (after === before) throw new Error(`${file} has no bench:start/bench:end markers`);
    writeFileSync(path, after);
  };
  update("README.md", `${headline}\n\n${stamp} Every row: [docs/performance.md](docs/performance.md).`);
  update("docs/performance.md", `${table}\n\n${stamp}`);
  console.error("README.md and docs/performance.md tables updated");
}
