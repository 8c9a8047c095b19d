// The TokenBroker Durable Object behind two gateway processes (`wrangler dev`, workerd):
// gateway A hosts the broker; gateway B binds the same broker by `script_name` through a
// private dev registry, as a second isolate of the fleet would. Every emulator counter
// below is asserted exactly.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertCount, matrix } from "../faults-table.mjs";
import { EMU, ROOT, allOutput, control, gatewayVars, mintKey, newClient, sleep, startGateway, stats } from "./helpers.mjs";

const registry = mkdtempSync(join(tmpdir(), "registry-"));
const persistTo = mkdtempSync(join(tmpdir(), "broker-state-"));
const KEY = mintKey("fleet", ["*", "gateway:admin"]);
const KEY2 = mintKey("fleet-2", ["*"]);
let client;
let vars;
let a; // hosts the broker
let b; // binds it from another process
const seenTokens = new Set();

const startA = () => startGateway(vars, { broker: true, registry, persistTo });
const tokenCount = async (scope) => (await stats(client.id)).tokenRequests?.[scope] ?? 0;
const call = (gw, path, key = KEY) => fetch(`${gw.base}${path}`, { headers: { authorization: `Bearer ${key.key}` } });
/** The log lines (JSON) a gateway printed for `route`. */
const lines = (gw, route) =>
  gw.out.text
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes(`"route":"${route}"`))
    .map((l) => JSON.parse(l));

/** `n` concurrent calls spread over `gateways`: the statuses. */
async function burst(gateways, path, n) {
  const answers = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const r = await call(gateways[i % gateways.length], path);
      const text = await r.text();
      assert.ok(!text.includes(client.secret) && !/"generation"/.test(text), "a secret or generation in a response");
      return r.status;
    }),
  );
  return answers;
}

before(async () => {
  client = await newClient("broker");
  vars = gatewayVars(client, [KEY.entry, KEY2.entry]);
  // One at a time: two wrangler dev processes starting together race for shared state.
  a = await startA();
  b = await startGateway(vars, { broker: "vcc-auth-gateway", name: "vcc-auth-gateway-b", registry });
});

after(async () => {
  await a?.stop();
  await b?.stop();
});

test("both processes say they use the broker", async () => {
  for (const gw of [a, b]) {
    const h = await (await call(gw, "/healthz")).json();
    assert.equal(h.tokens, "broker");
    assert.equal(h.brokerError, null);
    assert.equal(h.rateLimit, "off", "no GATEWAY_RATE_LIMIT binding in this config");
  }
});

test("200 concurrent cold requests over both processes: 1 token request", async () => {
  const statuses = await burst([a, b], "/api/stats/agent-status", 200);
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
  );
  assert.equal(await tokenCount("stats"), 1);
});

test("revocation seen by both processes: exactly 1 new token request, 0 failed calls", async () => {
  await control("revoke", { clientId: client.id });
  const statuses = await burst([a, b], "/api/stats/agent-status", 40);
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
  );
  assert.equal(await tokenCount("stats"), 2);
});

test("revoke-all while the processes hold different generations: 0 failed calls, two generations at most", async () => {
  // A moves the broker to generation N+1 while B still holds N in its L1 copy.
  await control("revoke", { clientId: client.id });
  assert.equal((await call(a, "/api/stats/agent-status")).status, 200);
  assert.equal(await tokenCount("stats"), 3);
  await sleep(200); // A's confirmation of N+1 reaches the broker
  // Revoke again: N and N+1 are both dead. B sends N, gets N+1 from the broker (dead
  // too), rejects it as well and gets N+2.
  await control("revoke", { clientId: client.id });
  const r = await call(b, "/api/stats/agent-status");
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  assert.equal(await tokenCount("stats"), 4);
  const statuses = await burst([a, b], "/api/stats/agent-status", 20);
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
  );
  assert.equal(await tokenCount("stats"), 4);
});

test("restart: the broker serves its stored token, no token request", async () => {
  await a.stop();
  a = await startA();
  const before = await tokenCount("stats");
  const r = await call(a, "/api/stats/agent-status");
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  assert.equal(await tokenCount("stats"), before);
  // wrangler prints the log line a moment after the answer
  for (let i = 0; i < 30 && !/"tokens":"broker"/.test(a.out.text); i++) await sleep(100);
  assert.match(a.out.text, /"tokens":"broker"/);
});

test("broker unreachable: calls succeed through the fallback; the next success after it returns goes through the broker", async () => {
  // docs/faults.md, row B1 (the fault matrix's broker error)
  const [row] = matrix(ROOT, "B1");
  await a.stop();
  const scope = "agents-availability:read";
  const before = await stats(client.id);
  const r = await call(b, "/api/agents-availability");
  assert.equal(String(r.status), row["caller sees"]);
  await r.arrayBuffer();
  const now = await stats(client.id);
  assertCount(now.tokenRequests[scope] - (before.tokenRequests?.[scope] ?? 0), row["token requests"], "B fetched the token itself");
  assertCount(now.apiRequests - before.apiRequests, row["API requests"], "API requests");
  const h = await (await call(b, "/healthz")).json();
  assert.match(h.brokerError, /^broker_/);
  for (let i = 0; i < 20 && !/"tokens":"fallback"/.test(b.out.text); i++) await sleep(100);
  assert.match(b.out.text, /"route":"\/agents-availability".*"tokens":"fallback"/);
  a = await startA();
  await sleep(5_500); // the breaker's open time
  const back = await call(b, "/api/agents-availability");
  assert.equal(back.status, 200);
  await back.arrayBuffer();
  for (let i = 0; i < 20 && !/"route":"\/agents-availability"[^\n]*"tokens":"broker"/.test(b.out.text); i++) await sleep(100);
  assert.match(b.out.text, /"route":"\/agents-availability"[^\n]*"tokens":"broker"/);
  assert.equal((await (await call(b, "/healthz")).json()).brokerError, null);
});

