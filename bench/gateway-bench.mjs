// Gateway benchmark (part of `make bench`; alone: `node bench/gateway-bench.mjs` under
// scripts/with-emulator.sh). Figures, not pass/fail. Measured as a new user would:
// both workers bundled by `wrangler deploy --dry-run --outdir` and served by workerd
// through the Miniflare API (wrangler dev's proxy caps near 400 req/s and would hide
// the difference), autocannon from this process, alternating rounds. Cold starts run
// workerd itself (bench/workerd.mjs `coldStart` says why).
//
// The gateway runs as shipped: per-request log line on, rate limit binding on (with a
// limit no run reaches), token broker bound and its L1 warm. Variants without the
// broker or the rate limit show what each binding costs; "a signed-in person" sends a
// Cloudflare Access JWT (the emulator signs it) instead of a key: what verifying it costs.
// Knobs: BENCH_ROUNDS, BENCH_ROUND_S; BENCH_ONLY=<variant>|<variant> (with the
// pass-through); BENCH_BEFORE=<bundle dir> adds an older build (rate limit, no broker);
// BENCH_PROFILE=<dir> writes a V8 CPU profile per server and round (the inspector's
// console hooks inflate console.log there); BENCH_GW_BUNDLE / BENCH_PT_BUNDLE=<dir>
// serve a prepared bundle (experiments).
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { EMU, gatewayVars, mintKey, newClient } from "../tests/gateway/helpers.mjs";
import { bundle, coldStart, cpuSeconds, inspect, serve } from "./workerd.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const CONNECTIONS = 32;
const ROUND_S = Number(process.env.BENCH_ROUND_S ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PATH = "/api/agents-availability?skillNames=Sales";

const load = (url, headers) =>
  new Promise((resolve, reject) => {
    autocannon({ url, headers, connections: CONNECTIONS, duration: ROUND_S }, (err, res) => (err ? reject(err) : resolve(res)));
  });

async function warm(base, headers) {
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${base}${PATH}`, { headers });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`warm-up: ${base}${PATH} answered ${r.status}`);
  }
  await load(`${base}${PATH}`, headers);
}

/** Cold starts of `a` and `b` ([bundle, bindings]) in alternation, `n` of each, so
 *  that the machine's drift falls on both alike: the median start, first request and
 *  total of each. One sample ahead of them is dropped (this process's first fetch of a
 *  new origin pays for its own warm-up). */
async function coldStarts(a, b, headers, firstPath, n = 9) {
  const samples = [[], []];
  await coldStart(...a, firstPath, headers);
  for (let i = 0; i < n; i++) {
    for (const [j, [bundle, bindings]] of [a, b].entries()) samples[j].push(await coldStart(bundle, bindings, firstPath, headers));
  }
  return samples.map((xs) => ({
    start: median(xs.map((x) => x.start)),
    first: median(xs.map((x) => x.first)),
    total: median(xs.map((x) => x.start + x.first)),
    status: xs[0].status,
  }));
}

export async function gatewayRows() {
  const made = [];
  try {
    return await rowsFrom(made);
  } finally {
    // The bundles this run made (not ones given by BENCH_*_BUNDLE) are temporary.
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  }
}

async function rowsFrom(made) {
  const client = await newClient("bench-gw");
  // admin: the cold start asks /healthz, and gets its details, as before the admin role.
  const { key, entry } = mintKey("bench", ["*", "gateway:admin"]);
  const tok = await (
    await fetch(`${EMU}/Auth/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&scope=agents-availability:read&client_id=${client.id}&client_secret=${client.secret}`,
    })
  ).json();
  const gwVars = gatewayVars(client, [entry], { VCC_REGION: "emea" });
  const ptVars = { UPSTREAM: EMU, TOKEN: tok.access_token, KEY: key };
  const auth = { authorization: `Bearer ${key}` };
  // A person signed in through Access, with the emulator as identity provider.
  const audience = "vcc-bench";
  const jwt = await (
    await fetch(`${EMU}/_emulator/idp/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ lifetimeSeconds: 3600, claims: { aud: audience, sub: "bench-person", email: "ana@example.com" } }),
    })
  ).json();
  const personVars = {
    ...gwVars,
    ACCESS_ISSUER: EMU,
    ACCESS_AUDIENCE: audience,
    GATEWAY_ACCESS_POLICY: JSON.stringify([{ email: "*@example.com", scopes: ["*"] }]),
  };
  const person = { "cf-access-jwt-assertion": jwt.token };

  // BENCH_GW_BUNDLE=<dir>: a prepared bundle instead (experiments, named profiles).
  const gw = process.env.BENCH_GW_BUNDLE ? { out: process.env.BENCH_GW_BUNDLE, upload: "-", gz: 0, wasm: 0 } : bundle(join(ROOT, "worker"));
  const pt = process.env.BENCH_PT_BUNDLE ? { out: process.env.BENCH_PT_BUNDLE } : bundle(join(ROOT, "bench/passthrough"));
  if (!process.env.BENCH_GW_BUNDLE) made.push(gw.out);
  if (!process.env.BENCH_PT_BUNDLE) made.push(pt.out);
  const variants = [
    ["pass-through", pt, ptVars, {}, auth],
    ["gateway", gw, gwVars, { broker: true, rateLimit: true }, auth],
    ["gateway, a signed-in person", gw, personVars, { broker: true, rateLimit: true }, person],
    ["gateway, no rate limit", gw, gwVars, { broker: true }, auth],
    ["gateway, no broker", gw, gwVars, { rateLimit: true }, auth],
    ["gateway, neither", gw, gwVars, {}, auth],
    // An older build's bundle, to compare like with like (it may predate the broker).
    ...(process.env.BENCH_BEFORE ? [["before", { out: process.env.BENCH_BEFORE }, gwVars, { rateLimit: true }, auth]] : []),
  ].filter(([name]) => !process.env.BENCH_ONLY || ["pass-through", "before", ...process.env.BENCH_ONLY.split("|")].includes(name));
  const servers = [];
  for (const [name, b, vars, opts, headers] of variants) {
    // BENCH_PROFILE: each server's inspector on its own port, profiled while loaded.
    const profile = process.env.BENCH_PROFILE ? 9230 + servers.length : 0;
    const s = await serve(b, vars, { ...opts, inspectorPort: profile || undefined });
    servers.push({ name, ...s, headers, reqs: [], cpu: [], p50: [], p99: [], errors: 0, profile });
    console.error(`  ${name}: warming`);
    await warm(s.base, headers);
  }
  // Alternating rounds; each figure is then compared with the pass-through's in the same
  // round (the machine's speed drifts by ±20 % between rounds here; pairs cancel it).
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of servers) {
      const stopProfile = s.profile ? await startProfile(s.profile) : null;
      const cpu0 = s.pid ? cpuSeconds(s.pid) : 0;
      const r = await load(`${s.base}${PATH}`, s.headers);
      if (s.pid) s.cpu.push(((cpuSeconds(s.pid) - cpu0) * 1e6) / r.requests.total);
      if (stopProfile) await stopProfile(join(process.env.BENCH_PROFILE, `${s.name.replace(/\W+/g, "-")}-${round}.cpuprofile`));
      s.reqs.push(r.requests.average);
      s.p50.push(r.latency.p50);
      s.p99.push(r.latency.p99);
      s.errors += r.non2xx + r.errors + r.timeouts;
      console.error(
        `  round ${round + 1} ${s.name}: ${Math.round(r.requests.average)} req/s, ${Math.round(s.cpu.at(-1) ?? 0)} µs workerd CPU per request`,
      );
    }
  }
  for (const s of servers) await s.mf.dispose();

  const base = servers[0];
  const rows = [];
  for (const s of servers.slice(1)) {
    const ratio = median(s.reqs.map((r, i) => r / base.reqs[i]));
    rows.push([
      s.name === "gateway" ? "gateway req/s vs JS pass-through (token cached, log on)" : `${s.name}: req/s vs pass-through`,
      `${Math.round(median(s.reqs))} vs ${Math.round(median(base.reqs))}: ${ratio.toFixed(2)}×`,
      "",
      `workerd CPU ${cpuText(s, base)}; p50 ${median(s.p50)} ms / p99 ${median(s.p99)} ms (pass-through ${median(base.p50)} / ${median(base.p99)}); ${s.errors} errors; median of ${ROUNDS} paired rounds × ${ROUND_S} s, ${CONNECTIONS} connections, Miniflare`,
    ]);
  }
  if (process.env.BENCH_ONLY) return rows;

  // Cold start: a fresh workerd per sample; the gateway's token fetch is excluded by
  // asking for /healthz first (it builds the gateway: settings, keys, wasm instance).
  console.error("  cold starts");
  const [cg, cp] = await coldStarts([gw, gwVars], [pt, ptVars], auth, "/healthz");
  if (cg.status !== 200) throw new Error(`cold start: the gateway's /healthz answered ${cg.status}`);
  rows.push([
    "cold start: new workerd to first answer",
    `${cg.total.toFixed(1)} ms vs ${cp.total.toFixed(1)} ms: ${(cg.total / cp.total).toFixed(2)}×`,
    "",
    `start (process, module load, wasm compile + instantiate) ${cg.start.toFixed(1)} vs ${cp.start.toFixed(1)} ms, then the first request (the Gateway built from its settings; no token fetch) ${cg.first.toFixed(1)} vs ${cp.first.toFixed(1)} ms; workerd run directly, medians of 9 alternating samples each`,
  ]);
  // Each sample in a new Node process: V8 keeps compiled modules for the life of a
  // process, so a second compile of the same bytes measures that cache.
  const wasmFile = join(ROOT, "worker/build/vcc_auth_bg.wasm");
  const tc = [];
  for (let i = 0; i < 7; i++)
    tc.push(JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", COMPILE_ONCE, wasmFile], { encoding: "utf8" })));
  rows.push([
    "gateway wasm compile / instantiate",
    `${median(tc.map((t) => t[0])).toFixed(1)} / ${median(tc.map((t) => t[1])).toFixed(1)} ms`,
    "",
    `V8 in a new Node process each, ${(readFileSync(wasmFile).length / 1024).toFixed(0)} KB raw; median of 7 (V8 compiles each wasm function on its first call; these figures are the module's validation and set-up)`,
  ]);
  rows.push([
    "gateway bundle, gzipped",
    `${(gw.gz / 1024).toFixed(1)} KB`,
    "",
    `worker + wasm (${(gw.wasm / 1024).toFixed(0)} KB raw wasm); wrangler says ${gw.upload}`,
  ]);
  return rows;
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** workerd's CPU per request for `s` against the baseline `b` (medians over rounds). */
function cpuText(s, b) {
  if (!s.cpu.length || s.cpu.length !== b.cpu.length) return "not measured";
  const ratio = median(s.cpu.map((c, i) => b.cpu[i] / c));
  return `${Math.round(median(s.cpu))} vs ${Math.round(median(b.cpu))} µs/request (${ratio.toFixed(2)}×)`;
}

/** Run by `node -e` with a .wasm file's path: prints [compile ms, instantiate ms], the
 *  instance built with every import a no-op (none is called). */
const COMPILE_ONCE = `
import { readFileSync } from "node:fs";
const bytes = readFileSync(process.argv[1]);
const t0 = performance.now();
const m = new WebAssembly.Module(bytes);
const t1 = performance.now();
const imports = {};
for (const { module, name, kind } of WebAssembly.Module.imports(m)) (imports[module] ??= {})[name] = kind === "function" ? () => {} : undefined;
const t2 = performance.now();
new WebAssembly.Instance(m, imports);
console.log(JSON.stringify([t1 - t0, performance.now() - t2]));
`;

/** Starts V8's CPU profiler in the isolate behind workerd's inspector; returns a stop
 *  function that writes the profile. */
async function startProfile(port) {
  const session = await inspect(port);
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: 200 });
  await session.send("Profiler.start");
  return async (file) => {
    const { profile } = await session.send("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.close();
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await gatewayRows();
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}
