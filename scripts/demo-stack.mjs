// The demo stack: the VCC emulator (unless real VCC is configured) and the gateway under
// `wrangler dev`, which also serves the demo page. Used by `make demo` (scripts/demo.mjs)
// and by the page's Playwright tests, so what the tests check is what users run.
//
// Secrets handling: the gateway's settings go to wrangler through an env file of our own
// (mode 0600, in a private temp dir, deleted on stop), never through argv (visible in
// `ps`) and never printed. Each child runs in its own process group so stop() (and
// Ctrl-C) takes down wrangler's workerd children too.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_AUDIENCE, DEMO_POLICY, startAccessStandIn } from "./access-standin.mjs";

export const ROOT = new URL("../", import.meta.url).pathname;
export const DEV_VARS = join(ROOT, "worker/.dev.vars");
const EMULATOR_BIN = join(ROOT, "target/release/vcc-emulator");
const WRANGLER_BIN = join(ROOT, "node_modules/.bin/wrangler");
const KEYGEN_BIN = join(ROOT, "target/release/vcc-key");

/** The scopes the demo key may use: the three APIs the page shows. */
export const DEMO_SCOPES = ["agents-availability:read", "users:read", "stats"];
/** The gateway's own admin role (its /healthz details): the demo key has it too. */
export const ADMIN_SCOPE = "gateway:admin";
/** Emulator client the gateway uses, and the one the page's direct mode uses. */
export const GATEWAY_CLIENT = "demo-gateway";
export const DIRECT_CLIENT = "demo-direct";

/** A random credential: 32 URL-safe characters (192 bits). */
export const randomKey = () => randomBytes(24).toString("base64url");

/**
 * A new gateway key from the project's minter (`make key`, built by `make emulator`):
 * resolves to { key, entry }, entry being the GATEWAY_KEYS entry (id, sha256, scopes,
 * expires?). The key is passed back in memory only, never through argv.
 */
export function mintKey(id, scopes, expires) {
  if (!existsSync(KEYGEN_BIN)) throw new Error(`${KEYGEN_BIN} is missing: run make emulator`);
  const args = ["--id", id, "--scopes", scopes.join(" "), "--json", ...(expires ? ["--expires", expires] : [])];
  return JSON.parse(execFileSync(KEYGEN_BIN, args, { encoding: "utf8" }));
}

/** A free loopback port, or `preferred` when it is free. */
export async function freePort(preferred = 0) {
  const tryPort = (port) =>
    new Promise((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(null));
      s.listen(port, "127.0.0.1", () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
    });
  return (preferred && (await tryPort(preferred))) || (await tryPort(0));
}

/** `KEY=value` lines (dotenv subset wrangler reads: # comments, optional quotes). */
export function parseDotenv(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1);
    vars[m[1]] = v;
  }
  return vars;
}

const SETTINGS = [
  "VCC_REGION",
  "VCC_CLIENT_ID",
  "VCC_CLIENT_SECRET",
  "VCC_AUTH_BASE_URL",
  "VCC_API_BASE_URL",
  "GATEWAY_KEYS",
  "ALLOWED_ORIGINS",
  "UPSTREAM_TIMEOUT_MS",
];

/**
 * Which VCC the demo talks to. Real VCC when a client secret is configured, in the
 * environment or in worker/.dev.vars (the environment wins, setting by setting), unless
 * DEMO_EMULATOR=1. Returns { real: false } or { real: true, vars, from }.
 */
export function chooseVcc(env = process.env, devVarsPath = DEV_VARS) {
  if (env.DEMO_EMULATOR === "1") return { real: false, why: "DEMO_EMULATOR=1" };
  const file = existsSync(devVarsPath) ? parseDotenv(readFileSync(devVarsPath, "utf8")) : {};
  const vars = {};
  for (const k of SETTINGS) {
    const v = env[k] ?? file[k];
    if (v !== undefined && v !== "") vars[k] = v;
  }
  if (!vars.VCC_CLIENT_SECRET) return { real: false, why: "no VCC_CLIENT_SECRET in the environment or worker/.dev.vars" };
  const from = env.VCC_CLIENT_SECRET ? "the environment" : "worker/.dev.vars";
  // A copy of .dev.vars.example that was never filled in is not a configuration.
  if (vars.VCC_CLIENT_SECRET.startsWith("replace-with"))
    return { real: false, why: `${from} still has the example's placeholder VCC_CLIENT_SECRET` };
  if (!vars.VCC_CLIENT_ID) throw new Error(`VCC_CLIENT_ID is not set (VCC_CLIENT_SECRET comes from ${from}); set it there too`);
  return { real: true, vars, from };
}