test("idle scopes: the alarm refreshes while in use and stops after use stops", async () => {
  await control("clients", { id: client.id, secret: client.secret, scopes: ["*"], lifetimeSeconds: 5 });
  const scope = "users:read";
  const path = "/api/useradmin/users";
  const count = () => tokenCount(scope);
  assert.equal((await call(a, path)).status, 200);
  assert.equal(await count(), 1);
  // No call for 4 s: the alarm at the refresh-ahead time (2.5 s) fetched the next token.
  await sleep(4_000);
  assert.equal(await count(), 2, "the alarm refreshed a scope used within its lifetime");
  // In use for 6 s over both processes: refreshes continue, every call succeeds.
  for (let i = 0; i < 6; i++) {
    assert.deepEqual(
      (await burst([a, b], path, 4)).filter((s) => s !== 200),
      [],
    );
    await sleep(1_000);
  }
  const inUse = await count();
  assert.ok(inUse >= 4, `refreshes while in use: ${inUse}`);
  // Use stops: within one lifetime the refreshes stop, and none follows.
  await sleep(6_000);
  const settled = await count();
  await sleep(8_000);
  assert.equal(await count(), settled, "token requests continued for an idle scope");
  assert.ok(settled - inUse <= 2, `at most two refreshes after the last use: ${settled - inUse}`);
});

test("20 concurrent misses in one isolate make one broker call; the others wait on it", async () => {
  // A scope no test used yet, and a slow token endpoint, so the misses overlap.
  await control("faults", { clientId: client.id, tokenDelayMs: 1500 });
  try {
    const before = lines(a, "/interaction-content").length;
    const statuses = await burst([a], "/api/interaction-content/interactions?start=2026-01-01", 20);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
    assert.equal(await tokenCount("interaction-content:read"), 1);
    for (let i = 0; i < 30 && lines(a, "/interaction-content").length < before + 20; i++) await sleep(100);
    const words = lines(a, "/interaction-content")
      .slice(before)
      .map((l) => l.tokens);
    assert.equal(words.filter((w) => w === "broker").length, 1, `one call asked the broker: ${words.join(" ")}`);
    assert.equal(words.filter((w) => w === "broker_wait").length, 19, `the others waited on it: ${words.join(" ")}`);
    assert.ok(!/broker_failed/.test(a.out.text), "no broker call failed");
  } finally {
    await control("faults", { clientId: client.id });
  }
});

test("one key's 401s stay with that key, across the fleet", async () => {
  // stats is in use on both processes; one path of it answers 401 to every token.
  await control("faults", { clientId: client.id, invalidTokenPath: "/stats/queue-times" });
  try {
    const before = await tokenCount("stats");
    const attacker = [];
    const victim = [];
    for (let i = 0; i < 20; i++) {
      for (const gw of [a, b]) {
        const r = await call(gw, "/api/stats/queue-times", KEY2);
        attacker.push(r.status);
        await r.arrayBuffer();
        const v = await call(gw, "/api/stats/agent-status");
        victim.push(v.status);
        await v.arrayBuffer();
      }
    }
    assert.deepEqual(
      victim.filter((s) => s !== 200),
      [],
      `the other key was refused: ${victim.join(" ")}`,
    );
    assert.ok(
      attacker.every((s) => s === 401 || s === 503),
      attacker.join(" "),
    );
    assert.ok(attacker.filter((s) => s === 503).length >= 30, `the key was not cooled down: ${attacker.join(" ")}`);
    const spent = (await tokenCount("stats")) - before;
    assert.ok(spent <= 4, `${spent} token requests for 40 calls of a path that rejects every token`);
  } finally {
    await control("faults", { clientId: client.id });
  }
});

test("a storm through the broker: /healthz says the cooldown, and no token times", async () => {
  const path = "/api/webhooks/subscriptions"; // admin:read, a scope of its own
  assert.equal((await call(a, path)).status, 200);
  await control("faults", { clientId: client.id, invalidTokenAlways: true });
  try {
    const first = await call(a, path);
    assert.equal(first.status, 401);
    await first.arrayBuffer();
    // A second key's fresh token dies too: the scope set cools down for the fleet.
    const second = await call(a, path, KEY2);
    await second.arrayBuffer();
    const third = await call(b, path, KEY2);
    assert.equal(third.status, 503);
    assert.equal((await third.json()).error, "token_rejected");
    for (const gw of [a, b]) {
      const h = (await (await call(gw, "/healthz")).json()).scopes["admin:read"];
      assert.ok(h.cooldownSeconds >= 1, `cooldownSeconds ${h.cooldownSeconds}`);
      assert.equal(h.expiresInSeconds, null, "the times of a token already dropped");
      assert.equal(h.lastError, "token_rejected");
    }
  } finally {
    await control("faults", { clientId: client.id });
  }
});

test("no secret, key, digest, token or generation in any log line", async () => {
  const t = await fetch(`${EMU}/Auth/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `grant_type=client_credentials&scope=stats&client_id=${client.id}&client_secret=${client.secret}`,
  });
  seenTokens.add((await t.json()).access_token);
  const out = allOutput();
  for (const s of [client.secret, KEY.key, KEY.entry.sha256, KEY2.key, KEY2.entry.sha256, ...seenTokens])
    assert.ok(!out.includes(s), "a secret leaked into a log");
  assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}/.test(out), "a token leaked into a log");
  assert.ok(!/generation/i.test(out), "a generation leaked into a log");
});
