// A fleet sharing tokens through a real redis-server: several Node processes
// (tests/store/worker.mjs, each a VccClient from the packed package), the emulator as
// VCC, for node-redis and for ioredis alike. Run by scripts/test-store.sh from a
// scratch project where the tarball, redis and ioredis are installed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { createClient } from "redis";
import { startRedis } from "./redis.mjs";
import { EMU, control, newClient, rnd, sleep, stats } from "../emulator.mjs"; // copied there by scripts/test-store.sh

assert.ok(EMU, "VCC_EMULATOR_URL must be set");
const WORKER = new URL("./worker.mjs", import.meta.url).pathname;
const TIMEOUT_MS = 1500; // the lock's lease: 3 s
/** Token requests by scope set. */
const byScope = async (id) => (await stats(id)).tokenRequests ?? {};

/** A worker process: `call(op, args)` over IPC. */
async function spawnWorker(opts) {
  const child = fork(WORKER, [JSON.stringify(opts)], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const pending = new Map();
  let next = 0;
  const ready = new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${output}`)));
    child.on("message", (m) => {
      if (m.ready) return resolve();
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.crash) p?.reject(new Error(m.crash));
      else p?.resolve(m);
    });
  });
  await ready;
  return {
    child,
    output: () => output,
    call: (op, args = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ id, op, ...args });
      }),
    kill: () => {
      child.kill("SIGKILL");
      return new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once("exit", r)));
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.send({ id: -1, op: "exit" });
      await Promise.race([gone, sleep(2000).then(() => child.kill("SIGKILL"))]);
    },
  };
}

const failures = (statuses) => statuses.filter((s) => s !== 200);

for (const lib of ["redis", "ioredis"]) {
  describe(`a fleet of 4 processes sharing tokens through Redis (${lib})`, () => {
    let redis;
    let admin;
    let client;
    let fleet = [];
    const allWorkers = [];
    const start = async (extra = {}) => {
      const w = await spawnWorker({
        emu: EMU,
        redisUrl: redis.url,
        lib,
        clientId: client.id,
        secret: client.secret,
        timeoutMs: TIMEOUT_MS,
        ...extra,
      });
      allWorkers.push(w);
      return w;
    };
    const everyone = (op, args) => Promise.all(fleet.map((w) => w.call(op, args)));

    before(async () => {
      redis = await startRedis();
      admin = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
      admin.on("error", () => {});
      await admin.connect();
      client = await newClient(`store-${lib}`, 3600);
      fleet = await Promise.all([0, 1, 2, 3].map(() => start()));
    });

    after(async () => {
      await Promise.all(allWorkers.map((w) => w.stop()));
      await admin?.destroy();
      await redis?.stop();
    });

    test("200 concurrent cold calls over 4 processes: one token request per scope set", async () => {
      const [stats, avail] = await Promise.all([
        everyone("fetch", { path: "/stats/agent-status", n: 25 }),
        everyone("fetch", { path: "/agents-availability?skillNames=Sales", n: 25 }),
      ]);
      assert.deepEqual(failures([...stats, ...avail].flatMap((r) => r.statuses)), []);
      assert.deepEqual(await byScope(client.id), { stats: 1, "agents-availability:read": 1 });
    });

    test("a revocation seen by every process costs one token request and no failed call", async () => {
      const before = (await byScope(client.id)).stats;
      await control("revoke", { clientId: client.id });
      const got = await everyone("fetch", { path: "/stats/agent-status", n: 25 });
      assert.deepEqual(failures(got.flatMap((r) => r.statuses)), []);
      assert.equal((await byScope(client.id)).stats - before, 1);
    });

    test("revoke-all while the processes hold different generations: no failed call", async () => {
      // Two processes move on to a new generation; two keep the one they hold.
      await fleet[2].call("invalidate", { scope: "stats" });
      await fleet[2].call("fetch", { path: "/stats/agent-status" });
      await fleet[3].call("invalidate", { scope: "stats" });
      const held = await Promise.all(fleet.map((w) => w.call("token", { scope: "stats" })));
      const generations = new Set(held.map((h) => h.tokens[0]));
      assert.equal(generations.size, 2, "two generations held");
      const before = (await byScope(client.id)).stats;
      await control("revoke", { clientId: client.id });
      const got = await everyone("fetch", { path: "/stats/agent-status", n: 25 });
      assert.deepEqual(failures(got.flatMap((r) => r.statuses)), []);
      assert.ok((await byScope(client.id)).stats - before <= 2, "at most two new tokens");
    });

    test("the lock holder killed mid-fetch: another process takes over after the lease, no call fails", async () => {
      // The token endpoint hangs; the first process takes the lock and dies holding it.
      await control("faults", { clientId: client.id, tokenDelayMs: 10_000 });
      const doomed = fleet[0];
      doomed.call("token", { scope: "users:read" }).catch(() => {});
      for (let i = 0; i < 50 && !(await admin.keys("vcc-auth:*:lock")).length; i++) await sleep(20);
      assert.equal((await admin.keys("vcc-auth:*:lock")).length, 1, "the first process holds the lock");
      await doomed.kill();
      try {
        await control("faults", { clientId: client.id });
        const t0 = Date.now();
        const got = await Promise.all(fleet.slice(1).map((w) => w.call("fetch", { path: "/useradmin/users", n: 10 })));
        const waited = Date.now() - t0;
        assert.deepEqual(failures(got.flatMap((r) => r.statuses)), []);
        // (The emulator counts a request when it answers: the dead holder's may not count.)
        assert.ok((await byScope(client.id))["users:read"] <= 2, "one token request after the holder's");
        assert.ok(waited >= 2 * TIMEOUT_MS - 1_000, `the others waited for the lease (${waited} ms), not beside it`);
      } finally {
        fleet[0] = await start();
      }
    });

    test("Redis stopped: calls succeed on each process's own tokens; once it is back, tokens go through it again", async () => {
      await redis.stop();
      const down = await everyone("fetch", { path: "/interaction-content/interactions", n: 5 });
      assert.deepEqual(failures(down.flatMap((r) => r.statuses)), []);
      assert.equal((await byScope(client.id))["interaction-content:read"], 4, "each process its own token");
      const reports = await everyone("report");
      assert.ok(
        reports.every((r) => r.events.some((e) => e.type === "store_unavailable")),
        "each process said the store failed",
      );
      await redis.start();
      await sleep(5_500); // the breaker's window
      const scope = "interaction-content:read";
      await everyone("invalidate", { scope });
      const before = (await byScope(client.id))[scope];
      const back = await everyone("fetch", { path: "/interaction-content/interactions", n: 5 });
      assert.deepEqual(failures(back.flatMap((r) => r.statuses)), []);
      assert.equal((await byScope(client.id))[scope] - before, 1, "one token for the fleet again");
      assert.equal((await admin.keys("vcc-auth:*")).filter((k) => !k.endsWith(":lock")).length, 1, "its record is in Redis");
    });

    test("what Redis holds is sealed: no token, no client id, no scope; another secret's record does not open", async () => {
      const keys = await admin.keys("*");
      assert.ok(keys.length > 0);
      const reports = await everyone("report");
      const tokens = new Set(reports.flatMap((r) => r.tokens));
      assert.ok(tokens.size > 0);
      for (const k of keys) {
        const v = (await admin.get(k)) ?? "";
        for (const text of [k, v]) {
          assert.ok(!text.includes(client.id) && !text.includes(client.secret), `${k}: the client in the store`);
          for (const s of ["stats", "users", "interaction", "agents"]) assert.ok(!text.includes(s), `${k}: a scope in the store`);
          assert.ok(!text.includes("eyJ"), `${k}: a JWT in the store`);
          for (const t of tokens) assert.ok(!text.includes(t.slice(-16)), `${k}: a token in the store`);
        }
      }
      // A process with another secret reads the fleet's record in place of its own: it
      // does not open, so it fetches for itself, and VCC does not know that secret.
      const record = keys.find((k) => !k.endsWith(":lock"));
      const stranger = await start({ secret: `other-${rnd()}`, foreignKey: record.slice("vcc-auth:".length) });
      const got = await stranger.call("token", { scope: "interaction-content:read" });
      assert.deepEqual(got, { id: got.id, tokens: [], errors: ["invalid_client"] });
      await stranger.stop();
    });

    test("nothing of a token or the secret in any event, error or output", async () => {
      const reports = await everyone("report");
      const tokens = new Set(reports.flatMap((r) => r.tokens));
      const text = JSON.stringify(reports.map((r) => [r.events, r.errors])) + allWorkers.map((w) => w.output()).join("\n");
      assert.ok(!text.includes(client.secret), "the secret");
      for (const t of tokens) assert.ok(!text.includes(t.slice(-16)), "a token");
    });
  });
}
