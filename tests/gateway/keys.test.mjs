// Gateway keys, rate limits and extra routes, in workerd against the emulator: keys
// minted by `make key`, each refusal with its own code and nothing sent upstream for it,
// the Workers Rate Limiting binding, GATEWAY_ROUTES, and leak scans that allow key ids
// in logs but never keys or digests.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { ROOT, allOutput, gatewayVars, control, mintKey, newClient, received, sleep, startGateway, stats } from "./helpers.mjs";

const PERIOD = 10;
const LIMIT = 3;
let client;
let gw;
/** Minted by the `make key` command itself (the others by the same binary, directly). */
let wallboard;
const all = mintKey("ops-all", ["*", "gateway:admin"]);
const expired = mintKey("retired", ["*"], "2020-01-01");
const users = mintKey("users-reader", ["users:read"]);
const secrets = () => [client.secret, wallboard.key, all.key, expired.key, users.key];
const digests = () => [wallboard.entry.sha256, all.entry.sha256, expired.entry.sha256, users.entry.sha256];

const call = (base, path, key, init = {}) =>
  fetch(`${base}${path}`, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers ?? {}) } });

async function bodyOf(res) {
  const text = await res.text();
  for (const s of [...secrets(), ...digests()]) assert.ok(!text.includes(s), "a key, digest or secret in a response");
  return JSON.parse(text);
}

const upstreamCalls = async () => (await received(client.id)).length;
const tokenRequests = async () => Object.values((await stats(client.id)).tokenRequests ?? {}).reduce((a, b) => a + b, 0);

