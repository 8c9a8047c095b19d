// `make demo-node STORE=redis`: two Node processes sharing one token through Redis,
// against the local VCC emulator with 5-second tokens. This process starts a
// redis-server on a free loopback port (nothing saved), then two copies of itself as
// the fleet; each calls VCC every 1.5 s and says which token it used. Every 5 s the
// emulator's count of token requests is printed: one per token lifetime for the fleet,
// not one per process. At 12 s every token is revoked: one new token for both.
// DEMO_SECONDS sets its length (default 25); Ctrl-C stops it.
import { fork, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import { VccClient } from "../pkg/index.mjs"; // in your project: from "vcc-auth"
import { redisStore } from "../pkg/redis.mjs"; // in your project: from "vcc-auth/redis"

const EMU = process.env.VCC_EMULATOR_URL ?? "http://127.0.0.1:4010";
const seconds = Number(process.env.DEMO_SECONDS ?? 25);
const t0 = Number(process.env.DEMO_T0 ?? Date.now());
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
// Never print a token: a short digest tells them apart.
const preview = (t) => `#${createHash("sha256").update(t).digest("hex").slice(0, 8)}`;

if (process.argv[2] === "process") {
  // One process of the fleet.
  const name = process.argv[3];
  const { createClient } = await import("redis");
  const redis = createClient({ url: process.env.REDIS_URL });
  redis.on("error", () => {});
  await redis.connect();
  const log = (...a) => console.log(stamp(), `[${name}]`, ...a);
  const client = new VccClient({
    clientId: "demo-client",
    clientSecret: "demo-secret", // the emulator's demo client
    authBaseUrl: EMU,
    apiBaseUrl: EMU,
    store: redisStore(redis),
    onEvent: (e) => e.type !== "refreshed" && log(`event ${e.type} ${e.scope}${e.code ? ` ${e.code}` : ""}`),
  });
  const stop = () => {
    client.close();
    redis.destroy();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", () => {});
  for (;;) {
    try {
      const res = await client.fetch("/agents-availability?skillNames=Sales");
      await res.arrayBuffer();
      log(`GET /agents-availability -> ${res.status}, token ${preview(await client.getToken("agents-availability:read"))}`);
    } catch (e) {
      log(`call failed: ${e.code}: ${e.message}`);
    }
    await new Promise((r) => setTimeout(r, 1500));
  }
}

// The parent: Redis, the fleet, the count.
const log = (...a) => console.log(stamp(), ...a);
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
  stdio: "ignore",
});
redis.on("error", () => {
  console.error("redis-server is missing: make setup installs it");
  process.exit(1);
});
await new Promise((r) => setTimeout(r, 300));
const env = { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, DEMO_T0: String(t0) };
log(`Redis on 127.0.0.1:${port}, VCC emulator at ${EMU}; tokens live 5 s; two processes share them`);
const fleet = ["p1", "p2"].map((n) => fork(new URL(import.meta.url).pathname, ["process", n], { env }));
const requests = async () => {
  const s = await (await fetch(`${EMU}/_emulator/stats?clientId=demo-client`)).json();
  return Object.values(s.tokenRequests ?? {}).reduce((a, b) => a + b, 0);
};
let revoked = false;
const done = async () => {
  for (const p of fleet) p.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  redis.kill("SIGKILL");
  log(`done: ${await requests()} token requests in ${Math.round((Date.now() - t0) / 1000)} s for 2 processes`);
  process.exit(0);
};
process.on("SIGINT", done);
while (Date.now() - t0 < seconds * 1000) {
  await new Promise((r) => setTimeout(r, 5000));
  if (!revoked && Date.now() - t0 >= 12_000) {
    revoked = true;
    log("** revoking every token at the emulator: both processes see 401; one new token for both");
    await fetch(`${EMU}/_emulator/revoke`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  }
  log(`** the emulator has had ${await requests()} token requests (one per refresh for the fleet; without a store, one per process)`);
}
await done();
