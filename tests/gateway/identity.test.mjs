// People who sign in, in workerd, with the emulator as their identity provider (its
// JWKS where Cloudflare Access publishes one, tokens it signs on request): the policy's
// scopes and no others, each bad assertion refused with its code before anything goes
// upstream, the JWKS fetched with hostility and at most once per 10 s for unknown kids,
// a key rotation picked up, /healthz's details for the admin role only, and the person
// in the log line and the rate limit, never a JWT or an email.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  OTHER_ORIGIN,
  EMU,
  allOutput,
  control,
  gatewayVars,
  mintKey,
  newClient,
  received,
  sleep,
  startGateway,
  stats,
  stolen,
} from "./helpers.mjs";

const AUDIENCE = "vcc-gateway-test";
const KEY = mintKey("script", ["stats"]);
const ADMIN_KEY = mintKey("ops", ["gateway:admin"]);
const POLICY = [
  { claim: "groups", value: "supervisors", scopes: ["agents-availability:read", "stats"] },
  { email: "*@analysts.example", scopes: ["users:read"] },
  { claim: "groups", value: "admins", scopes: [], admin: true },
  // Access puts an identity provider's own claims under `custom`.
  { claim: "custom.groups", value: "wallboards", scopes: ["stats"] },
];
const LIMIT = 4;
let client;
let vars;
let gw;