/** GATEWAY_KEYS (a JSON array of entries) with the demo key's entry added, replacing an
 *  earlier "demo" entry; the other keys stay usable. Never echoes what it was given. */
export function withDemoKey(gatewayKeys, entry) {
  let entries = [];
  if (gatewayKeys) {
    try {
      entries = JSON.parse(gatewayKeys);
    } catch {
      throw new Error('GATEWAY_KEYS is not valid JSON (want [{"id", "sha256", "scopes"}, ...]; make key prints entries)');
    }
    if (entries !== null && typeof entries === "object" && !Array.isArray(entries))
      throw new Error("GATEWAY_KEYS holds plaintext keys (the old key -> scopes object): mint keys with make key and list their entries");
    if (!Array.isArray(entries)) throw new Error("GATEWAY_KEYS must be a JSON array of entries (make key prints them)");
  }
  return JSON.stringify([...entries.filter((e) => e?.id !== entry.id), entry]);
}

/** Writes `vars` as a private (0600) env file for `wrangler dev --env-file`; refuses a
 *  value with a line break, which would smuggle in another setting. Returns the path. */
export function writeEnvFile(path, vars) {
  for (const [k, v] of Object.entries(vars)) {
    if (/[\r\n]/.test(v)) throw new Error(`${k} contains a line break`);
  }
  writeFileSync(
    path,
    `${Object.entries(vars)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n")}\n`,
    { mode: 0o600 },
  );
  return path;
}

export function startChild(name, bin, args, opts) {
  const child = spawn(bin, args, { ...opts, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const proc = { name, child, output: "", exited: null, lineListeners: [] };
  let partial = "";
  const onData = (d) => {
    const text = d.toString();
    proc.output += text;
    if (proc.output.length > 1_000_000) proc.output = proc.output.slice(-500_000);
    const lines = (partial + text).split("\n");
    partial = lines.pop();
    for (const line of lines) for (const l of proc.lineListeners) l(line);
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  proc.done = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      proc.exited = { code, signal };
      resolve(proc.exited);
    }),
  );
  child.on("error", (e) => {
    proc.output += `\n${e.message}`;
    proc.exited ??= { code: -1, signal: null };
  });
  return proc;
}

export async function stopChild(proc) {
  if (!proc || proc.exited) return;
  // The whole group (wrangler's workerd too); the child alone if there is no group.
  const group = (sig) => {
    try {
      process.kill(-proc.child.pid, sig);
    } catch {
      proc.child.kill(sig);
    }
  };
  group("SIGTERM");
  const timeout = new Promise((r) => setTimeout(r, 5000).unref());
  if ((await Promise.race([proc.done, timeout.then(() => "timeout")])) === "timeout") {
    group("SIGKILL");
    await proc.done;
  }
}

