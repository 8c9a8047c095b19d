// Shared by the gateway's workerd tests: the emulator's controls (tests/emulator.mjs), `wrangler dev` on
// worker/ with given settings, and raw HTTP (no client-side URL normalisation).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, mintKey, ROOT, startChild, stopChild, writeEnvFile } from "../../scripts/demo-stack.mjs";

import { EMU, control, newClient, rnd, sleep, stats, tokenRequests } from "../emulator.mjs";

export { mintKey, ROOT, EMU, control, newClient, rnd, sleep, stats, tokenRequests };
assert.ok(EMU, "VCC_EMULATOR_URL must be set");

export const received = async (id) => (await (await fetch(`${EMU}/_emulator/requests?clientId=${id}`)).json()).requests;
/** What reached the emulator's /_emulator/steal/<tag>: where a followed redirect lands. */
export const stolen = async (tag) => (await (await fetch(`${EMU}/_emulator/stolen`)).json()).requests.filter((r) => r.path.endsWith(tag));
/** The emulator under another origin, for redirects that would leave ours. */
export const OTHER_ORIGIN = EMU.replace("127.0.0.1", "localhost");

/** A gateway's settings against the emulator for `client` ({ id, secret }), with these
 *  GATEWAY_KEYS entries, plus `extra` (which wins over both). */
export const gatewayVars = (client, entries, extra = {}) => ({
  VCC_CLIENT_ID: client.id,
  VCC_CLIENT_SECRET: client.secret,
  VCC_AUTH_BASE_URL: EMU,
  VCC_API_BASE_URL: EMU,
  GATEWAY_KEYS: JSON.stringify(entries),
  ...extra,
});

const outputs = [];
/** Everything every gateway started so far printed. */
export const allOutput = () => outputs.map((o) => o.output).join("\n----\n");

/** Cuts the block that starts with `header` (up to its blank line) out of `toml`. */
function cut(toml, header) {
  const at = toml.indexOf(header);
  assert.ok(at >= 0, `worker/wrangler.toml has a ${header} block`);
  const end = toml.indexOf("\n\n", at);
  return toml.slice(0, at) + toml.slice(end + 2);
}

/** worker/wrangler.toml adjusted for a test, written next to the original (paths in it
 *  are relative to it); returns its path.
 *  - `rateLimit`: `{ limit, period }` for GATEWAY_RATE_LIMIT, or null for no binding;
 *  - `broker`: false (no TOKEN_BROKER binding: per-isolate tokens), true (the shipped
 *    binding, the object hosted here), or the name of the worker that hosts it (this one
 *    then binds it by `script_name`, as a second gateway of the fleet);
 *  - `name`: the worker's name (two processes sharing a dev registry need two). */
function configWith({ rateLimit, broker, name }) {
  let toml = readFileSync(join(ROOT, "worker/wrangler.toml"), "utf8");
  toml = cut(toml, "[[ratelimits]]");
  if (rateLimit)
    toml += `\n[[ratelimits]]\nname = "GATEWAY_RATE_LIMIT"\nnamespace_id = "1001"\nsimple = { limit = ${rateLimit.limit}, period = ${rateLimit.period} }\n`;
  if (broker !== true) toml = cut(toml, "[[durable_objects.bindings]]");
  if (typeof broker === "string") {
    toml = cut(toml, "[[migrations]]");
    toml += `\n[[durable_objects.bindings]]\nname = "TOKEN_BROKER"\nclass_name = "TokenBroker"\nscript_name = "${broker}"\n`;
  }
  if (name) toml = toml.replace(/^name = ".*"$/m, `name = "${name}"`);
  const path = join(ROOT, "worker", `.test-${rnd()}.toml`);
  writeFileSync(path, toml);
  return path;
}

/** Starts `wrangler dev` for worker/ with these settings; resolves once it answers.
 *  Options: `rateLimit`, `broker`, `name` (see configWith; by default no rate limit and
 *  no broker, so suites that test neither are not shaped by them), `registry` (a
 *  private dev registry, shared by processes that bind each other's objects),
 *  `persistTo` (local storage, kept across a restart). `stop()` ends its whole process
 *  group (wrangler and its workerd). */
export async function startGateway(vars, { rateLimit = null, broker = false, name, registry, persistTo } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gw-"));
  const envFile = writeEnvFile(join(dir, ".env"), vars);
  const config = configWith({ rateLimit, broker, name });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = startChild(
    "wrangler",
    join(ROOT, "node_modules/.bin/wrangler"),
    [
      "dev",
      "--config",
      config,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
      ...(persistTo ? ["--persist-to", persistTo] : []),
    ],
    {
      cwd: join(ROOT, "worker"),
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        CI: "true",
        ...(registry ? { WRANGLER_REGISTRY_PATH: registry } : {}),
      },
    },
  );
  outputs.push(proc);
  const out = {
    get text() {
      return proc.output;
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).status) break;
    } catch {}
    if (proc.exited || Date.now() > deadline) {
      await stopChild(proc);
      rmSync(config, { force: true });
      throw new Error(`wrangler dev did not start:\n${proc.output}`);
    }
    await sleep(250);
  }
  const stop = async () => {
    await stopChild(proc);
    rmSync(config, { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  return { base, out, stop };
}

/** A request exactly as written (no URL normalisation): status and raw text. Done as
 *  soon as the response is complete (the dev server keeps the socket open). `body` is
 *  written after the head; `trickle` writes it one byte every `trickle` ms instead. */
export function raw(base, requestLine, headers = {}, { body, trickle } = {}) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let timer;
    const sock = connect(Number(port), hostname, () => {
      const lines = [
        requestLine,
        `Host: ${hostname}:${port}`,
        "Connection: close",
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        "",
        "",
      ];
      sock.write(lines.join("\r\n"));
      if (body && !trickle) sock.write(body);
      if (body && trickle) {
        let i = 0;
        timer = setInterval(() => {
          if (i < body.length && !sock.destroyed) sock.write(body[i++]);
          else clearInterval(timer);
        }, trickle);
      }
    });
    let data = Buffer.alloc(0);
    const done = () => {
      clearInterval(timer);
      sock.destroy();
      const text = data.toString("latin1");
      resolve({ status: Number(text.split(" ")[1]), text });
    };
    sock.on("data", (d) => {
      data = Buffer.concat([data, d]);
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = data.subarray(0, end).toString("latin1");
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
      if (Number.isFinite(length) && data.length - end - 4 >= length) done();
    });
    sock.on("end", done);
    sock.on("error", (e) => {
      clearInterval(timer);
      reject(e);
    });
  });
}
