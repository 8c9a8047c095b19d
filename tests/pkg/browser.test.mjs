// The package's `browser` entry in headless Chromium (Debian's, through playwright-core):
// a page imports "vcc-auth" by name (an import map stands in for a bundler resolving the
// `browser` condition), top-level await instantiates the wasm, and the client talks to
// the emulator cross-origin. No console errors or warnings allowed (a wrong wasm MIME
// type, for one, would warn and fall back to slow instantiation).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { launchChromium } from "./chromium.mjs"; // tests/chromium.mjs, copied here by scripts/test-pkg.sh
import { newClient } from "./emulator.mjs"; // tests/emulator.mjs, likewise

const EMU = process.env.VCC_EMULATOR_URL;
const ROOT = process.env.VCC_ROOT;
assert.ok(EMU && ROOT, "VCC_EMULATOR_URL and VCC_ROOT must be set");

const here = new URL(".", import.meta.url).pathname;
const types = { ".html": "text/html", ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm" };
const page = (id, secret) => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>vcc-auth browser entry</title>
<script type="importmap">{ "imports": { "vcc-auth": "/node_modules/vcc-auth/index.mjs" } }</script>
<script type="module">
  import { VccClient } from "vcc-auth";
  const client = new VccClient({ clientId: ${JSON.stringify(id)}, clientSecret: ${JSON.stringify(secret)}, authBaseUrl: ${JSON.stringify(EMU)}, apiBaseUrl: ${JSON.stringify(EMU)} });
  try {
    const [a, b] = await Promise.all([client.getToken("stats"), client.getToken("stats")]);
    const res = await client.fetch("/agents-availability?skillNames=Service");
    window.result = { same: a === b, length: a.length, status: res.status, body: await res.json() };
  } catch (e) {
    window.result = { error: e.code ?? String(e) };
  }
</script>`;

let server, browser, origin;
let id, secret;

before(async () => {
  ({ id, secret } = await newClient("browser"));
  server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(page(id, secret));
      return;
    }
    try {
      const body = await readFile(join(here, path));
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("browser: imports vcc-auth by name with no init and calls VCC through it", async () => {
  const tab = await browser.newPage();
  const problems = [];
  tab.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
  });
  tab.on("pageerror", (e) => problems.push(String(e)));
  await tab.goto(origin);
  await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 15_000 });
  const result = await tab.evaluate(() => window.result);
  assert.deepEqual(result, {
    same: true,
    length: result.length,
    status: 200,
    body: { Ready: 7, Away: 1, "Extended Away": 2, "Logged Out": 4 },
  });
  assert.deepEqual(problems, []);
  const stats = await (await fetch(`${EMU}/_emulator/stats?clientId=${id}`)).json();
  assert.equal(stats.tokenRequests.stats, 1);
});
