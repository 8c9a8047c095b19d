// The gateway in workerd against an upstream that misbehaves on purpose (the emulator's
// fault switches): redirects, echoed headers, huge and stalled bodies, a caller's body
// that trickles, VCC rejecting every token, and paths that are not plain. Each test
// asserts what reached the emulator (or the place a redirect points at), not only
// statuses.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { bundle, startWorkerd } from "../../bench/workerd.mjs";
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
  ROOT,
} from "./helpers.mjs";

const ALL = mintKey("all", ["*", "gateway:admin"]);
const STATS = mintKey("stats-only", ["stats"]);
const ADMIN = mintKey("admin-reader", ["admin:read"]);
const [KEY_ALL, KEY_STATS] = [ALL.key, STATS.key];
/** Room for two bodies of 100 KiB (the limit), not three. */
const BODY_BUFFER_LIMIT = 250_000;
const ALLOWED = "http://admin.example.test";
let gw;
let client;
let vars;

const call = (path, { key = KEY_ALL, headers = {}, ...init } = {}) =>
  fetch(`${gw.base}${path}`, { signal: AbortSignal.timeout(15_000), ...init, headers: { authorization: `Bearer ${key}`, ...headers } });
const faults = (f) => control("faults", { clientId: client.id, ...f });
const logLines = () =>
  allOutput()
    .split("\n")
    .filter((l) => l.startsWith("{"));

before(async () => {
  client = await newClient("hostile");
  vars = {
    VCC_CLIENT_ID: client.id,
    VCC_CLIENT_SECRET: client.secret,
    VCC_AUTH_BASE_URL: EMU,
    VCC_API_BASE_URL: EMU,
    GATEWAY_KEYS: JSON.stringify([ALL.entry, STATS.entry, ADMIN.entry]),
    ALLOWED_ORIGINS: ALLOWED,
    UPSTREAM_TIMEOUT_MS: "1500",
    BODY_TIMEOUT_MS: "1000",
    BODY_BUFFER_LIMIT: String(BODY_BUFFER_LIMIT),
  };
  gw = await startGateway(vars);
});

/** The gateway on workerd's own port, for the stalled-upstream tests: wrangler dev's
 *  proxy re-frames a cut answer as complete, and has held a stalled one past the
 *  caller's 15 s deadline (in 2 of 12 runs under load and in two CI runs; once the
 *  gateway's own log line showed it had answered in 2 ms). A deployed Worker has no such
 *  proxy. Started once, on first use. */
let direct;
async function callWorkerd(path) {
  if (!direct) {
    const b = bundle(join(ROOT, "worker"));
    direct = { b, w: await startWorkerd(b, vars) };
  }
  return fetch(`${direct.w.base}${path}`, {
    signal: AbortSignal.timeout(15_000),
    headers: { authorization: `Bearer ${KEY_ALL}` },
  });
}

