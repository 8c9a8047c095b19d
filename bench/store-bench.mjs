// The token store's rows of `make bench` (alone: node bench/store-bench.mjs under
// scripts/with-emulator.sh, with pkg/ built). A real redis-server on a free port; fleets
// of Node processes (this file, forked) with 5-second tokens, making steady calls, with
// and without the store; the latency a store read adds to a cache miss; and the cached
// path with a store against without. Figures, not pass/fail.
import { fork } from "node:child_process";
import { startRedis } from "../tests/store/redis.mjs";
import { clientOptions, newClient, tokenRequests } from "../tests/emulator.mjs";

const pkg = new URL("../pkg/", import.meta.url);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const LIFETIME_S = 5;
const RUN_S = Number(process.env.BENCH_STORE_RUN_S ?? 10);

async function connect(url) {
  const { createClient } = await import("redis");
  const r = createClient({ url });
  r.on("error", () => {});
  await r.connect();
  return r;
}

const newClientOptions = async (lifetimeSeconds) => clientOptions(await newClient("bench-store", lifetimeSeconds));

if (process.argv[2] === "process") {
  // One process of a fleet: getToken every 50 ms for RUN_S, then exit.
  const { VccClient } = await import(new URL("index.mjs", pkg));
  const { redisStore } = await import(new URL("redis.mjs", pkg));
  const opts = JSON.parse(process.argv[3]);
  const redis = opts.redisUrl ? await connect(opts.redisUrl) : null;
  const client = new VccClient({ ...opts.client, ...(redis ? { store: redisStore(redis) } : {}) });
  let failed = 0;
  const end = Date.now() + RUN_S * 1000;
  while (Date.now() < end) {
    await client.getToken("stats").catch(() => failed++);
    await new Promise((r) => setTimeout(r, 50));
  }
  client.close();
  await redis?.destroy();
  process.send({ failed });
  process.exit(0);
}

async function fleet(n, redisUrl) {
  const client = await newClientOptions(LIFETIME_S);
  const done = Array.from({ length: n }, () => {
    const child = fork(new URL(import.meta.url).pathname, ["process", JSON.stringify({ client, redisUrl })]);
    return new Promise((resolve) => child.once("message", resolve));
  });
  const failed = (await Promise.all(done)).reduce((a, m) => a + m.failed, 0);
  return { perLifetime: (await tokenRequests(client.clientId)) / (RUN_S / LIFETIME_S), failed };
}

export async function storeRows() {
  const redis = await startRedis();
  const rows = [];
  try {
    // 1. Token requests per token lifetime, by fleet size.
    for (const n of [1, 2, 4, 8]) {
      console.error(`  store: ${n} process(es)`);
      const without = await fleet(n, null);
      const withStore = await fleet(n, redis.url);
      rows.push([
        `token requests per ${LIFETIME_S} s token lifetime, ${n} Node process${n > 1 ? "es" : ""}`,
        `${withStore.perLifetime.toFixed(1)} with a Redis store, ${without.perLifetime.toFixed(1)} without`,
        "1 per scope set for the fleet",
        `getToken every 50 ms on every process for ${RUN_S} s (refresh-ahead at half the lifetime); failed calls: ${withStore.failed + without.failed}`,
      ]);
    }

    // 2. A cache miss answered by the store, against one answered by a token request.
    console.error("  store: a miss");
    const { VccClient } = await import(new URL("index.mjs", pkg));
    const { redisStore } = await import(new URL("redis.mjs", pkg));
    const conn = await connect(redis.url);
    const creds = await newClientOptions(3600);
    const warm = new VccClient({ ...creds, store: redisStore(conn) });
    await warm.getToken("stats");
    const viaStore = [];
    const viaVcc = [];
    for (let i = 0; i < 41; i++) {
      const a = new VccClient({ ...creds, store: redisStore(conn), autoRefresh: false });
      let t = performance.now();
      await a.getToken("stats");
      viaStore.push(performance.now() - t);
      a.close();
      const b = new VccClient({ ...creds, autoRefresh: false });
      t = performance.now();
      await b.getToken("stats");
      viaVcc.push(performance.now() - t);
      b.close();
    }
    // The first of each pays for its own warm-up (WebCrypto, the connection).
    viaStore.shift();
    viaVcc.shift();
    rows.push([
      "a cache miss answered by the store",
      `${median(viaStore).toFixed(2)} ms vs ${median(viaVcc).toFixed(2)} ms by a token request`,
      "",
      "a new client's first getToken, Redis and the emulator on loopback (real VCC is a WAN round trip away); median of 40 each",
    ]);

    // 3. The cached path: the store is not on it.
    console.error("  store: cached path");
    const plain = new VccClient({ ...creds, autoRefresh: false });
    await plain.getToken("stats");
    const loop = async (c, n) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await c.getToken("stats");
      return Number(process.hrtime.bigint() - t) / n;
    };
    const N = 200_000;
    await loop(warm, N);
    await loop(plain, N);
    const [w, p] = [[], []];
    for (let round = 0; round < 5; round++) {
      w.push(await loop(warm, N));
      p.push(await loop(plain, N));
    }
    rows.push([
      "cached getToken with a store, ns/call",
      `${median(w).toFixed(0)} ns vs ${median(p).toFixed(0)} ns without: ${(median(w) / median(p)).toFixed(2)}×`,
      "unchanged",
      `median of 5 × ${N / 1000}k awaited calls, alternating`,
    ]);
    warm.close();
    plain.close();
    await conn.destroy();
  } finally {
    await redis.stop();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await storeRows()) console.log(`| ${r.join(" | ")} |`);
}
