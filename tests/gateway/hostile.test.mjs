// The gateway in workerd against an upstream that misbehaves on purpose (the emulator's
// fault switches): redirects, echoed headers, huge and stalled bodies, a caller's body
// that trickles, VCC rejecting every token, and paths that are not plain. Each test
// asserts what reached the emulator (or the place a redirect points at), not only
// statuses.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  EMU,
  OTHER_ORIGIN,
  sleep,
  mintKey,
  control,
  raw,
  startGateway,
  allOutput,
  newClient,
  stats,
  received,
  tokenRequests,
  stolen,
} from "./helpers.mjs";

const ALL = mintKey("all", ["*"]);
const STATS = mintKey("stats-only", ["stats"]);
const [KEY_ALL, KEY_STATS] = [ALL.key, STATS.key];
const ALLOWED = "http://admin.example.test";
let gw;
let client;

const call = (path, { key = KEY_ALL, headers = {}, ...init } = {}) =>
  fetch(`${gw.base}${path}`, { signal: AbortSignal.timeout(15_000), ...init, headers: { authorization: `Bearer ${key}`, ...headers } });
const faults = (f) => control("faults", { clientId: client.id, ...f });
const isJson = (t) => {
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
};
const logLines = () =>
  allOutput()
    .split("\n")
    .filter((l) => l.startsWith("{"));

before(async () => {
  client = await newClient("hostile");
  gw = await startGateway({
    VCC_CLIENT_ID: client.id,
    VCC_CLIENT_SECRET: client.secret,
    VCC_AUTH_BASE_URL: EMU,
    VCC_API_BASE_URL: EMU,
    GATEWAY_KEYS: JSON.stringify([ALL.entry, STATS.entry]),
    ALLOWED_ORIGINS: ALLOWED,
    UPSTREAM_TIMEOUT_MS: "1500",
    BODY_TIMEOUT_MS: "1000",
  });
});

after(async () => {
  await faults({});
  await gw?.stop();
});

test("a token endpoint redirect: 502, and neither the secret nor the form goes anywhere", async () => {
  for (const status of [307, 302]) {
    await control("revoke", { clientId: client.id });
    await faults({ tokenRedirect: `${OTHER_ORIGIN}/_emulator/steal/${client.id}-token`, redirectStatus: status });
    // a scope never fetched in this isolate, so the gateway must ask for a token
    const r = await call(status === 307 ? "/api/agents-availability" : "/api/useradmin/users");
    assert.equal(r.status, 502, `HTTP ${status}`);
    assert.equal((await r.json()).error, "token_failed");
    assert.deepEqual(await stolen(`${client.id}-token`), [], `the redirect target got the token request (HTTP ${status})`);
  }
  await faults({});
  for (let i = 0; i < 20 && !logLines().some((l) => l.includes('"detail":"redirect"')); i++) await sleep(100);
  assert.ok(
    logLines().some((l) => l.includes('"detail":"redirect"')),
    "the log says why",
  );
});

test("API redirects are never followed: same origin, other origin, loops", async () => {
  const cases = [
    [`/useradmin/users/1`, 302, KEY_STATS],
    [`${OTHER_ORIGIN}/_emulator/steal/${client.id}-api`, 307, KEY_ALL],
    [`${EMU}/stats/agent-status`, 302, KEY_ALL], // a loop: itself
  ];
  for (const [target, status, key] of cases) {
    await faults({ apiRedirect: target, redirectStatus: status });
    const before = (await received(client.id)).length;
    const r = await call("/api/stats/agent-status", { key });
    assert.equal(r.status, 502, target);
    assert.equal(r.headers.get("location"), null);
    assert.equal((await r.json()).error, "upstream_redirect");
    const after = await received(client.id);
    assert.deepEqual(
      after.slice(before).map((s) => s.path),
      ["/stats/agent-status"],
      `${target}: one upstream call, no follow`,
    );
  }
  assert.deepEqual(await stolen(`${client.id}-api`), [], "the other origin got the call");
  await faults({});
  // 304 is not a redirect: a conditional GET still passes
  assert.equal((await call("/api/stats/agent-status")).status, 200);
});