after(async () => {
  await faults({});
  await gw?.stop();
  if (direct) {
    await direct.w.stop();
    rmSync(direct.b.out, { recursive: true, force: true });
  }
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

/** `fn`, and on failure the gateways' last output in the error (workerd's own, for the
 *  tests that run on it, then wrangler dev's): its log line says whether it answered. */
const diagnosed = (fn) => async () => {
  try {
    await fn();
  } catch (e) {
    const out = `${direct?.w.output.text ?? ""}\n----\n${allOutput()}`.slice(-4000);
    throw new Error(`${e.name}: ${e.message}\n--- gateway output, last 4000 characters:\n${out}`, { cause: e });
  }
};

test(
  "an upstream that stalls mid-body: a chunked answer is a 504 of ours, not a 200 that ends early",
  diagnosed(async () => {
    // Headers and half a chunked body, then 20 s of silence: its first 64 KiB are read
    // before answering, so the stall is a 504, not a 200 whose body ends cleanly early
    // (workerd ends an errored chunked body as if complete: cloudflare/workerd#6818).
    await faults({ apiStallMs: 20_000 });
    try {
      const t0 = Date.now();
      const r = await callWorkerd("/api/stats/agent-status");
      assert.equal(r.status, 504);
      assert.equal((await r.json()).error, "upstream_timeout");
      assert.ok(Date.now() - t0 < 6000, `held ${Date.now() - t0} ms`);
      // A stalled 401: neither its probe nor its answer waits past the deadline.
      await faults({ api401BodyBytes: 100_000, apiStallMs: 20_000 });
      const t2 = Date.now();
      const r401 = await callWorkerd("/api/stats/agent-status");
      assert.equal(r401.status, 504);
      assert.ok(Date.now() - t2 < 6000, `401 held ${Date.now() - t2} ms`);
      await r401.body.cancel();
    } finally {
      await faults({});
    }
  }),
);

test(
  "a long answer of known size cut at the deadline fails the caller's connection (workerd itself)",
  diagnosed(async () => {
    // wrangler dev's proxy and Miniflare's entry worker re-frame answers (a cut one
    // reaches their callers complete and chunked), so this runs on workerd's own port,
    // as a deployed Worker does. The answer streams with the length VCC announced: cut
    // at the deadline, the caller's connection closes short of it.
    try {
      await faults({ apiStallMs: 20_000, apiStallSized: true, apiStallPad: 200_000 });
      const t0 = Date.now();
      const r = await callWorkerd("/api/stats/agent-status");
      assert.equal(r.status, 200);
      assert.ok(Number(r.headers.get("content-length")) > 200_000, "the length VCC announced");
      const read = await r.arrayBuffer().then(
        (body) => `a complete body of ${body.byteLength} bytes`,
        () => "failed",
      );
      assert.equal(read, "failed", "a cut body must not read as complete");
      assert.ok(Date.now() - t0 < 6000, `held ${Date.now() - t0} ms`);
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
      const r = await callWorkerd("/api/stats/agent-status");
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
    const health = await (await call("/healthz")).json();
    const scope = health.scopes["interaction-content:read"];
    assert.equal(scope.lastError, "token_rejected");
    assert.ok(scope.cooldownSeconds >= 1);
  } finally {
    await faults({});
  }
  await sleep(1100);
  assert.equal((await call(path)).status, 200, "after the cooldown, calls work again");
});

test("one key's 401s stay with that key: a path that rejects every token cools its caller, not the other keys", async () => {
  // A scope of its own, fetched once, so the cooldown touches no other test.
  const bad = "/api/stats/queue-times";
  const good = "/api/stats/agent-status";
  assert.equal((await call(good)).status, 200);
  await faults({ invalidTokenPath: "/stats/queue-times" });
  try {
    const before = await tokenRequests(client.id);
    const attacker = [];
    const victim = [];
    for (let i = 0; i < 30; i++) {
      const a = await call(bad, { key: KEY_STATS });
      attacker.push(a.status);
      await a.body?.cancel();
      const v = await call(good, { key: KEY_ALL });
      victim.push(v.status);
      await v.body?.cancel();
    }
    assert.deepEqual(
      victim.filter((s) => s !== 200),
      [],
      `the victim key was refused: ${victim.join(" ")}`,
    );
    // The attacker gets VCC's 401 at first, then its own cooldown; never a token per call.
    assert.equal(attacker[0], 401);
    assert.ok(
      attacker.slice(1).every((s) => s === 401 || s === 503),
      attacker.join(" "),
    );
    assert.ok(attacker.filter((s) => s === 503).length >= 20, `the attacker was not cooled down: ${attacker.join(" ")}`);
    const spent = (await tokenRequests(client.id)) - before;
    assert.ok(spent <= 3, `${spent} token requests for 30 attacker calls`);
  } finally {
    await faults({});
  }
});

test("VCC rejecting fresh tokens for two keys is a storm: the whole scope cools down", async () => {
  const path = "/api/webhooks/subscriptions"; // a scope of its own
  assert.equal((await call(path)).status, 200);
  await faults({ invalidTokenAlways: true });
  try {
    const before = await tokenRequests(client.id);
    const first = await call(path, { key: KEY_ALL });
    assert.equal(first.status, 401, "the first caller: its token and the replacement rejected");
    await first.body?.cancel();
    // Another caller's fresh token dies too: two callers agree, so everyone waits.
    const second = await call(path, { key: ADMIN.key });
    await second.body?.cancel();
    const statuses = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(path);
      statuses.push(r.status);
      await r.body?.cancel();
    }
    assert.deepEqual(statuses, Array(5).fill(503));
    assert.ok((await tokenRequests(client.id)) - before <= 2, "a storm costs no token per call");
  } finally {
    await faults({});
  }
});

/** Opens a request that declares `size` body bytes and sends all but the last one:
 *  a caller holding a body. `close()` ends it. */
function holdBody(base, path, key, size) {
  const { hostname, port } = new URL(base);
  const sock = connect(Number(port), hostname, () => {
    sock.write(
      [
        `PUT ${path} HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        `Authorization: Bearer ${key}`,
        "Content-Type: application/json",
        `Content-Length: ${size}`,
        "",
        "",
      ].join("\r\n"),
    );
    sock.write(Buffer.alloc(size - 1, "x"));
  });
  sock.on("error", () => {});
  return { close: () => sock.destroy() };
}

test("request bodies held by an isolate are bounded: past BODY_BUFFER_LIMIT a call is refused 503 gateway_busy", async () => {
  const size = 100 * 1024;
  const upstream = (await received(client.id)).length;
  const held = [holdBody(gw.base, "/api/useradmin/users/1", KEY_ALL, size), holdBody(gw.base, "/api/useradmin/users/2", KEY_ALL, size)];
  try {
    await sleep(300);
    // A third body of the same size does not fit: refused before it is buffered.
    const body = JSON.stringify({ pad: "x".repeat(size - 10) });
    const r = await raw(
      gw.base,
      "PUT /api/useradmin/users/3 HTTP/1.1",
      {
        authorization: `Bearer ${KEY_ALL}`,
        "content-type": "application/json",
        "content-length": String(body.length),
      },
      { body },
    );
    assert.equal(r.status, 503, r.text.slice(0, 300));
    assert.match(r.text, /"error":"gateway_busy"/);
    assert.match(r.text, /\r\nretry-after: 1\r\n/i);
    assert.equal((await received(client.id)).length, upstream, "nothing went upstream");
  } finally {
    for (const h of held) h.close();
  }
  // Once the held bodies are gone (closed, or at BODY_TIMEOUT_MS), bodies fit again.
  await sleep(1500);
  const ok = await call("/api/useradmin/users/3", { method: "PUT", body: JSON.stringify({ firstName: "Ada" }) });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
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
  for (const s of [client.secret, KEY_ALL, KEY_STATS, ADMIN.key, ALL.entry.sha256, STATS.entry.sha256])
    assert.ok(!all.includes(s), "a secret, key or digest leaked into the log");
  assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}/.test(all), "a token leaked into the log");
});
