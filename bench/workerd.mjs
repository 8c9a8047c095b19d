// workerd for the benchmarks and the soak: a worker bundled as `wrangler deploy` would
// upload it, served through the Miniflare API (wrangler dev's proxy caps near 400 req/s),
// and the workerd process's CPU time and memory read from /proc. Cold starts run the
// same workerd binary directly (`coldStart`).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";

const ROOT = new URL("../", import.meta.url).pathname;
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
// The workers' date (their wrangler.toml files say the same), for `serve` and `coldStart` alike.
const COMPATIBILITY_DATE = "2025-09-01";
// The workerd binary Miniflare runs: its `workerd` dependency, resolved from Miniflare.
const fromHere = createRequire(import.meta.url);
const WORKERD = createRequire(fromHere.resolve("miniflare"))("workerd").default;

/** `wrangler deploy --dry-run --outdir` of the worker in `dir`: the bundle's folder. */
export function bundle(dir) {
  const out = mkdtempSync(join(tmpdir(), "bench-bundle-"));
  const log = execFileSync(WRANGLER, ["deploy", "--dry-run", "--outdir", out], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const upload = /Total Upload:\s*([^\n]+)/.exec(log)?.[1]?.trim() ?? "not reported";
  const files = readdirSync(out).filter((f) => f.endsWith(".js") || f.endsWith(".wasm"));
  const gz = files.reduce((n, f) => n + gzipSync(readFileSync(join(out, f)), { level: 9 }).length, 0);
  const wasm = files.filter((f) => f.endsWith(".wasm")).reduce((n, f) => n + readFileSync(join(out, f)).length, 0);
  return { out, upload, gz, wasm };
}

/** The workerd processes this process has started (Miniflare does not say which is
 *  whose, so `serve` notes which one is new). */
export function workerdChildren() {
  const pids = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (stat.includes("(workerd)") && Number(fields[1]) === process.pid) pids.push(Number(d));
    } catch {}
  }
  return pids;
}

/** CPU seconds (user + system) a process has used so far: what Workers bills. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100)
}

/** Serves a bundle in workerd. The options pick the bindings (`rateLimit` with a limit
 *  no run reaches). The worker's console output goes to `onStdout`, or is read and
 *  dropped (the log line is still built and written). */
export async function serve(b, bindings, { broker = false, rateLimit = false, inspectorPort, onStdout } = {}) {
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    modules: true,
    scriptPath: join(b.out, "index.js"),
    modulesRoot: b.out,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: COMPATIBILITY_DATE,
    bindings,
    ...(broker ? { durableObjects: { TOKEN_BROKER: { className: "TokenBroker", useSQLite: true } } } : {}),
    ...(rateLimit ? { ratelimits: { GATEWAY_RATE_LIMIT: { simple: { limit: 1e9, period: 60 } } } } : {}),
    ...(inspectorPort ? { inspectorPort } : {}),
    handleRuntimeStdio(stdout, stderr) {
      if (onStdout) stdout.on("data", onStdout);
      else stdout.resume();
      stderr.on("data", (d) => {
        if (said.length < 8192) said += d;
      });
    },
  });
  let said = "";
  const before = new Set(workerdChildren());
  const url = await mf.ready.catch((e) => {
    throw new Error(`workerd did not start: ${e.message}\n${said}`);
  });
  const pid = workerdChildren().find((p) => !before.has(p));
  return { mf, pid, base: url.href.replace(/\/$/, "") };
}

/** Starts the workerd binary itself on a bundle, as a deployed Worker runs: no
 *  Miniflare entry worker or wrangler proxy in front (both re-frame answers: a body cut
 *  short reaches their callers as a complete, chunked one). The config is the one
 *  Miniflare would give: the bundle's modules, `bindings` as text, the same
 *  compatibility date, outbound fetch to any address (the emulator is on loopback).
 *  Resolves once it listens: `{ base, spawnedAt, listeningAt, output, stop }`. */
