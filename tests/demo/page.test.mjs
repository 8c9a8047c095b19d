// The demo page in headless Chromium (playwright-core, Debian's chromium) against the
// demo stack `make demo` runs (scripts/demo-stack.mjs: emulator + gateway in workerd),
// on free ports. Screenshots go to screenshots/ (git-ignored).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium } from "../chromium.mjs";
import { ROOT, startStack } from "../../scripts/demo-stack.mjs";

const SHOTS = join(ROOT, "screenshots");
const JWT = /eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]{6,}/;
let stack;
let browser;
let page;
const consoleErrors = [];
const tokensSeen = new Set(); // every access token the page's direct mode received
const unreadBodies = []; // why the listener could not read a token answer (rare: DevTools had dropped it)
const requested = []; // every URL the page asked for

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startStack({ gatewayLifetime: 60, directLifetime: 5 });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on("request", (r) => requested.push(r.url()));
  page.on("response", async (r) => {
    if (!r.url().endsWith("/Auth/connect/token") || r.status() !== 200) return;
    try {
      tokensSeen.add((await r.json()).access_token);
    } catch (e) {
      unreadBodies.push(e.message);
    }
  });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const cells = (selector) => page.$$eval(`${selector} tbody tr`, (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
const emulator = (path, body) =>
  fetch(
    `${stack.emulatorUrl}/_emulator/${path}`,
    body ? { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {},
  ).then((r) => r.json());
const logText = () => page.textContent("#event-log");

/** Everything the page keeps where a script, an extension or a screenshot could see it. */
async function exposed() {
  return page.evaluate(() => ({
    dom: document.documentElement.outerHTML,
    values: [...document.querySelectorAll("input, textarea, select")].map((e) => e.value).join("\n"),
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
  }));
}

async function assertNothingLeaked() {
  const { dom, values, local, session } = await exposed();
  const visible = `${dom}\n${values}`;
  for (const s of stack.secrets) {
    for (const [where, text] of Object.entries({ visible, local, session })) assert.ok(!text.includes(s), `a client secret is in ${where}`);
  }
  for (const t of tokensSeen) {
    for (const [where, text] of Object.entries({ visible, local, session }))
      assert.ok(!text.includes(t), `a whole access token is in ${where}`);
  }
  for (const [where, text] of Object.entries({ visible, local, session }))
    assert.ok(!JWT.test(text), `something token-shaped is in ${where}`);
  assert.ok(!visible.includes(stack.key) && !local.includes(stack.key), "the gateway key is outside sessionStorage");
}

test("the page loads with no console errors, under its CSP", async () => {
  const res = await page.goto(`${stack.gatewayUrl}/?emulator=${encodeURIComponent(stack.emulatorUrl)}`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /script-src 'self' 'wasm-unsafe-eval'/);
  await page.waitForFunction(() => !document.getElementById("health-state").textContent.includes("Checking"));
  await page.waitForTimeout(500);
  assert.deepEqual(consoleErrors, []);
  // Offline-ready: everything comes from the gateway, and gateway mode loads no wasm.
  const elsewhere = requested.filter((u) => !u.startsWith(`${stack.gatewayUrl}/`) && !u.startsWith("data:"));
  assert.deepEqual(elsewhere, []);
  assert.ok(!requested.some((u) => u.endsWith(".wasm")), "gateway mode loaded the wasm");
  await shot("01-loaded");
});

test("without a key, asking for data says to paste the key", async () => {
  await page.click("text=Show availability");
  await page.waitForSelector("#gateway-error:not([hidden])");
  assert.match(await page.textContent("#gateway-error"), /needs a key.*Paste the gateway key/s);
});

test("a wrong key gets plain words for 401", async () => {
  await page.fill("#key-input", "this-is-not-the-gateway-key");
  await page.press("#key-input", "Enter");
  await page.click("text=Show availability");
  await page.waitForFunction(() => /not a gateway key/.test(document.getElementById("gateway-error").textContent));
  assert.match(await page.textContent("#gateway-error"), /typo or a cut-off paste/);
  assert.match(await page.textContent("#gateway-error"), /The gateway said: malformed_key: /);
  consoleErrors.length = 0; // the browser logs the 401 itself ("Failed to load resource")
});

test("every refusal the gateway can give has words that say what to do", async () => {
  const words = await page.evaluate(async () => {
    const { explain } = await import("/app.js"); // the page's own module instance
    const users = { name: "Users", scope: "users:read" };
    return {
      // the page branches on the code alone: a message in other words changes nothing
      scope: explain(403, { error: "scope_denied", message: "(any words)" }, users),
      origin: explain(403, { error: "origin_denied", message: "(any words)" }, users),
      route: explain(404, { error: "route_not_found", message: "no VCC API route for this path" }, users),
      vcc404: explain(404, { message: "User not found" }, users),
      token: explain(502, { error: "token_failed", message: "the gateway could not get a VCC token" }, users),
      misconfigured: explain(
        500,
        { error: "gateway_misconfigured", message: "VCC_CLIENT_ID is required", setting: "VCC_CLIENT_ID" },
        users,
      ),
      timeout: explain(504, { error: "upstream_timeout", message: "VCC did not answer in time" }, users),
      limited: explain(429, null, users, "30"),
      redirect: explain(
        502,
        { error: "upstream_redirect", message: "VCC answered with a redirect, which the gateway does not follow" },
        users,
      ),
      rejected: explain(503, { error: "token_rejected", message: "VCC is rejecting the tokens it issues" }, users, "4"),
      gatewayLimited: explain(429, { error: "rate_limited", message: "(any words)" }, users, "60"),
      malformed: explain(401, { error: "malformed_key", message: "(any words)" }, users),
      expired: explain(401, { error: "expired_key", message: "(any words)" }, users),
      slowBody: explain(408, { error: "body_timeout", message: "the request body did not arrive in time" }, users),
    };
  });
  assert.match(words.scope.advice, /GATEWAY_KEYS entry lists the scope "users:read"/);
  assert.match(words.origin.advice, /ALLOWED_ORIGINS/);
  assert.match(words.route.advice, /route table/);
  assert.match(words.vcc404.title, /VCC says this does not exist/);
  assert.equal(words.vcc404.detail, "VCC said: User not found");
  assert.match(words.route.detail, /^The gateway said: route_not_found: /);
  assert.match(words.misconfigured.advice, /Fix its VCC_CLIENT_ID setting/);
  assert.match(words.token.advice, /VCC_CLIENT_ID, VCC_CLIENT_SECRET and VCC_REGION/);
  assert.match(words.timeout.advice, /UPSTREAM_TIMEOUT_MS/);
  assert.match(words.limited.advice, /Wait 30 s/);
  assert.match(words.redirect.advice, /VCC_API_BASE_URL/);
  assert.match(words.rejected.advice, /waits 4 s/);
  assert.match(words.slowBody.advice, /BODY_TIMEOUT_MS/);
  assert.match(words.gatewayLimited.title, /too many calls/);
  assert.match(words.gatewayLimited.advice, /Wait 1 min/);
  assert.match(words.malformed.advice, /vccgw_/);
  assert.match(words.expired.advice, /new key/);
  for (const w of Object.values(words)) assert.ok(w.title && w.advice, JSON.stringify(w));
});

test("Agents Availability through the gateway shows the emulator's numbers, as a table and a chart", async () => {
  // The truth, straight from the emulator with a token of a client of our own.
  await emulator("clients", { id: "page-truth", secret: "page-truth-secret", scopes: ["agents-availability:read"] });
  const tok = await (
    await fetch(`${stack.emulatorUrl}/Auth/connect/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: "page-truth",
        client_secret: "page-truth-secret",
        scope: "agents-availability:read",
      }),
    })
  ).json();
  const truth = async (q) =>
    (
      await fetch(`${stack.emulatorUrl}/agents-availability${q}`, {
        headers: { authorization: `Bearer ${tok.access_token}`, accept: "application/vnd.newvoicemedia.v1+json" },
      })
    ).json();

  await page.fill("#key-input", stack.key);
  await page.click("text=Use key");
  assert.match(await page.textContent("#key-state"), /A key is set for this tab/);
  await page.fill("#skills", "Sales, Service");
  await page.click("text=Show availability");
  await page.waitForSelector("#result table");
  const want = await truth("?skillNames=Sales,Service");
  assert.deepEqual(
    await cells("#result"),
    ["Ready", "Away", "Extended Away", "Logged Out"].map((s) => [s, String(want[s])]),
  );
  assert.match(await page.textContent("#result caption"), /skills Sales,Service/);
  // one bar per status, the largest full width
  const widths = await page.$$eval("#result .chart .bar", (bars) => bars.map((b) => parseFloat(b.style.width)));
  assert.equal(widths.length, 4);
  assert.equal(Math.max(...widths), 100);
  assert.equal(await page.isHidden("#gateway-error"), true);
  await shot("02-availability");

  await page.fill("#skills", "");
  await page.click("text=Show availability");
  await page.waitForFunction(() => /all skills/.test(document.querySelector("#result caption")?.textContent));
  const all = await truth("");
  assert.deepEqual(
    (await cells("#result")).map((r) => r[1]),
    ["Ready", "Away", "Extended Away", "Logged Out"].map((s) => String(all[s])),
  );
  assert.deepEqual(consoleErrors, []);
  await assertNothingLeaked();
});

test("the gateway status panel counts down to expiry", async () => {
  const item = "#health-list li[data-scope='agents-availability:read']";
  await page.waitForSelector(item);
  const read = () => page.$eval(`${item} meter`, (m) => ({ value: m.value, max: m.max }));
  const first = await read();
  assert.ok(first.max >= 58 && first.max <= 60, `the bar spans the token's lifetime (60 s), not ${first.max}`);
  assert.ok(first.value > 50 && first.value <= 60, JSON.stringify(first));
  await page.waitForTimeout(2500);
  const later = await read();
  assert.ok(later.value <= first.value - 1.5, `the countdown did not advance: ${first.value} -> ${later.value}`);
  assert.match(await page.textContent(item), /expires in \d+ s.*Fetched 1, refreshed 0 times/s);
  // The README's picture (docs/demo.jpg is a copy of this file).
  await page.screenshot({ path: join(SHOTS, "readme.jpg"), type: "jpeg", quality: 70, fullPage: true });
});

test("Users: a paged table", async () => {
  await page.check("input[name=api][value=users]");
  await page.selectOption("#page-size", "10");
  await page.click("text=Load users");
  await page.waitForSelector("#result table");
  assert.match(await page.textContent("#result caption"), /page 1 of 5 \(42 in all\)/);
  assert.equal((await cells("#result")).length, 10);
  assert.equal(await page.isDisabled("text=Previous page"), true);
  await page.click("text=Next page");
  await page.waitForFunction(() => /page 2 of 5/.test(document.querySelector("#result caption")?.textContent));
  assert.equal((await cells("#result"))[0][0], "11");
  await shot("03-users");
});

test("Stats: agent status; a token endpoint failure gets plain words for 502", async () => {
  await page.check("input[name=api][value=stats]");
  await emulator("faults", { clientId: "demo-gateway", tokenDown: true }); // no stats token cached yet
  await page.click("text=Show agent status");
  await page.waitForSelector("#gateway-error:not([hidden])");
  assert.match(await page.textContent("#gateway-error"), /could not get a token from VCC.*Check VCC_CLIENT_ID, VCC_CLIENT_SECRET/s);
  await page.click("#health-refresh");
  await page.waitForFunction(() => /last error: token_endpoint/.test(document.getElementById("health-list").textContent));
  await shot("04-error-502");
  await emulator("faults", { clientId: "demo-gateway", tokenDown: false });
  await page.click("text=Show agent status");
  await page.waitForSelector("#result table");
  assert.ok((await cells("#result")).some((r) => r.includes("Ada Lovelace")));
  assert.equal(await page.isHidden("#gateway-error"), true);
  consoleErrors.length = 0; // the 502 above was logged by the browser
});

test("signed in through the stand-in for Cloudflare Access: no key typed; the page says who, and what they may do", async () => {
  // A browser context of its own: its own cookies (the sign-in) and sessionStorage.
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const p = await ctx.newPage();
  const errors = [];
  p.on("console", (m) => m.type() === "error" && !/Failed to load resource: .* 403/.test(m.text()) && errors.push(m.text()));
  p.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  const gatewayLog = () => stack.procs.find((x) => x.name === "gateway").output;
  try {
    await p.goto(`${stack.pageUrl}/?emulator=${encodeURIComponent(stack.emulatorUrl)}`);
    await p.waitForSelector("h1:text('Sign in')"); // Access asks first
    await p.click("button[value=supervisor]");
    await p.waitForSelector("#signed-in:not([hidden])");
    assert.equal(new URL(p.url()).searchParams.get("emulator"), stack.emulatorUrl, "back where the visitor started");
    assert.match(
      await p.textContent("#who"),
      /^Signed in as Sam Rivera \(sam@contoso\.example\)\. You may use: Stats, Agents Availability\. No key is needed\.$/,
    );
    assert.equal(await p.isHidden("#key-form"), true, "no key entry when signed in");
    await p.click("text=Show availability");
    await p.waitForSelector("#result table");
    // Not an admin: the status panel says the gateway is up, and no more.
    await p.waitForFunction(() => /admin role only/.test(document.getElementById("health-state").textContent));
    assert.equal(await p.$$eval("#health-list li", (l) => l.length), 0);
    // A scope the policy does not grant: words for a person, not for a key.
    await p.check("input[name=api][value=users]");
    await p.click("text=Load users");
    await p.waitForSelector("#gateway-error:not([hidden])");
    assert.match(await p.textContent("#gateway-error"), /You may not use the Users API.*GATEWAY_ACCESS_POLICY row/s);
    await p.screenshot({ path: join(SHOTS, "09-signed-in.png"), fullPage: true });
    // The page holds nothing: no key, no JWT, in the DOM or storage.
    const held = await p.evaluate(() => document.documentElement.outerHTML + JSON.stringify({ ...sessionStorage, ...localStorage }));
    assert.ok(!JWT.test(held) && !held.includes(stack.key), "a JWT or the key is in the page");
    assert.equal(await p.evaluate(() => document.cookie), "", "the sign-in cookie is readable by the page's scripts");
    // The log names the person by their sub, never by email; the rate limit counts them.
    assert.match(gatewayLog(), /"person":"demo-supervisor"/);
    assert.ok(!gatewayLog().includes("sam@contoso.example"), "an email in the gateway's log");

    // An admin (through the policy's row) sees the gateway's details.
    await p.click("#sign-out");
    await p.click("button[value=admin]");
    await p.waitForSelector("#signed-in:not([hidden])");
    assert.match(await p.textContent("#who"), /Robin Okafor.*every API; you see the gateway's details/);
    await p.check("input[name=api][value=availability]");
    await p.click("text=Show availability");
    await p.waitForSelector("#health-list li[data-scope='agents-availability:read']");

    // Going on without signing in keeps the key flow.
    await p.click("#sign-out");
    await p.click("button[value=none]");
    await p.waitForSelector("#key-form:not([hidden])");
    assert.equal(await p.isHidden("#signed-in"), true);
    await p.fill("#key-input", stack.key);
    await p.click("text=Use key");
    await p.waitForFunction(() => /It may use: .*it sees the gateway's details/.test(document.getElementById("key-state").textContent));
    await p.click("text=Show availability");
    await p.waitForSelector("#result table");
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
  }
});

test("direct mode: the refresh timer refreshes a 5-second token", async () => {
  await page.check("input[name=mode][value=direct]");
  await page.waitForFunction(() => document.getElementById("emulator-url").value !== ""); // direct.js loads on demand
  assert.equal(await page.inputValue("#emulator-url"), stack.emulatorUrl);
  assert.equal(await page.getAttribute("#client-secret", "type"), "password");
  await page.fill("#client-id", stack.direct.clientId);
  await page.fill("#client-secret", stack.direct.secret);
  await page.click("text=Start client");
  await page.waitForSelector("#direct-running:not([hidden])");
  assert.equal(await page.inputValue("#client-secret"), "", "the secret field is cleared once the client has it");
  assert.match(await page.textContent("#token-preview"), /^.{8}… \(\d+ characters\)$/);
  assert.match(await logText(), /fetched got a new token/);
  await page.waitForFunction(() => /refreshed refreshed ahead of expiry/.test(document.getElementById("event-log").textContent), null, {
    timeout: 15_000,
  });
  // The emulator counts the page client's token requests: a fetch and a refresh.
  const issued = await emulator(`stats?clientId=${stack.direct.clientId}`);
  const requests = Object.values(issued.tokenRequests ?? {}).reduce((a, b) => a + b, 0);
  assert.ok(requests >= 2, `the page's client fetched and refreshed (${requests} token requests)`);
  // The response listener reads bodies asynchronously (for the leak scan): give it a moment.
  for (let i = 0; i < 50 && tokensSeen.size < 2; i++) await page.waitForTimeout(100);
  assert.ok(tokensSeen.size >= 1, `the leak scan has the page's tokens to look for (${unreadBodies.join("; ")})`);
  await page.waitForFunction(() => /refreshed [1-9]/.test(document.getElementById("direct-counts").textContent)); // redrawn every 250 ms
  assert.deepEqual(consoleErrors, []);
  await assertNothingLeaked();
  await shot("05-direct-refresh");
});

test("direct mode: revoke all tokens -> 401 invalid_token -> new token -> retry, shown in the log", async () => {
  const before = await emulator(`stats?clientId=${stack.direct.clientId}`);
  await page.click("text=Revoke all tokens");
  await page.waitForFunction(() =>
    /API answered 200 after a retry with a new token/.test(document.getElementById("event-log").textContent),
  );
  const after = await emulator(`stats?clientId=${stack.direct.clientId}`);
  assert.equal(after.api401InvalidToken - before.api401InvalidToken, 1, "the emulator rejected exactly one request");
  assert.match(await logText(), /revoked \d+ token\(s\)/);
  await assertNothingLeaked();
  await shot("06-direct-revoke");
  consoleErrors.length = 0; // the browser logs the 401 itself
});

test("direct mode: with the token endpoint down the cached token keeps serving", async () => {
  await page.click("text=Token endpoint down");
  await page.waitForSelector("#endpoint-down[aria-pressed=true]");
  await page.waitForFunction(
    () => /failed token_endpoint: .* still serving the cached token/.test(document.getElementById("event-log").textContent),
    null,
    { timeout: 15_000 },
  );
  // The refresh failed at the refresh-ahead point (half the lifetime): the token has a
  // couple of seconds left, and a call now is served with it.
  const issued = (await emulator(`stats?clientId=${stack.direct.clientId}`)).tokenAttempts;
  await page.click("text=Call Agents Availability");
  await page.waitForFunction(() => /^Last call: HTTP 200/.test(document.getElementById("direct-result").textContent));
  assert.doesNotMatch(await page.textContent("#direct-result"), /failed/);
  await page.click("text=Bring token endpoint back");
  await page.waitForSelector("#endpoint-down[aria-pressed=false]");
  // Once it is back, the refresh timer (retrying with backoff) gets a new token.
  await page.waitForFunction(
    () => {
      const lis = [...document.querySelectorAll("#event-log li")].map((li) => li.textContent);
      const back = lis.findIndex((t) => /token endpoint is back/.test(t));
      return lis.slice(0, back).some((t) => /fetched|refreshed/.test(t));
    },
    null,
    { timeout: 15_000 },
  );
  await page.click("text=Call Agents Availability");
  await page.waitForFunction(() => /API answered 200/.test(document.querySelector("#event-log li")?.textContent));
  assert.ok((await emulator(`stats?clientId=${stack.direct.clientId}`)).tokenAttempts > issued);
  await shot("07-direct-endpoint-down");
  await page.click("text=Stop client");
  assert.match(await logText(), /client stopped/);
  assert.equal(await page.isVisible("#direct-form"), true);
  await assertNothingLeaked();
});

test("readable at 375 px and usable with the keyboard alone", async () => {
  const narrow = await browser.newPage({ viewport: { width: 375, height: 740 } });
  const errors = [];
  narrow.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await narrow.goto(`${stack.gatewayUrl}/`);
  // Tab from the top to the key field, type the key, Enter; Tab to the skills; Enter.
  let steps = 0;
  while ((await narrow.evaluate(() => document.activeElement?.id)) !== "key-input") {
    await narrow.keyboard.press("Tab");
    assert.ok(++steps < 10, "the key field is not reachable by Tab");
  }
  await narrow.keyboard.type(stack.key);
  await narrow.keyboard.press("Enter");
  while ((await narrow.evaluate(() => document.activeElement?.id)) !== "skills") {
    await narrow.keyboard.press("Tab");
    assert.ok(++steps < 20, "the skills field is not reachable by Tab");
  }
  await narrow.keyboard.press("Enter");
  await narrow.waitForSelector("#result table");
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 375 px`);
  assert.deepEqual(errors, []);
  await narrow.screenshot({ path: join(SHOTS, "08-narrow.png"), fullPage: true });
  await narrow.close();
});