before(async () => {
  const make = execFileSync("make", ["-s", "key", "ID=wallboard", "SCOPES=stats agents-availability:read", "JSON=1"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  wallboard = JSON.parse(make);
  client = await newClient("keys");
  await control("routes", [{ methods: "read", prefix: "/reports", scope: "stats" }]);
  gw = await startGateway(
    gatewayVars(client, [wallboard.entry, all.entry, expired.entry, users.entry], {
      GATEWAY_ROUTES: JSON.stringify([{ methods: "read", prefix: "/reports", scope: "stats" }]),
      GATEWAY_RATE_LIMIT_PERIOD: String(PERIOD),
    }),
    { rateLimit: { limit: LIMIT, period: PERIOD } },
  );
});

after(async () => {
  await gw?.stop();
});

test("make key prints a key once and an entry with only its digest; that key works", async () => {
  assert.match(wallboard.key, /^vccgw_[0-9a-f]{72}$/);
  assert.deepEqual(Object.keys(wallboard.entry).sort(), ["id", "scopes", "sha256"]);
  assert.deepEqual(wallboard.entry.scopes, ["stats", "agents-availability:read"]);
  assert.ok(!JSON.stringify(wallboard.entry).includes(wallboard.key.slice(6, 40)), "the entry holds no part of the key");
  const text = execFileSync("make", ["-s", "key", "ID=x", "SCOPES=stats"], { cwd: ROOT, encoding: "utf8" });
  assert.match(text, /shown once/);
  assert.match(text, /"sha256":"[0-9a-f]{64}"/);
  const bad = (args) => {
    try {
      execFileSync("make", ["-s", "key", ...args], { cwd: ROOT, encoding: "utf8", stdio: "pipe" });
      return "";
    } catch (e) {
      return String(e.stderr);
    }
  };
  assert.match(bad(["ID=has space", "SCOPES=stats"]), /ID must be/);
  assert.match(bad(["ID=x", "SCOPES=Stats"]), /SCOPES must be/);
  assert.match(bad(["ID=x", "SCOPES=stats", "EXPIRES=soon"]), /EXPIRES must be/);
  const r = await call(gw.base, "/api/stats/agent-status", wallboard.key);
  assert.equal(r.status, 200);
  await r.arrayBuffer();
});

test("bad checksum, unknown, expired and out-of-scope keys: each its code, nothing upstream, no token", async () => {
  const upstream = await upstreamCalls();
  const tokens = await tokenRequests();
  const typo = `${all.key.slice(0, 20)}${all.key[20] === "0" ? "1" : "0"}${all.key.slice(21)}`;
  const cases = [
    [undefined, 401, "no_key"],
    [typo, 401, "malformed_key"],
    [all.key.slice(0, -1), 401, "malformed_key"],
    ["an-old-style-plaintext-key-0123456789", 401, "malformed_key"],
    [mintKey("never-configured", ["*"]).key, 401, "unknown_key"],
    [expired.key, 401, "expired_key"],
    [users.key, 403, "scope_denied"],
  ];
  for (const [key, status, code] of cases) {
    const r = await call(gw.base, "/api/stats/agent-status", key);
    assert.equal(r.status, status, code);
    assert.equal((await bodyOf(r)).error, code);
  }
  assert.equal(await upstreamCalls(), upstream, "a refused call reached upstream");
  assert.equal(await tokenRequests(), tokens, "a refused call fetched a token");
  // The log names the expired key by its id (the key and digest are scanned for below).
  for (let i = 0; i < 40 && !/"key":"retired"/.test(gw.out.text); i++) await sleep(100);
  assert.match(gw.out.text, /"status":401.*"key":"retired"|"key":"retired".*"status":401/);
});

test("plaintext GATEWAY_KEYS and a malformed GATEWAY_ROUTES row are refused at startup, naming the setting only", async () => {
  const plaintext = "plaintext-gateway-key-0123456789";
  for (const [vars, setting, says] of [
    [{ GATEWAY_KEYS: JSON.stringify({ [plaintext]: ["*"] }) }, "GATEWAY_KEYS", /plaintext keys.*make key/],
    [{ GATEWAY_KEYS: JSON.stringify([{ id: "x", key: plaintext, scopes: ["*"] }]) }, "GATEWAY_KEYS", /plaintext key/],
    [
      {
        GATEWAY_KEYS: JSON.stringify([all.entry]),
        GATEWAY_ROUTES: JSON.stringify([{ methods: "read", prefix: "/reports/../x", scope: "stats" }]),
      },
      "GATEWAY_ROUTES",
      /entry 1 .*plain path/,
    ],
    [
      // A stats row under the users API would hand users to stats keys.
      {
        GATEWAY_KEYS: JSON.stringify([all.entry]),
        GATEWAY_ROUTES: JSON.stringify([{ methods: "read", prefix: "/useradmin/users/me", scope: "stats" }]),
      },
      "GATEWAY_ROUTES",
      /entry 1 is under a built-in route's prefix with another scope/,
    ],
    [
      // Here the API and the token endpoint share the emulator's origin.
      {
        GATEWAY_KEYS: JSON.stringify([all.entry]),
        GATEWAY_ROUTES: JSON.stringify([{ methods: "post", prefix: "/auth/connect", scope: "stats" }]),
      },
      "GATEWAY_ROUTES",
      /entry 1 reaches the token endpoint/,
    ],
  ]) {
    const bad = await startGateway(gatewayVars(client, [], vars));
    try {
      const r = await call(bad.base, "/api/stats/agent-status", all.key);
      assert.equal(r.status, 500);
      const body = await r.json();
      assert.equal(body.error, "gateway_misconfigured");
      assert.equal(body.setting, setting);
      assert.match(body.message, says);
      assert.ok(!JSON.stringify(body).includes(plaintext) && !bad.out.text.includes(plaintext), "the plaintext key was echoed");
    } finally {
      await bad.stop();
    }
  }
});

test("rate limit: the N+1-th call in a period gets 429 rate_limited with Retry-After; other keys are unaffected", async () => {
  // Miniflare's limiter counts in fixed windows of the period: start just after one opens.
  while (Date.now() % (PERIOD * 1000) > 1500) await sleep(100);
  const limited = mintKey("unused", ["*"]); // not configured: unknown keys are not counted
  for (let i = 0; i < LIMIT; i++) {
    const r = await call(gw.base, "/api/stats/agent-status", all.key);
    assert.equal(r.status, 200, `call ${i + 1}`);
    await r.arrayBuffer();
  }
  const upstream = await upstreamCalls();
  const over = await call(gw.base, "/api/stats/agent-status", all.key);
  assert.equal(over.status, 429);
  assert.equal(over.headers.get("retry-after"), String(PERIOD));
  assert.equal((await bodyOf(over)).error, "rate_limited");
  assert.equal(await upstreamCalls(), upstream, "the limited call reached upstream");
  const other = await call(gw.base, "/api/stats/agent-status", wallboard.key);
  assert.equal(other.status, 200, "another key is counted on its own");
  await other.arrayBuffer();
  assert.equal((await call(gw.base, "/api/stats/agent-status", limited.key)).status, 401);
  const health = await bodyOf(await call(gw.base, "/healthz", all.key));
  assert.equal(health.rateLimit, "on");
});

test("a body refused while it streams (413) counts toward the rate limit, as the README says", async () => {
  // A period of its own: past the start of the current one, then the next one's start.
  while (Date.now() % (PERIOD * 1000) <= 1500) await sleep(100);
  while (Date.now() % (PERIOD * 1000) > 1500) await sleep(100);
  for (let i = 0; i < LIMIT - 1; i++) {
    const r = await call(gw.base, "/api/stats/agent-status", all.key);
    assert.equal(r.status, 200, `call ${i + 1}`);
    await r.arrayBuffer();
  }
  // No Content-Length: refused only once its bytes pass the limit, after the count.
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 2; i++) c.enqueue(new Uint8Array(65536));
      c.close();
    },
  });
  const big = await call(gw.base, "/api/useradmin/users/3", all.key, { method: "PUT", body: stream, duplex: "half" });
  assert.equal(big.status, 413);
  assert.equal((await bodyOf(big)).error, "body_too_large");
  const over = await call(gw.base, "/api/stats/agent-status", all.key);
  assert.equal(over.status, 429, "the streamed 413 was counted");
  await over.arrayBuffer();
});

test("a route added by GATEWAY_ROUTES is proxied with its scope; the key's scopes still apply", async () => {
  const r = await call(gw.base, "/api/reports/daily?day=2026-11-25", wallboard.key);
  assert.equal(r.status, 200);
  assert.deepEqual(await bodyOf(r), { route: "/reports", method: "GET", path: "/reports/daily" });
  const last = (await received(client.id)).at(-1);
  assert.equal(last.path, "/reports/daily");
  assert.ok((await stats(client.id)).tokenRequests.stats >= 1, "the token was asked for the row's scope");
  assert.equal((await call(gw.base, "/api/reports/daily", users.key)).status, 403);
  assert.equal((await call(gw.base, "/api/reports/daily", wallboard.key, { method: "POST", body: "{}" })).status, 405);
});

test("healthz names key ids and expiry, never keys or digests", async () => {
  const h = await bodyOf(await call(gw.base, "/healthz", all.key));
  assert.deepEqual(
    h.keys.map((k) => [k.id, k.expired]),
    [
      ["wallboard", false],
      ["ops-all", false],
      ["retired", true],
      ["users-reader", false],
    ],
  );
  assert.equal(h.tokens, "isolate");
});

test("no key or digest in any log line; ids are there", async () => {
  const out = allOutput();
  assert.match(out, /"key":"wallboard"/);
  for (const s of [...secrets(), ...digests()]) assert.ok(!out.includes(s), "a key, digest or secret leaked into the log");
});