export async function startWorkerd(b, bindings) {
  const dir = mkdtempSync(join(tmpdir(), "bench-workerd-"));
  const files = readdirSync(b.out).filter((f) => f.endsWith(".js") || f.endsWith(".wasm"));
  // index.js first: workerd's main module is the first in the list.
  files.sort((x, y) => (x === "index.js" ? -1 : y === "index.js" ? 1 : 0));
  const text = (v) => {
    if (!/^[\x20-\x7e]*$/.test(v)) throw new Error("startWorkerd: a binding or file name that is not printable ASCII");
    return JSON.stringify(v); // the same escapes as Cap'n Proto text for printable ASCII
  };
  const modules = files.map(
    (f) => `(name = ${text(f)}, ${f.endsWith(".wasm") ? "wasm" : "esModule"} = embed ${text(relative(dir, join(b.out, f)))})`,
  );
  const binds = Object.entries(bindings).map(([k, v]) => `(name = ${text(k)}, text = ${text(String(v))})`);
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = (modules = [${modules.join(", ")}], compatibilityDate = "${COMPATIBILITY_DATE}", bindings = [${binds.join(", ")}])),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
`,
  );
  const spawnedAt = performance.now();
  const p = spawn(WORKERD, ["serve", "--control-fd=3", join(dir, "config.capnp")], { stdio: ["ignore", "pipe", "pipe", "pipe"] });
  const out = { text: "" };
  for (const s of [p.stdout, p.stderr]) s.on("data", (d) => (out.text = (out.text + d).slice(-65536)));
  const stop = async () => {
    if (p.exitCode === null) {
      const exited = new Promise((r) => p.once("exit", r));
      p.kill();
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await new Promise((resolve, reject) => {
      createInterface(p.stdio[3]).on("line", (line) => {
        const m = JSON.parse(line);
        if (m.event === "listen") resolve(m.port);
      });
      p.once("exit", (code) => reject(new Error(`workerd exited (${code}) before listening: ${out.text}`)));
    });
    return { base: `http://127.0.0.1:${port}`, spawnedAt, listeningAt: performance.now(), output: out, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** One cold start of a bundle in workerd itself (`startWorkerd`): the milliseconds from
 *  spawning the process to its socket listening (`start`: process, script and wasm
 *  module load, module-scope code), then to the first answer to `path` (`first`), and
 *  its status. Not through Miniflare: its Node side encodes the whole config, the
 *  bundle's bytes included, before workerd starts, at a cost that grows with the bundle
 *  (measured: 62 against 32 ms of Node CPU per start for the gateway's bundle and the
 *  pass-through's) and that no isolate pays. */
export async function coldStart(b, bindings, path, headers = {}) {
  const w = await startWorkerd(b, bindings);
  try {
    const t1 = performance.now();
    const r = await fetch(`${w.base}${path}`, { headers });
    await r.arrayBuffer();
    return { start: w.listeningAt - w.spawnedAt, first: performance.now() - t1, status: r.status };
  } finally {
    await w.stop();
  }
}

/** Resident memory of a process, in bytes (VmRSS). */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** A DevTools session with the worker's isolate on `port` (Miniflare's `inspectorPort`):
 *  `send(method, params)` resolves with the result; `close()`. Node 20 has no global
 *  WebSocket; `ws` comes with Miniflare. */
export async function inspect(port) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = list.find((t) => /vcc-auth-gateway|core:user/.test(t.title ?? "")) ?? list[0];
  const { WebSocket } = await import("ws");
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let id = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    pending.get(msg.id)?.(msg.result ?? msg.error);
  };
  const send = (method, params = {}) =>
    new Promise((r) => {
      pending.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

/** The isolate's memory after a full GC, as V8 reports it (`Runtime.getHeapUsage`): the
 *  JS heap in use and the ArrayBuffer backing stores. workerd's inspector offers no
 *  execution context outside a request, so the wasm memory's own size cannot be asked
 *  for here. */
export async function isolateMemory(session) {
  await session.send("HeapProfiler.collectGarbage");
  const u = await session.send("Runtime.getHeapUsage");
  return { heap: u?.usedSize ?? Number.NaN, buffers: u?.backingStorageSize ?? Number.NaN };
}