async function waitFor(proc, url, deadlineMs, what) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (proc.exited) throw new Error(`${what} exited (${JSON.stringify(proc.exited)}):\n${proc.output.slice(-4000)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${what} did not answer ${url} within ${deadlineMs / 1000} s:\n${proc.output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts the stack. Options:
 *   vcc              chooseVcc() result (default: the emulator)
 *   pagePort         preferred port of the page, behind the sign-in stand-in (default: any free one)
 *   gatewayPort      preferred port of the gateway itself (default: any free one)
 *   emulatorPort     preferred port (default: any free one)
 *   gatewayLifetime  emulator token lifetime of the gateway's client, s (default 60)
 *   directLifetime   the same for the page's direct mode client, s (default 20)
 *   onLine(name, line)  every output line of the children
 * Resolves to { real, pageUrl, gatewayUrl, emulatorUrl?, key, direct?: { clientId, secret },
 * secrets, procs, stop }. With the emulator, `pageUrl` is the stand-in for Cloudflare
 * Access in front of the gateway (scripts/access-standin.mjs; the emulator signs the
 * people's JWTs); with real VCC there is no identity provider, and it is `gatewayUrl`.
 */
export async function startStack(opts = {}) {
  const vcc = opts.vcc ?? { real: false };
  const procs = [];
  const dir = mkdtempSync(join(tmpdir(), "vcc-demo-"));
  const killAll = () => {
    for (const p of procs) {
      if (!p.exited) {
        try {
          process.kill(-p.child.pid, "SIGKILL");
        } catch {}
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Whatever way this process ends, no orphan keeps a port (or the env file) alive.
  process.once("exit", killAll);
  let standIn = null;
  const stop = async () => {
    await standIn?.stop();
    for (const p of [...procs].reverse()) await stopChild(p);
    rmSync(dir, { recursive: true, force: true });
    process.removeListener("exit", killAll);
  };
  const track = (p) => {
    procs.push(p);
    if (opts.onLine) p.lineListeners.push((line) => opts.onLine(p.name, line));
    return p;
  };

  try {
    const { key, entry } = mintKey("demo", [...DEMO_SCOPES, ADMIN_SCOPE]);
    let vars;
    let emulatorUrl;
    let direct;
    let pagePort;
    if (vcc.real) {
      vars = { ...vcc.vars, GATEWAY_KEYS: withDemoKey(vcc.vars.GATEWAY_KEYS, entry) };
    } else {
      if (!existsSync(EMULATOR_BIN)) throw new Error(`${EMULATOR_BIN} is missing: run make emulator`);
      const gatewaySecret = randomKey();
      direct = { clientId: DIRECT_CLIENT, secret: randomKey() };
      const port = await freePort(opts.emulatorPort);
      const urlFile = join(dir, "emulator-url");
      const emu = track(startChild("emulator", EMULATOR_BIN, ["--port", String(port), "--url-file", urlFile]));
      const deadline = Date.now() + 15_000;
      while (!existsSync(urlFile) || !readFileSync(urlFile, "utf8")) {
        if (emu.exited || Date.now() > deadline) throw new Error(`the emulator did not start:\n${emu.output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      emulatorUrl = readFileSync(urlFile, "utf8").trim();
      // Clients are registered over loopback, not on the command line, so no secret is
      // in argv (visible in `ps`). Both are throwaway emulator credentials for this run.
      const clients = [
        { id: GATEWAY_CLIENT, secret: gatewaySecret, lifetimeSeconds: opts.gatewayLifetime ?? 60 },
        { id: direct.clientId, secret: direct.secret, lifetimeSeconds: opts.directLifetime ?? 20 },
      ];
      for (const c of clients) {
        const r = await fetch(`${emulatorUrl}/_emulator/clients`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ ...c, scopes: DEMO_SCOPES }),
        });
        if (!r.ok) throw new Error(`the emulator refused client ${c.id}: ${r.status}`);
      }
      // People sign in through the stand-in for Access, with the emulator as their
      // identity provider; the stand-in's origin calls the gateway.
      pagePort = await freePort(opts.pagePort);
      vars = {
        VCC_CLIENT_ID: GATEWAY_CLIENT,
        VCC_CLIENT_SECRET: gatewaySecret,
        VCC_AUTH_BASE_URL: emulatorUrl,
        VCC_API_BASE_URL: emulatorUrl,
        GATEWAY_KEYS: withDemoKey(undefined, entry),
        ACCESS_ISSUER: emulatorUrl,
        ACCESS_AUDIENCE: DEMO_AUDIENCE,
        GATEWAY_ACCESS_POLICY: JSON.stringify(DEMO_POLICY),
        ALLOWED_ORIGINS: `http://127.0.0.1:${pagePort}`,
      };
    }
    const envFile = writeEnvFile(join(dir, "gateway.env"), vars);

    const gwPort = await freePort(opts.gatewayPort);
    const gatewayUrl = `http://127.0.0.1:${gwPort}`;
    const wrangler = track(
      startChild(
        "gateway",
        WRANGLER_BIN,
        ["dev", "--ip", "127.0.0.1", "--port", String(gwPort), "--env-file", envFile, "--show-interactive-dev-session=false"],
        {
          cwd: join(ROOT, "worker"),
          env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
        },
      ),
    );
    await waitFor(wrangler, `${gatewayUrl}/healthz`, 90_000, "wrangler dev");
    let pageUrl = gatewayUrl;
    if (pagePort !== undefined) {
      standIn = await startAccessStandIn({ port: pagePort, gatewayUrl, issuerUrl: emulatorUrl });
      pageUrl = standIn.url;
    }
    // `secrets`: every credential this run made or was given, for tests that assert none leaks.
    const secrets = [vars.VCC_CLIENT_SECRET, direct?.secret].filter(Boolean);
    return { real: vcc.real, pageUrl, gatewayUrl, emulatorUrl, key, direct, secrets, stop, procs };
  } catch (e) {
    await stop();
    throw e;
  }
}