test("response headers pass by allow-list: no echoed token, CORS grant, Location, Refresh or hop-by-hop", async () => {
  await faults({ apiEchoHeaders: true });
  try {
    for (const origin of [undefined, ALLOWED]) {
      const r = await call("/api/stats/agent-status", { headers: origin ? { origin } : {} });
      assert.equal(r.status, 200);
      for (const h of [
        "authorization",
        "access-control-allow-credentials",
        "location",
        "refresh",
        "etag",
        "x-upstream-secret",
        "set-cookie",
      ]) {
        assert.equal(r.headers.get(h), null, `${h} passed (origin ${origin})`);
      }
      assert.equal(r.headers.get("access-control-allow-origin"), origin ?? null, "only the gateway decides CORS");
      assert.equal(r.headers.get("access-control-expose-headers"), origin ? "Retry-After, Content-Type" : null);
      assert.match(r.headers.get("content-type"), /application\/json/);
      assert.ok(!(await r.text()).includes("eyJ"));
    }
  } finally {
    await faults({});
  }
});

test("a 30 MB 401 is not buffered to classify it: the caller gets it streamed, no token request", async () => {
  const bytes = 30_000_000;
  await faults({ api401BodyBytes: bytes });
  try {
    const tokensBefore = await tokenRequests(client.id);
    const apiBefore = (await stats(client.id)).apiRequests;
    const r = await call("/api/stats/agent-status");
    assert.equal(r.status, 401);
    let n = 0;
    for await (const chunk of r.body) n += chunk.length;
    assert.equal(n, bytes, "the whole body reached the caller");
    // Only its first KBs were read: too long to be VCC's invalid_token, and with no
    // WWW-Authenticate it is not treated as one (no new token, no retry).
    assert.equal((await tokenRequests(client.id)) - tokensBefore, 0);
    assert.equal((await stats(client.id)).apiRequests - apiBefore, 1);
  } finally {
    await faults({});
  }
});

/** `fn`, and on failure the gateway process's last output in the error. A stalled
 *  upstream has held a caller past its 15 s timeout in 2 of 12 runs under load and in
 *  one CI run, and in 6 runs since not at all; once, the gateway's log line showed it
 *  had answered in 2 ms (the hold was in wrangler dev's proxy). That line tells. */
const diagnosed = (fn) => async () => {
  try {
    await fn();
  } catch (e) {
    throw new Error(`${e.name}: ${e.message}\n--- gateway output, last 4000 characters:\n${allOutput().slice(-4000)}`, { cause: e });
  }
};

test(
  "an upstream that stalls: the deadline covers headers and body",
  diagnosed(async () => {
    // Headers and half a chunked body, then 20 s of silence: the body streams, and is cut
    // at UPSTREAM_TIMEOUT_MS.
    await faults({ apiStallMs: 20_000 });
    try {
      const t0 = Date.now();
      const r = await call("/api/stats/agent-status");
      assert.equal(r.status, 200);
      // Cut off: an error, or (through wrangler's dev proxy) a body that ends early.
      const text = await r.text().catch(() => null);
      assert.ok(text === null || !isJson(text), `the body must be cut off, not completed: ${text}`);
      assert.ok(Date.now() - t0 < 6000, `held ${Date.now() - t0} ms`);
      // A stalled 401: its probe does not wait for the body either.
      await faults({ api401BodyBytes: 100_000, apiStallMs: 20_000 });
      const t1 = Date.now();
      const r401 = await call("/api/stats/agent-status");
      assert.equal(r401.status, 401);
      assert.ok(Date.now() - t1 < 6000, `401 held ${Date.now() - t1} ms`);
      await r401.body.cancel();
    } finally {
      await faults({});
    }
  }),
);

test(
  "an upstream answer of known size that stalls: read whole, so a 504 of ours",
  diagnosed(async () => {
    // Headers with the full Content-Length and half the body, then 20 s of silence: the
    // caller gets 504 upstream_timeout instead of a head and half a body.
    await faults({ apiStallMs: 20_000, apiStallSized: true });
    try {
      const t0 = Date.now();
      const r = await call("/api/stats/agent-status");
      assert.equal(r.status, 504);
      assert.match(await r.text(), /"error":"upstream_timeout"/);
      assert.ok(Date.now() - t0 < 6000, `held ${Date.now() - t0} ms`);
    } finally {
      await faults({});
    }
  }),
);

