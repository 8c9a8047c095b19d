// Tests of the built npm package, imported by its name with no init call, as a user
// would after `npm install vcc-auth`. Run by scripts/test-pkg.sh from a scratch project
// where the packed tarball is installed, with VCC_EMULATOR_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { VccClient, VccError } from "vcc-auth";
// (tests/emulator.mjs, copied beside this file by scripts/test-pkg.sh)
import { EMU, clientOptions as opts, newClient as emulatorClient } from "./emulator.mjs";

assert.ok(EMU, "VCC_EMULATOR_URL must be set");

const newClient = (lifetimeSeconds) => emulatorClient("pkg", lifetimeSeconds);

test("imports by package name with no init and gets a token", async () => {
  const c = await newClient();
  const client = new VccClient(opts(c));
  const token = await client.getToken("agents-availability:read");
  assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  const res = await client.fetch("/agents-availability?skillNames=Sales,Service");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { Ready: 17, Away: 4, "Extended Away": 2, "Logged Out": 6 });
  client.close();
});

test("the cached fast path never serves a token the cache dropped", async () => {
  const c = await newClient();
  const client = new VccClient(opts(c));
  const scope = "agents-availability:read";
  const t1 = await client.getToken(scope);
  assert.equal(await client.getToken(scope), t1, "served from the cache");
  client.invalidate(scope);
  const t2 = await client.getToken(scope);
  assert.notEqual(t2, t1, "invalidate() drops it");
  client.invalidate();
  const t3 = await client.getToken(scope);
  assert.notEqual(t3, t2, "invalidate() of everything drops it");
  // VCC rejects the token (revoked): fetch refreshes and retries, and getToken follows
  await fetch(`${EMU}/_emulator/revoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ clientId: c.id }),
  });
  assert.equal((await client.fetch("/agents-availability")).status, 200);
  const t4 = await client.getToken(scope);
  assert.notEqual(t4, t3, "a token VCC rejected is not served again");
  const stats = await (await fetch(`${EMU}/_emulator/stats?clientId=${c.id}`)).json();
  assert.equal(stats.tokenRequests[scope], 4);
  client.close();
  await assert.rejects(client.getToken(scope), (e) => e.code === "closed");
});

test("errors are Error objects named VccError with a stable code and no secret", async () => {
  const c = await newClient();
  const client = new VccClient(opts(c, { clientSecret: "pkg-wrong-secret-value" }));
  await assert.rejects(client.getToken("stats"), (e) => {
    assert.ok(e instanceof Error);
    assert.ok(e instanceof VccError, "an instance of the exported class");
    assert.equal(e.name, "VccError");
    assert.equal(e.code, "invalid_client");
    assert.ok(!String(e).includes("pkg-wrong-secret-value"));
    assert.ok(!JSON.stringify(e).includes("pkg-wrong-secret-value"));
    assert.ok(!(e.stack ?? "").includes("pkg-wrong-secret-value"));
    return true;
  });
  assert.throws(
    () => new VccClient({ region: "emea", clientId: "x" }),
    (e) => e instanceof VccError && e.code === "invalid_config" && e.field === "clientSecret" && /clientSecret/.test(e.message),
  );
  client.close();
});

test("a Node process using the client exits by itself (refresh timers are unref'd)", async () => {
  const c = await newClient(7200);
  const script = new URL("./exit-check.mjs", import.meta.url);
  writeFileSync(
    script,
    `import { VccClient, VccError } from "vcc-auth";
     // Held in a global so it is never garbage-collected: only unref() can let Node exit
     // (a collected client would clear its timers through Drop and hide a missing unref).
     const client = (globalThis.client = new VccClient(${JSON.stringify(opts(c))}));
     await client.getToken("stats");
     const info = client.tokenInfo("stats");
     if (!(info.refreshAt > Date.now())) throw new Error("a refresh timer should be pending");
     console.log("used the client; not calling close()");`,
  );
  const started = Date.now();
  const code = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script.pathname], { stdio: ["ignore", "pipe", "inherit"] });
    const killer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("the process did not exit by itself within 15 s"));
    }, 15_000);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve(code);
    });
  });
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 15_000);
});

async function runChild(name, source, nodeArgs = []) {
  const script = new URL(`./${name}.mjs`, import.meta.url);
  writeFileSync(script, source);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script.pathname], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const killer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not exit within 20 s`));
    }, 20_000);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, out });
    });
  });
}

