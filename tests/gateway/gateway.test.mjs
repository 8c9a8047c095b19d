// The gateway in workerd (`wrangler dev` on worker/) against the VCC emulator. Asserts
// on what the emulator received, not only on statuses, and that no secret, key or
// token appears in any response or in wrangler's output.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import {
  EMU,
  rnd,
  mintKey,
  gatewayVars,
  control,
  raw,
  startGateway,
  allOutput,
  stats as statsOf,
  received as receivedOf,
  tokenRequests as tokenRequestsOf,
} from "./helpers.mjs";

const CLIENT = `gw-${rnd()}`;
const SECRET = `gw-secret-${rnd()}-${rnd()}`;
const ALL = mintKey("all", ["*", "gateway:admin"]);
const STATS = mintKey("stats-only", ["stats"]);
const [KEY_ALL, KEY_STATS] = [ALL.key, STATS.key];
const DIGESTS = [ALL.entry.sha256, STATS.entry.sha256];
const ALLOWED = "http://admin.example.test";
const seenTokens = new Set();
let gw; // the main gateway

const stats = (id = CLIENT) => statsOf(id);
const received = (id = CLIENT) => receivedOf(id);
const tokenRequests = (id = CLIENT) => tokenRequestsOf(id);

const get = (path, { key = KEY_ALL, headers = {}, ...init } = {}) =>
  fetch(`${gw.base}${path}`, { ...init, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } });

async function jsonOf(res) {
  const text = await res.text();
  for (const [k, v] of res.headers) assert.ok(!k.toLowerCase().startsWith("set-cookie"), `response header ${k}: ${v}`);
  for (const s of [SECRET, KEY_ALL, KEY_STATS, ...DIGESTS, ...seenTokens])
    assert.ok(!text.includes(s), "a secret, key, digest or token leaked into a response");
  return JSON.parse(text);
}

before(async () => {
  await control("clients", { id: CLIENT, secret: SECRET, scopes: ["*"], lifetimeSeconds: 7200 });
  gw = await startGateway({
    VCC_CLIENT_ID: CLIENT,
    VCC_CLIENT_SECRET: SECRET,
    VCC_AUTH_BASE_URL: EMU,
    VCC_API_BASE_URL: EMU,
    GATEWAY_KEYS: JSON.stringify([ALL.entry, STATS.entry]),
    ALLOWED_ORIGINS: ALLOWED,
    UPSTREAM_TIMEOUT_MS: "1500",
    // 10 min instead of the default 5: /healthz's refreshInSeconds shows it is read
    REFRESH_AHEAD_MS: "600000",
  });
});

after(async () => {
  await gw?.stop();
  if (process.env.GATEWAY_TEST_LOG) writeFileSync(process.env.GATEWAY_TEST_LOG, allOutput());
});

test("100 concurrent cold requests: exactly 1 token request, 100 x 200", async () => {
  const before = await tokenRequests();
  const all = await Promise.all(Array.from({ length: 100 }, () => get("/api/agents-availability?skillNames=Sales")));
  assert.deepEqual(
    all.map((r) => r.status),
    Array(100).fill(200),
  );
  assert.deepEqual(await jsonOf(all[0]), { Ready: 10, Away: 3, "Extended Away": 0, "Logged Out": 2 });
  assert.equal((await tokenRequests()) - before, 1);
});

test("keys: none or unknown -> 401, key without the scope -> 403, nothing forwarded", async () => {
  const n = (await received()).length;
  let r = await get("/api/stats/agent-status", { key: null });
  assert.equal(r.status, 401);
  assert.equal((await jsonOf(r)).error, "no_key");
  r = await get("/api/stats/agent-status", { key: "not-a-real-gateway-key" });
  assert.equal(r.status, 401);
  assert.equal((await jsonOf(r)).error, "malformed_key");
  r = await get("/api/stats/agent-status", { key: mintKey("not-configured", ["*"]).key });
  assert.equal(r.status, 401);
  assert.equal((await jsonOf(r)).error, "unknown_key");
  r = await get("/api/useradmin/users", { key: KEY_STATS });
  assert.equal(r.status, 403);
  assert.equal((await jsonOf(r)).error, "scope_denied");
  r = await get("/api/stats/agent-status", { key: KEY_STATS });
  assert.equal(r.status, 200);
  assert.equal((await received()).length, n + 1, "only the allowed request reached VCC");
});