const idToken = async (claims = {}, { alg = "RS256", kid, lifetimeSeconds } = {}) => {
  const r = await fetch(`${EMU}/_emulator/idp/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ alg, kid, lifetimeSeconds, claims: { aud: AUDIENCE, sub: "u-ana", groups: ["supervisors"], ...claims } }),
  });
  return (await r.json()).token;
};
const asPerson = (base, path, token, init = {}) =>
  fetch(`${base}${path}`, { ...init, headers: { "cf-access-jwt-assertion": token, ...(init.headers ?? {}) } });
const withBearer = (base, path, token) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
const jwksFetches = async () => (await (await fetch(`${EMU}/_emulator/idp/stats`)).json()).jwksFetches;
const upstream = async () => (await received(client.id)).length;
const tokenRequests = async () => Object.values((await stats(client.id)).tokenRequests ?? {}).reduce((a, b) => a + b, 0);
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");

before(async () => {
  client = await newClient("identity");
  vars = gatewayVars(client, [KEY.entry, ADMIN_KEY.entry], {
    ACCESS_ISSUER: EMU,
    ACCESS_AUDIENCE: AUDIENCE,
    ACCESS_ALGORITHMS: "RS256,ES256",
    GATEWAY_ACCESS_POLICY: JSON.stringify(POLICY),
  });
  gw = await startGateway(vars, { rateLimit: { limit: LIMIT, period: 60 } });
});

after(async () => {
  await control("faults", {});
  await gw?.stop();
});

test("a person reaches VCC with the scopes their policy rows grant, and no others", async () => {
  const supervisor = await idToken();
  const r = await asPerson(gw.base, "/api/agents-availability?skillNames=Sales", supervisor);
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  const denied = await asPerson(gw.base, "/api/useradmin/users", supervisor);
  assert.equal(denied.status, 403);
  assert.equal((await denied.json()).error, "scope_denied");
  // Rows add up: a domain row and a claim row; an ES256 token as a bearer (an SPA).
  const both = await idToken({ sub: "u-bo", email: "bo@analysts.example" }, { alg: "ES256" });
  for (const path of ["/api/useradmin/users", "/api/stats/agent-status"]) {
    const ok = await withBearer(gw.base, path, both);
    assert.equal(ok.status, 200, path);
    await ok.arrayBuffer();
  }
  // A nested claim (Access's `custom`) matches by its dotted path.
  const wall = await idToken({ sub: "u-wall", groups: [], custom: { groups: ["wallboards"] } });
  const stats = await asPerson(gw.base, "/api/stats/agent-status", wall);
  assert.equal(stats.status, 200);
  await stats.arrayBuffer();
  assert.equal((await asPerson(gw.base, "/api/agents-availability", wall)).status, 403);
  // A gateway key keeps working beside people.
  const key = await withBearer(gw.base, "/api/stats/agent-status", KEY.key);
  assert.equal(key.status, 200);
  await key.arrayBuffer();
  const who = await (await asPerson(gw.base, "/whoami", supervisor)).json();
  assert.deepEqual(who, { kind: "person", sub: "u-ana", name: null, scopes: ["agents-availability:read", "stats"], admin: false });
  assert.deepEqual(await (await withBearer(gw.base, "/whoami", KEY.key)).json(), {
    kind: "key",
    id: "script",
    scopes: ["stats"],
    admin: false,
  });
  // No credential: nobody (the page asks to learn whether someone is signed in).
  assert.deepEqual(await (await fetch(`${gw.base}/whoami`)).json(), { kind: "none", scopes: [], admin: false });
  const bad = await asPerson(gw.base, "/whoami", "not-a-jwt");
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error, "bad_identity");
});

// Before the JWKS outage below: its "jwks_unavailable" lasts until the next good fetch.
test("/healthz: liveness for anyone, details for the admin role only", async () => {
  const person = await idToken();
  const admin = await idToken({ sub: "u-root", groups: ["admins"] });
  for (const [who, r] of [
    ["nobody", await fetch(`${gw.base}/healthz`)],
    ["a key without gateway:admin", await withBearer(gw.base, "/healthz", KEY.key)],
    ["a person without the admin row", await asPerson(gw.base, "/healthz", person)],
    ["a bad credential", await asPerson(gw.base, "/healthz", "not-a-jwt")],
  ]) {
    assert.equal(r.status, 200, who);
    assert.deepEqual(await r.json(), { ok: true }, who);
  }
  for (const [who, r] of [
    ["an admin key", await withBearer(gw.base, "/healthz", ADMIN_KEY.key)],
    ["an admin person", await asPerson(gw.base, "/healthz", admin)],
  ]) {
    const h = await r.json();
    assert.equal(h.identity, "on", who);
    assert.deepEqual(
      h.keys.map((k) => k.id),
      ["script", "ops"],
      who,
    );
    assert.ok(h.scopes.stats, who);
  }
});

test("each bad assertion is refused with its code: nothing goes upstream, no token is asked for", async () => {
  const now = Math.floor(Date.now() / 1000);
  const good = await idToken();
  const [h, p, s] = good.split(".");
  const cases = [
    ["wrong issuer", await idToken({ iss: "https://evil.example" }), 401, "identity_wrong_issuer"],
    ["wrong audience", await idToken({ aud: "another-app" }), 401, "identity_wrong_audience"],
    ["expired", await idToken({ exp: now - 120 }), 401, "identity_expired"],
    ["not yet valid", await idToken({ nbf: now + 600 }), 401, "identity_not_yet_valid"],
    ["alg none", await idToken({}, { alg: "none" }), 401, "bad_identity"],
    ["HS256 signed with the public key", await idToken({}, { alg: "HS256" }), 401, "bad_identity"],
    ["an unknown kid", await idToken({}, { kid: "kid-nobody-knows" }), 401, "bad_identity"],
    [
      "a tampered payload",
      `${h}.${b64url({ ...JSON.parse(Buffer.from(p, "base64url")), groups: ["admins", "supervisors"], sub: "x" })}.${s}`,
      401,
      "bad_identity",
    ],
    ["an oversized header", `${b64url({ alg: "RS256", kid: "k", pad: "x".repeat(17_000) })}.${p}.${s}`, 401, "bad_identity"],
    ["no policy row", await idToken({ groups: ["visitors"], email: "eve@elsewhere.example" }), 403, "identity_not_allowed"],
    ["not a JWT", "not.a.jwt", 401, "bad_identity"],
  ];
  const [up, tokens] = [await upstream(), await tokenRequests()];
  for (const [what, token, status, code] of cases) {
    for (const send of [asPerson, withBearer]) {
      const r = await send(gw.base, "/api/stats/agent-status", token);
      assert.equal(r.status, status, `${what} (${send.name})`);
      assert.equal((await r.json()).error, code, what);
    }
  }
  // A bearer that is not JWT-shaped is a (mistyped) key, and is told so.
  const typo = await withBearer(gw.base, "/api/stats/agent-status", "this-is-not-a-key");
  assert.equal((await typo.json()).error, "malformed_key");
  assert.equal(await upstream(), up, "a refused call reached VCC");
  assert.equal(await tokenRequests(), tokens, "a refused call asked for a token");
});

test("a flood of made-up kids costs at most a handful of JWKS fetches", async () => {
  const good = await idToken();
  const [, p, s] = good.split(".");
  const before = await jwksFetches();
  const statuses = new Set();
  for (let round = 0; round < 20; round++) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const kid = `kid-${Math.random().toString(36).slice(2)}`;
        const r = await asPerson(gw.base, "/api/stats/agent-status", `${b64url({ alg: "RS256", kid })}.${p}.${s}`);
        statuses.add(r.status);
        await r.arrayBuffer();
      }),
    );
  }
  assert.deepEqual([...statuses], [401]);
  const fetched = (await jwksFetches()) - before;
  assert.ok(fetched <= 3, `${fetched} JWKS fetches for 1000 made-up kids`);
});

test("a key rotation at the issuer is picked up with no failed call; cached keys outlive a JWKS outage", async () => {
  // Each call as its own person: the rate limit (LIMIT per person) is not under test here.
  const old = await idToken({ sub: "u-rot-old" });
  assert.equal((await asPerson(gw.base, "/api/stats/agent-status", old)).status, 200);
  await fetch(`${EMU}/_emulator/idp/rotate`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  // The gateway refetches on an unknown kid at most once per 10 s (the flood above may
  // just have spent it): a rotation is picked up on the first call after that.
  await sleep(10_500);
  for (let i = 0; i < 5; i++) {
    const r = await asPerson(gw.base, "/api/stats/agent-status", await idToken({ sub: `u-rot-${i}` }));
    assert.equal(r.status, 200, `call ${i + 1} with the new key`);
    await r.arrayBuffer();
  }
  assert.equal((await asPerson(gw.base, "/api/stats/agent-status", old)).status, 200, "the previous key is still published");
  // The issuer's JWKS goes down: keys already held keep working.
  await control("faults", { jwksDown: true });
  try {
    await sleep(10_500);
    const unknown = await asPerson(gw.base, "/api/stats/agent-status", await idToken({}, { kid: "kid-unknown" }));
    assert.equal(unknown.status, 401, "the refetch fails, and the kid stays unknown");
    const fresh = await idToken({ sub: "u-rot-cached" });
    assert.equal((await asPerson(gw.base, "/api/stats/agent-status", fresh)).status, 200, "cached keys keep working");
    const h = await (await withBearer(gw.base, "/healthz", ADMIN_KEY.key)).json();
    assert.equal(h.identity, "jwks_unavailable");
  } finally {
    await control("faults", {});
  }
});

test("a JWKS that redirects or stalls: no key to trust, so 503 identity_unavailable, and nothing follows the redirect", async () => {
  const tag = `${client.id}-jwks`;
  await control("faults", { jwksRedirect: `${OTHER_ORIGIN}/_emulator/steal/${tag}` });
  // A new isolate: nothing cached.
  const fresh = await startGateway(vars);
  try {
    const token = await idToken();
    const r = await asPerson(fresh.base, "/api/stats/agent-status", token);
    assert.equal(r.status, 503);
    assert.equal((await r.json()).error, "identity_unavailable");
    const wait = Number(r.headers.get("retry-after"));
    assert.ok(wait >= 1 && wait <= 10, `Retry-After: ${r.headers.get("retry-after")}`);
    assert.deepEqual(await stolen(tag), [], "the redirect was followed");
    await control("faults", { jwksStallMs: 20_000 });
    await sleep(10_500); // the next attempt's window
    const t0 = Date.now();
    const stalled = await asPerson(fresh.base, "/api/stats/agent-status", token);
    assert.equal(stalled.status, 503);
    assert.ok(Date.now() - t0 < 7_000, `held ${Date.now() - t0} ms by a stalled JWKS`);
  } finally {
    await control("faults", {});
    await fresh.stop();
  }
});

test("the person is in the log line and the rate limit; no JWT, email, key or secret anywhere", async () => {
  const emailed = await idToken({ sub: "u-carla", email: "carla@analysts.example", groups: ["supervisors"] });
  const other = await idToken({ sub: "u-dan", groups: ["supervisors"] });
  const statuses = [];
  for (let i = 0; i <= LIMIT; i++) {
    const r = await asPerson(gw.base, "/api/stats/agent-status", emailed);
    statuses.push(r.status);
    const text = await r.text();
    assert.ok(!text.includes("carla@") && !text.includes("eyJ"), "an email or a JWT in a response");
  }
  assert.equal(statuses.at(-1), 429, `per person: ${statuses.join(" ")}`);
  assert.equal((await asPerson(gw.base, "/api/stats/agent-status", other)).status, 200, "another person is counted apart");
  for (let i = 0; i < 30 && !/"person":"u-carla"/.test(gw.out.text); i++) await sleep(100);
  assert.match(gw.out.text, /"person":"u-carla"/);
  const out = allOutput();
  assert.ok(!out.includes("carla@analysts.example"), "an email in the log (ACCESS_LOG_EMAIL is off)");
  assert.ok(!/eyJ[\w-]{10,}\.[\w-]{10,}/.test(out), "a JWT or token in the log");
  for (const s of [client.secret, KEY.key, ADMIN_KEY.key, KEY.entry.sha256]) assert.ok(!out.includes(s), "a secret in the log");
});