test("a caller waiting on a background refresh that backs off keeps Node alive until it ends", async () => {
  // 4 s tokens: the refresh timer fires at 2 s and meets a 429 with Retry-After 3, so the
  // background flight sleeps until ~5 s. At 3.7 s (hard margin) the script waits on that
  // flight. Were the backoff timer unref'd, Node would find nothing alive and exit with
  // 13 (unsettled top-level await) instead of getting the token.
  const c = await newClient(4);
  const r = await fetch(`${EMU}/_emulator/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ clientId: c.id, token429: 0 }),
  });
  assert.equal(r.status, 200);
  const { code, out } = await runChild(
    "backoff-check",
    `import { VccClient, VccError } from "vcc-auth";
     const client = new VccClient(${JSON.stringify(opts(c))});
     const first = await client.getToken("stats");
     await fetch(${JSON.stringify(EMU)} + "/_emulator/faults", { method: "POST", headers: { "content-type": "application/json" },
       body: JSON.stringify({ clientId: ${JSON.stringify(c.id)}, token429: 1, retryAfter: 3 }) });
     await new Promise((r) => setTimeout(r, 3700));
     const second = await client.getToken("stats");
     console.log(second !== first ? "new-token" : "same-token");
     client.close();`,
  );
  assert.equal(code, 0, "the process must not exit while a caller waits");
  assert.match(out, /new-token/);
});

test("a dropped client frees its refresh timers (weak refs: no refresh after GC)", async () => {
  // 2 s tokens refresh from 1 s on. The client is dropped and collected right after its
  // first token; 2.5 s later the emulator must have seen no refresh. If the JS wrapper's
  // finaliser did not drop the Rust client, or a timer held it strongly (a cycle), it
  // would live on and its timer would refresh.
  const c = await newClient(2);
  const { code, out } = await runChild(
    "drop-check",
    `import { VccClient, VccError } from "vcc-auth";
     await (async () => {
       const client = new VccClient(${JSON.stringify(opts(c))});
       await client.getToken("stats");
     })();
     for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
     await new Promise((r) => setTimeout(r, 2500));
     const s = await (await fetch(${JSON.stringify(EMU)} + "/_emulator/stats?clientId=${c.id}")).json();
     console.log("requests=" + s.tokenRequests.stats);`,
    ["--expose-gc"],
  );
  assert.equal(code, 0);
  assert.match(out, /requests=1\b/, out);
});

test("a kept client does refresh (the control for the test above)", async () => {
  const c = await newClient(2);
  const { code, out } = await runChild(
    "keep-check",
    `import { VccClient, VccError } from "vcc-auth";
     globalThis.client = new VccClient(${JSON.stringify(opts(c))});
     await globalThis.client.getToken("stats");
     for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
     await new Promise((r) => setTimeout(r, 2500));
     const s = await (await fetch(${JSON.stringify(EMU)} + "/_emulator/stats?clientId=${c.id}")).json();
     console.log("requests=" + s.tokenRequests.stats);
     globalThis.client.close();`,
    ["--expose-gc"],
  );
  assert.equal(code, 0);
  assert.doesNotMatch(out, /requests=1\b/, out);
});

test("the package declares typed options, not any", async () => {
  const { readFile } = await import("node:fs/promises");
  const { createRequire } = await import("node:module");
  const require = createRequire(import.meta.url);
  const dts = await readFile(require.resolve("vcc-auth/package.json").replace(/package\.json$/, "vcc_auth.d.ts"), "utf8");
  assert.match(dts, /constructor\(options: VccClientOptions\)/);
  assert.match(dts, /getToken\(scope: string\): Promise<string>/);
  assert.match(dts, /fetch\(input: string \| URL, init\?: VccRequestInit\): Promise<Response>/);
  assert.match(dts, /export interface VccClientOptions/);
});

// The `store` option in one process, with stores written here: the shape is checked,
// two clients share one token, and a store that throws, stalls or answers garbage never
// fails a call (the client fetches its own and says so). Redis across processes is
// tests/store/.
function memoryStore() {
  const data = new Map();
  const locks = new Map();
  const live = (m, k) => {
    const e = m.get(k);
    if (e && e.until <= Date.now()) m.delete(k);
    return m.get(k);
  };
  return {
    data,
    async get(k) {
      return live(data, k)?.value ?? null;
    },
    async swap(k, expected, value, ttl) {
      if ((live(data, k)?.value ?? null) !== (expected ?? null)) return false;
      data.set(k, { value, until: Date.now() + ttl });
      return true;
    },
    async lock(k, owner, lease) {
      if (live(locks, k)) return false;
      locks.set(k, { value: owner, until: Date.now() + lease });
      return true;
    },
    async unlock(k, owner) {
      if (live(locks, k)?.value === owner) locks.delete(k);
    },
  };
}

test("store: a store that is not one is refused, by name", () => {
  for (const store of [42, {}, { get() {}, swap() {}, lock() {} }]) {
    assert.throws(
      () => new VccClient(opts({ id: "x", secret: "y" }, { store })),
      (e) => e instanceof VccError && e.code === "invalid_config" && e.field === "store",
    );
  }
});

test("store: two clients share one token through it, sealed", async () => {
  const c = await newClient();
  const store = memoryStore();
  const [a, b] = [new VccClient(opts(c, { store })), new VccClient(opts(c, { store }))];
  const [ta, tb] = await Promise.all([a.getToken("stats"), b.getToken("stats")]);
  assert.equal(ta, tb);
  const stats = await (await fetch(`${EMU}/_emulator/stats?clientId=${c.id}`)).json();
  assert.equal(stats.tokenRequests.stats, 1);
  const [[name, { value }]] = [...store.data];
  assert.match(name, /^[0-9a-f]{64}$/, "the record's name shows nothing");
  assert.match(value, /^v1\.[\w-]{16}\.[\w-]+$/);
  assert.ok(!value.includes(ta.slice(-12)) && !value.includes(c.id));
  a.close();
  b.close();
});

test("store: one that throws, stalls or answers garbage fails no call; the client says so and fetches its own", async () => {
  const throwing = { ...memoryStore(), get: async () => Promise.reject(new Error("ECONNREFUSED 10.0.0.7:6379")) };
  const stalled = { ...memoryStore(), get: () => new Promise(() => {}) };
  const garbage = { ...memoryStore(), get: async () => 42 };
  for (const [what, store] of [
    ["throws", throwing],
    ["stalls", stalled],
    ["garbage", garbage],
  ]) {
    const c = await newClient();
    const events = [];
    const client = new VccClient(opts(c, { store, timeoutMs: 500, onEvent: (e) => events.push(e) }));
    const t0 = Date.now();
    const res = await client.fetch("/stats/agent-status");
    assert.equal(res.status, 200, what);
    assert.ok(Date.now() - t0 < 2_000, `${what}: ${Date.now() - t0} ms`);
    const failed = events.find((e) => e.type === "store_unavailable");
    assert.ok(failed, `${what}: no store_unavailable event`);
    assert.ok(!JSON.stringify(failed).includes("10.0.0.7"), "the store's own error text is not passed on");
    // The breaker is open: the next miss does not wait on the store again.
    await client.invalidate("stats");
    const t1 = Date.now();
    await client.getToken("stats");
    assert.ok(Date.now() - t1 < 400, `${what}: the open breaker still waited ${Date.now() - t1} ms`);
    client.close();
  }
});