test("routes: unknown -> 404, wrong method -> 405, writes pass with the body", async () => {
  let r = await get("/api/no-such-api");
  assert.equal(r.status, 404);
  assert.equal((await jsonOf(r)).error, "route_not_found");
  r = await get("/api/stats/agent-status", { method: "POST", body: "{}" });
  assert.equal(r.status, 405);
  assert.equal((await jsonOf(r)).error, "method_not_allowed");
  r = await get("/api/useradmin/users/3", {
    method: "PUT",
    body: JSON.stringify({ firstName: "Ada" }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(r.status, 200);
  assert.equal((await jsonOf(r)).received.firstName, "Ada");
  // the Webhooks API: a row in the route table and the emulator's answer, nothing else
  r = await get("/api/webhooks/subscriptions");
  assert.equal(r.status, 200);
  assert.equal((await jsonOf(r)).items[0].id, "sub-1");
  r = await get("/api/webhooks/subscriptions/sub-1", { key: KEY_STATS, method: "DELETE" });
  assert.equal(r.status, 403);
  assert.equal((await jsonOf(r)).error, "scope_denied");
});

test("forwarding: VCC gets our bearer and versioned Accept, never the key, cookies or forwarding headers", async () => {
  const r = await get("/api/useradmin/users?page=2&limit=3", {
    headers: { cookie: "session=browser-cookie", "x-forwarded-for": "10.9.9.9", "x-request-id": "req-123", accept: "*/*" },
  });
  assert.equal(r.status, 200);
  assert.equal((await jsonOf(r)).items.length, 3);
  const last = (await received()).at(-1);
  assert.equal(last.path, "/useradmin/users");
  assert.equal(last.query, "page=2&limit=3");
  assert.equal(last.headers.authorization, "Bearer <valid token>");
  assert.equal(last.headers.accept, "application/vnd.newvoicemedia.v1+json");
  assert.equal(last.headers["x-request-id"], "req-123");
  for (const h of ["cookie", "x-forwarded-for", "origin", "referer"]) assert.equal(last.headers[h], undefined, h);
  assert.ok(!JSON.stringify(last).includes(KEY_ALL));
});

test("path tricks never reach VCC", async () => {
  // Sent raw (no client-side normalisation) with a key that may only use `stats`: a
  // trick must neither be forwarded as sent nor escape the key's scope. (workerd itself
  // resolves plain `..` before the worker runs; the gateway then checks the scope of
  // the resolved path, so /api/stats/../useradmin is a 403 for this key.)
  const n = (await received()).length;
  const auth = { authorization: `Bearer ${KEY_STATS}` };
  for (const path of [
    "/api/stats/../useradmin/users",
    "/api/stats/%2e%2e/useradmin/users",
    "/api/stats/%2E%2E/useradmin/users",
    "/api/stats/./../useradmin/users",
    "/api//stats/agent-status",
    "/api/stats/%2fagent-status",
    "/api/stats/%5c..%5cuseradmin",
    "/api/stats/%00",
    "/api/@evil.example/stats",
    "/api/stats\\..\\useradmin",
  ]) {
    const r = await raw(gw.base, `GET ${path} HTTP/1.1`, auth);
    assert.ok(r.status >= 400 && r.status < 500, `${path} -> ${r.status}`);
  }
  const after = await received();
  assert.equal(after.length, n, `forwarded: ${JSON.stringify(after.slice(n).map((s) => s.path))}`);
});

test("CORS: listed origin gets headers, others 403 with none, preflight answered", async () => {
  let r = await get("/api/stats/agent-status", { headers: { origin: ALLOWED } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), ALLOWED);
  r = await get("/api/stats/agent-status", { headers: { origin: "http://evil.example.test" } });
  assert.equal(r.status, 403);
  assert.equal((await jsonOf(r)).error, "origin_denied");
  assert.equal(r.headers.get("access-control-allow-origin"), null);
  r = await fetch(`${gw.base}/api/useradmin/users/1`, {
    method: "OPTIONS",
    headers: { origin: ALLOWED, "access-control-request-method": "PUT", "access-control-request-headers": "authorization, content-type" },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get("access-control-allow-origin"), ALLOWED);
  assert.match(r.headers.get("access-control-allow-headers"), /Authorization/);
  r = await fetch(`${gw.base}/api/useradmin/users/1`, {
    method: "OPTIONS",
    headers: { origin: "http://evil.example.test", "access-control-request-method": "PUT" },
  });
  assert.equal(r.status, 403);
  assert.equal(r.headers.get("access-control-allow-origin"), null);
});

test("bodies over 100 KiB (what VCC takes) -> 413, by Content-Length and by streamed length", async () => {
  const n = (await received()).length;
  const big = "x".repeat(100 * 1024 + 1);
  let r = await get("/api/useradmin/users/3", { method: "PUT", body: big });
  assert.equal(r.status, 413);
  assert.equal((await jsonOf(r)).error, "body_too_large");
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < 2; i++) c.enqueue(new Uint8Array(65536));
      c.close();
    },
  });
  r = await get("/api/useradmin/users/3", { method: "PUT", body: stream, duplex: "half" });
  assert.equal(r.status, 413);
  assert.equal((await received()).length, n);
  r = await get("/api/useradmin/users/3", { method: "PUT", body: JSON.stringify({ pad: "x".repeat(100 * 1024 - 20) }) });
  assert.equal(r.status, 200, "100 KiB itself passes");
  await r.arrayBuffer();
});

