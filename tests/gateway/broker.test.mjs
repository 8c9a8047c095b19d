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
const KEY = mintKey("fleet", ["*"]);
let client;
let vars;
let a; // hosts the broker
let b; // binds it from another process
const seenTokens = new Set();

const startA = () => startGateway(vars, { broker: true, registry, persistTo });
const tokenCount = async (scope) => (await stats(client.id)).tokenRequests?.[scope] ?? 0;
const call = (gw, path) => fetch(`${gw.base}${path}`, { headers: { authorization: `Bearer ${KEY.key}` } });

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
  vars = gatewayVars(client, [KEY.entry]);
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
    const h = await (await fetch(`${gw.base}/healthz`)).json();
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
  const h = await (await fetch(`${b.base}/healthz`)).json();
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
  assert.equal((await (await fetch(`${b.base}/healthz`)).json()).brokerError, null);
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

test("no secret, key, digest, token or generation in any log line", async () => {
  const t = await fetch(`${EMU}/Auth/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `grant_type=client_credentials&scope=stats&client_id=${client.id}&client_secret=${client.secret}`,
  });
  seenTokens.add((await t.json()).access_token);
  const out = allOutput();
  for (const s of [client.secret, KEY.key, KEY.entry.sha256, ...seenTokens]) assert.ok(!out.includes(s), "a secret leaked into a log");
  assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}/.test(out), "a token leaked into a log");
  assert.ok(!/generation/i.test(out), "a generation leaked into a log");
});
