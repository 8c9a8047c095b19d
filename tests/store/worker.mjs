// One process of a fleet, for the store's tests: a VccClient from the packed package
// with a Redis store (node-redis or ioredis, connected to the test's redis-server),
// driven over IPC by tests/store/store.test.mjs. It reports what it saw (statuses,
// error codes, events, the tokens it was given) so the test can count and scan them.
//
// argv[2]: JSON { emu, redisUrl, lib: "redis" | "ioredis", clientId, secret, timeoutMs,
//                 foreignKey? (every read of the store answers this key's record) }
import { VccClient } from "vcc-auth";
import { redisStore } from "vcc-auth/redis";

const opts = JSON.parse(process.argv[2]);

async function connect() {
  if (opts.lib === "ioredis") {
    const { default: Redis } = await import("ioredis");
    const r = new Redis(opts.redisUrl, { lazyConnect: true, retryStrategy: () => 100 });
    r.on("error", () => {});
    await r.connect();
    return { client: r, close: () => r.disconnect() };
  }
  const { createClient } = await import("redis");
  const r = createClient({ url: opts.redisUrl, socket: { reconnectStrategy: () => 100 } });
  r.on("error", () => {});
  await r.connect();
  return { client: r, close: () => r.destroy() };
}

const redis = await connect();
let store = redisStore(redis.client);
if (opts.foreignKey) {
  // Reads answer another record: one sealed under another secret must not open.
  const real = store;
  store = { ...real, get: () => real.get(opts.foreignKey) };
}

const events = [];
const errors = [];
const tokens = new Set();
const client = new VccClient({
  clientId: opts.clientId,
  clientSecret: opts.secret,
  authBaseUrl: opts.emu,
  apiBaseUrl: opts.emu,
  timeoutMs: opts.timeoutMs ?? 1500,
  maxRetries: 0,
  store,
  onEvent: (e) => events.push(e),
});

const failed = (e) => {
  errors.push(`${e?.name}: ${e?.code}: ${e?.message}`);
  return e?.code ?? String(e);
};

const ops = {
  async fetch({ path, n = 1 }) {
    const statuses = await Promise.all(
      Array.from({ length: n }, async () => {
        try {
          const r = await client.fetch(path);
          await r.arrayBuffer();
          return r.status;
        } catch (e) {
          return failed(e);
        }
      }),
    );
    return { statuses };
  },
  async token({ scope, n = 1 }) {
    const got = await Promise.all(
      Array.from({ length: n }, async () => {
        try {
          const t = await client.getToken(scope);
          tokens.add(t);
          return { token: t };
        } catch (e) {
          return { error: failed(e) };
        }
      }),
    );
    return { tokens: [...new Set(got.filter((g) => g.token).map((g) => g.token))], errors: got.filter((g) => g.error).map((g) => g.error) };
  },
  async invalidate({ scope }) {
    await client.invalidate(scope);
    return {};
  },
  async report() {
    return { events, errors, tokens: [...tokens] };
  },
  async exit() {
    client.close();
    await redis.close();
    setTimeout(() => process.exit(0), 10);
    return {};
  },
};

process.on("message", async ({ id, op, ...args }) => {
  try {
    process.send({ id, ...(await ops[op](args)) });
  } catch (e) {
    process.send({ id, crash: String(e?.stack ?? e) });
  }
});
process.send({ ready: true });