test("revoked tokens: one refresh and one retry, the caller sees 200", async () => {
  const before = await tokenRequests();
  await control("revoke", { clientId: CLIENT });
  const r = await get("/api/agents-availability");
  assert.equal(r.status, 200);
  assert.equal((await tokenRequests()) - before, 1);
  const s = await stats();
  assert.ok(s.api401InvalidToken >= 1);
});

test("token endpoint down -> 502 token_endpoint with no detail; upstream slow -> 504", async () => {
  await control("revoke", { clientId: CLIENT });
  await control("faults", { clientId: CLIENT, tokenDown: true });
  let r = await get("/api/agents-availability");
  assert.equal(r.status, 502);
  assert.deepEqual(await jsonOf(r), { error: "token_failed", message: "the gateway could not get a VCC token" });
  await control("faults", { clientId: CLIENT, apiDelayMs: 3000 });
  r = await get("/api/agents-availability");
  assert.equal(r.status, 504);
  assert.equal((await jsonOf(r)).error, "upstream_timeout");
  await control("faults", { clientId: CLIENT });
});

test("other paths serve the demo page from worker/site/, with its CSP and the package's wasm", async () => {
  const r = await fetch(`${gw.base}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /text\/html/);
  assert.match(r.headers.get("content-security-policy"), /default-src 'self'/);
  assert.match(await r.text(), /<title>vcc-auth demo<\/title>/);
  const wasm = await fetch(`${gw.base}/vendor/vcc-auth/vcc_auth_bg.wasm`);
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get("content-type"), "application/wasm", "streaming instantiation needs it");
  assert.equal((await fetch(`${gw.base}/_headers`)).status, 404, "the headers file itself is not served");
});

test("healthz shows per-scope expiry and refreshes, never a token", async () => {
  assert.equal((await get("/api/agents-availability")).status, 200);
  // The details are for the admin role (ALL holds gateway:admin); to others, liveness.
  assert.deepEqual(await (await fetch(`${gw.base}/healthz`)).json(), { ok: true });
  assert.deepEqual(await (await get("/healthz", { key: STATS.key })).json(), { ok: true });
  const r = await get("/healthz");
  const body = await jsonOf(r);
  assert.equal(body.ok, true);
  const scope = body.scopes["agents-availability:read"];
  assert.ok(scope.expiresInSeconds > 7000);
  // 2 h tokens refresh REFRESH_AHEAD_MS (10 min here) before expiry, not the default 5 min
  assert.ok(scope.refreshInSeconds > 6400 && scope.refreshInSeconds <= 6600, `refreshInSeconds ${scope.refreshInSeconds}`);
  assert.equal(typeof scope.refreshes, "number");
});

test("the request that starts the token fetch is aborted by its client: the 20 waiting still succeed", async () => {
  // A slow token endpoint (1.5 s) and a cold scope: request A starts the fetch and its
  // client aborts after 200 ms; 20 more arrive meanwhile and join A's fetch. They must
  // all succeed, sharing it. (Under wrangler dev the client's abort does not end A inside
  // workerd; that a fetch outlives the request that started it is proven by the
  // "already answered" test below.)
  await control("revoke", { clientId: CLIENT });
  await control("faults", { clientId: CLIENT, tokenDelayMs: 1500 });
  const before = await tokenRequests();
  try {
    const abort = new AbortController();
    const first = get("/api/interaction-content/interactions?start=2026-01-01", { signal: abort.signal }).catch((e) => e.name);
    await new Promise((r) => setTimeout(r, 100));
    const others = Array.from({ length: 20 }, () =>
      get("/api/interaction-content/interactions?start=2026-01-01", { signal: AbortSignal.timeout(20_000) }).then((r) => r.status),
    );
    await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    assert.equal(await first, "AbortError");
    assert.deepEqual(await Promise.all(others), Array(20).fill(200));
    assert.equal((await tokenRequests()) - before, 1, "the waiters shared the aborted request's fetch");
  } finally {
    await control("faults", { clientId: CLIENT });
  }
});

test("a refresh started by a request that has already answered survives it (ctx.waitUntil)", async () => {
  // 10 s tokens (9-10 s after JWT exp rounding). At ~5.2 s request A is served from the
  // cache and starts a background refresh the emulator holds for 6 s; A answers at once
  // and ends. At ~10.3 s the token has expired and B waits on that refresh. Kept alive by
  // A's ctx.waitUntil it lands at ~11.2 s; cancelled with A, B would wait out the 12 s
  // join timeout and fetch again (another 6 s).
  const id = `gwwu-${rnd()}`;
  await control("clients", { id, secret: SECRET, scopes: ["*"], lifetimeSeconds: 10 });
  const g = await startGateway(gatewayVars({ id, secret: SECRET }, [ALL.entry]));
  const call = () =>
    fetch(`${g.base}/api/stats/interactions`, { headers: { authorization: `Bearer ${KEY_ALL}` }, signal: AbortSignal.timeout(30_000) });
  try {
    const t0 = Date.now();
    assert.equal((await call()).status, 200);
    await control("faults", { clientId: id, tokenDelayMs: 6000 });
    await new Promise((r) => setTimeout(r, 5200 - (Date.now() - t0)));
    const a = Date.now();
    assert.equal((await call()).status, 200);
    assert.ok(Date.now() - a < 1000, "A is answered from the cache, not held by the refresh");
    await new Promise((r) => setTimeout(r, 10_300 - (Date.now() - t0)));
    const b = Date.now();
    assert.equal((await call()).status, 200);
    const waited = Date.now() - b;
    assert.ok(waited < 4000, `B waited ${waited} ms: the refresh did not survive A`);
    assert.equal(await tokenRequests(id), 2);
  } finally {
    await g.stop();
    await control("faults", { clientId: id });
  }
});

test("5-second tokens over 15 s of traffic: no errors, a handful of token requests", async () => {
  const id = `gw5-${rnd()}`;
  await control("clients", { id, secret: SECRET, scopes: ["*"], lifetimeSeconds: 5 });
  const short = await startGateway(gatewayVars({ id, secret: SECRET }, [ALL.entry]));
  try {
    const statuses = {};
    const end = Date.now() + 15_000;
    let calls = 0;
    while (Date.now() < end) {
      const batch = await Promise.all(
        Array.from({ length: 5 }, () =>
          fetch(`${short.base}/api/stats/queue-times`, { headers: { authorization: `Bearer ${KEY_ALL}` } }).then((r) => r.status),
        ),
      );
      for (const st of batch) statuses[st] = (statuses[st] ?? 0) + 1;
      calls += batch.length;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(statuses, { 200: calls }, JSON.stringify(statuses));
    const tokens = await tokenRequests(id);
    assert.ok(tokens >= 4 && tokens <= 12, `${tokens} token requests for 15 s of 5 s tokens over ${calls} calls`);
    const s = await stats(id);
    assert.equal(s.api401InvalidToken, 0, "no expired token was ever sent");
  } finally {
    await short.stop();
  }
});

test("misconfiguration: every request 500 naming the setting, never a value", async () => {
  const bad = await startGateway({
    VCC_CLIENT_SECRET: SECRET,
    VCC_AUTH_BASE_URL: EMU,
    VCC_API_BASE_URL: EMU,
    GATEWAY_KEYS: JSON.stringify([ALL.entry]),
  });
  try {
    const r = await fetch(`${bad.base}/api/stats/agent-status`, { headers: { authorization: `Bearer ${KEY_ALL}` } });
    assert.equal(r.status, 500);
    const body = await jsonOf(r);
    assert.equal(body.error, "gateway_misconfigured");
    assert.equal(body.setting, "VCC_CLIENT_ID");
    assert.match(body.message, /^VCC_CLIENT_ID /);
    for (let i = 0; i < 40 && !/gateway_misconfigured.*VCC_CLIENT_ID/.test(bad.out.text); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(bad.out.text, /gateway_misconfigured.*VCC_CLIENT_ID/, "the log names the setting");
    assert.ok(!bad.out.text.includes(SECRET) && !bad.out.text.includes(KEY_ALL));
  } finally {
    await bad.stop();
  }
});

test("no secret, gateway key or token in any log line", async () => {
  // collect the tokens the emulator issued to this client from a token request of our own
  const t = await fetch(`${EMU}/Auth/connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `grant_type=client_credentials&scope=stats&client_id=${CLIENT}&client_secret=${SECRET}`,
  });
  seenTokens.add((await t.json()).access_token);
  const all = allOutput();
  assert.match(all, /"route":"\/agents-availability"/, "the structured log lines are there");
  for (const s of [SECRET, KEY_ALL, KEY_STATS, ...DIGESTS]) assert.ok(!all.includes(s), "a secret, key or digest leaked into the log");
  assert.match(all, /"key":"stats-only"/, "log lines name the key by its id");
  assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}/.test(all), "a token leaked into the log");
});