test("a caller's body that trickles: 408 body_timeout at BODY_TIMEOUT_MS, nothing forwarded", async () => {
  const before = (await received(client.id)).length;
  const t0 = Date.now();
  const body = JSON.stringify({ firstName: "Ada", padding: "x".repeat(60) });
  const r = await raw(
    gw.base,
    "PUT /api/useradmin/users/3 HTTP/1.1",
    { authorization: `Bearer ${KEY_ALL}`, "content-type": "application/json", "content-length": String(body.length) },
    { body, trickle: 300 },
  );
  assert.equal(r.status, 408, r.text.slice(0, 300));
  assert.match(r.text, /"error":"body_timeout"/);
  assert.ok(Date.now() - t0 < 6000, `held ${Date.now() - t0} ms`);
  assert.equal((await received(client.id)).length, before);
});

test("VCC rejecting every token: a cooldown, not a token request per call", async () => {
  // A scope of its own, so the cooldown does not touch the other tests.
  const path = "/api/interaction-content/interactions?start=2026-01-01";
  assert.equal((await call(path)).status, 200);
  await faults({ invalidTokenAlways: true });
  try {
    const before = await tokenRequests(client.id);
    const statuses = [];
    let retryAfter;
    for (let i = 0; i < 20; i++) {
      const r = await call(path);
      statuses.push(r.status);
      if (r.status === 503) {
        assert.equal((await r.json()).error, "token_rejected");
        retryAfter = r.headers.get("retry-after");
      } else await r.body?.cancel();
    }
    // The first call: its token is rejected, a new one too, VCC's 401 is passed on.
    // Then the scope cools down: refusals, and no token request.
    assert.equal(statuses[0], 401);
    assert.deepEqual(statuses.slice(1), Array(19).fill(503));
    assert.equal((await tokenRequests(client.id)) - before, 1, "20 calls cost one new token");
    assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
    const health = await (await fetch(`${gw.base}/healthz`)).json();
    const scope = health.scopes["interaction-content:read"];
    assert.equal(scope.lastError, "token_rejected");
    assert.ok(scope.cooldownSeconds >= 1);
  } finally {
    await faults({});
  }
  await sleep(1100);
  assert.equal((await call(path)).status, 200, "after the cooldown, calls work again");
});

test("paths that some server could read as traversal or a header never reach VCC", async () => {
  const before = (await received(client.id)).length;
  for (const path of [
    "/api/stats/..;/useradmin/users",
    "/api/stats/.;/x",
    "/api/stats/%2e%2e;x/useradmin/users",
    "/api/stats/%252e%252e/useradmin/users",
    "/api/stats/%c0%ae%c0%ae/useradmin/users",
    "/api/stats/a%09b",
    "/api/stats/a%0d%0aX-Injected:%201",
    "/api/stats/agent-status?x=%0d%0aX-Injected:%201",
  ]) {
    const r = await raw(gw.base, `GET ${path} HTTP/1.1`, { authorization: `Bearer ${KEY_STATS}` });
    assert.equal(r.status, 404, `${path} -> ${r.status}`);
    assert.match(r.text, /"error":"path_not_plain"/, path);
  }
  const after = await received(client.id);
  assert.equal(after.length, before, `forwarded: ${JSON.stringify(after.slice(before).map((s) => s.path))}`);
});

test("keys of every length are compared as digests: only the exact key passes", async () => {
  for (const key of [KEY_ALL.slice(0, -1), `${KEY_ALL}x`, KEY_ALL.toUpperCase(), "k", "x".repeat(4096)]) {
    assert.equal((await call("/api/stats/agent-status", { key })).status, 401, key.slice(0, 20));
  }
  assert.equal((await call("/api/stats/agent-status", { key: KEY_STATS })).status, 200);
});

test("nothing secret in this suite's log lines", async () => {
  const all = allOutput();
  assert.match(all, /"route":"\/stats"/);
  for (const s of [client.secret, KEY_ALL, KEY_STATS, ALL.entry.sha256, STATS.entry.sha256])
    assert.ok(!all.includes(s), "a secret, key or digest leaked into the log");
  assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}/.test(all), "a token leaked into the log");
});
