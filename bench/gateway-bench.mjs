// Gateway benchmark (part of `make bench`): figures, not pass/fail. Needs
// VCC_EMULATOR_URL, worker/build (make gateway) and autocannon.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { mintKey } from "../scripts/demo-stack.mjs";

const ROOT = new URL("../", import.meta.url).pathname;
const EMU = process.env.VCC_EMULATOR_URL;
const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
const rnd = () => Math.random().toString(36).slice(2);
const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

async function startDev(cwd, vars, config) {
  const dir = mkdtempSync(join(tmpdir(), "bench-"));
  writeFileSync(
    join(dir, ".env"),
    `${Object.entries(vars)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n")}\n`,
  );
  const port = await freePort();
  const started = Date.now();
  const child = spawn(
    WRANGLER,
    [
      "dev",
      ...(config ? ["--config", config] : []),
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--env-file",
      join(dir, ".env"),
      "--show-interactive-dev-session=false",
      "--log-level",
      "error",
    ],
    {
      cwd,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      stdio: "ignore",
    },
  );
  return { base: `http://127.0.0.1:${port}`, started, stop: () => child.kill("SIGTERM") };
}

/** When `path` first answers 200 (the clock starts at spawn); fails after 60 s. */
async function firstAnswer(base, path, headers) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(5000) });
      if (r.status === 200) return Date.now();
    } catch {}
    if (Date.now() > deadline) throw new Error(`${base}${path} did not answer 200 within 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const run = (url, headers) =>
  new Promise((resolve, reject) => {
    autocannon({ url, headers, connections: 16, duration: 8 }, (err, res) => (err ? reject(err) : resolve(res)));
  });

export async function gatewayRows() {
  const id = `bench-gw-${rnd()}`,
    secret = `bench-secret-${rnd()}`,
    { key, entry } = mintKey("bench", ["*"]);
  // The shipped config with a limit no run reaches: the rate limit check is on the
  // measured path, its 429s are not.
  const config = join(ROOT, "worker", `.test-bench-${rnd()}.toml`);
  const shipped = readFileSync(join(ROOT, "worker/wrangler.toml"), "utf8");
  writeFileSync(config, shipped.replace(/limit = \d+/, "limit = 100000000"));
  await fetch(`${EMU}/_emulator/clients`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id, secret, scopes: ["*"], lifetimeSeconds: 7200 }),
  });
  const tok = await (
    await fetch(`${EMU}/Auth/connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&scope=agents-availability:read&client_id=${id}&client_secret=${secret}`,
    })
  ).json();
  const auth = { authorization: `Bearer ${key}` };
  const path = "/api/agents-availability?skillNames=Sales";
  // One at a time: two wrangler dev processes starting together race for shared
  // local state and one of them dies.
  const gw = await startDev(
    join(ROOT, "worker"),
    {
      VCC_CLIENT_ID: id,
      VCC_CLIENT_SECRET: secret,
      VCC_AUTH_BASE_URL: EMU,
      VCC_API_BASE_URL: EMU,
      GATEWAY_KEYS: JSON.stringify([entry]),
    },
    config,
  );
  const gwFirst = (await firstAnswer(gw.base, path, auth)) - gw.started;
  const pt = await startDev(join(ROOT, "bench/passthrough"), { UPSTREAM: EMU, TOKEN: tok.access_token });
  const ptFirst = (await firstAnswer(pt.base, path, {})) - pt.started;
  try {
    await run(`${gw.base}${path}`, auth); // warm-up
    const g = await run(`${gw.base}${path}`, auth);
    const p = await run(`${pt.base}${path}`, {});
    const errors = g.non2xx + g.errors;
    const dry = mkdtempSync(join(tmpdir(), "dry-"));
    const out = execFileSync(WRANGLER, ["deploy", "--dry-run", "--outdir", dry], {
      cwd: join(ROOT, "worker"),
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const upload = /Total Upload:\s*([^\n]+)/.exec(out)?.[1]?.trim() ?? "not reported";
    return [
      [
        "gateway req/s (token cached) vs JS pass-through",
        `${Math.round(g.requests.average)} vs ${Math.round(p.requests.average)}: ${(g.requests.average / p.requests.average).toFixed(2)}×`,
        "≥ 0.9×",
        `16 connections × 8 s, same emulator upstream; ${errors} non-2xx/errors`,
      ],
      ["gateway latency p50 / p99", `${g.latency.p50} / ${g.latency.p99} ms`, "", `pass-through ${p.latency.p50} / ${p.latency.p99} ms`],
      [
        "first answered request after start",
        `${(gwFirst / 1000).toFixed(1)} s`,
        "",
        `wrangler dev start + bundle + first token; pass-through ${(ptFirst / 1000).toFixed(1)} s`,
      ],
      ["gateway bundle (wrangler deploy --dry-run)", upload, "", "worker + wasm"],
    ];
  } finally {
    gw.stop();
    pt.stop();
    rmSync(config, { force: true });
  }
}
