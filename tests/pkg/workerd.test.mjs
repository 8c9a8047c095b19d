// The package in workerd: wrangler bundles tests/workerd/worker.mjs, which imports
// "vcc-auth" by name (workerd condition: initSync with the compiled module), and
// `wrangler dev` runs it in the real workerd runtime against the emulator.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { newClient } from "./emulator.mjs"; // tests/emulator.mjs, copied here by scripts/test-pkg.sh

// Run from a scratch copy (scripts/test-pkg.sh), so the repository's helpers come by VCC_ROOT.
const { freePort, startChild, stopChild, writeEnvFile } = await import(pathToFileURL(join(process.env.VCC_ROOT, "scripts/demo-stack.mjs")));

const EMU = process.env.VCC_EMULATOR_URL;
const WRANGLER = process.env.WRANGLER;
assert.ok(EMU && WRANGLER, "VCC_EMULATOR_URL and WRANGLER must be set");

let dev, base;
const output = () => dev?.output ?? "";
let id, secret;

before(async () => {
  ({ id, secret } = await newClient("workerd"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The secret goes through a private env file, never a command line.
  const vars = writeEnvFile(join(mkdtempSync(join(tmpdir(), "pkg-workerd-")), ".env"), {
    EMU,
    CLIENT_ID: id,
    CLIENT_SECRET: secret,
  });
  dev = startChild("wrangler", WRANGLER, ["dev", "--ip", "127.0.0.1", "--port", String(port), "--log-level", "warn", "--env-file", vars], {
    cwd: new URL("./workerd/", import.meta.url),
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/nothing`);
      if (res.status === 404) break;
    } catch {}
    if (dev.exited || Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

after(() => stopChild(dev));

test("workerd: imports vcc-auth by name and gets a cached token", async () => {
  const res = await fetch(`${base}/token`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.length > 100);
  assert.equal(body.cached, true);
  assert.equal(body.info.fetches, 1);
  const stats = await (await fetch(`${EMU}/_emulator/stats?clientId=${id}`)).json();
  assert.equal(stats.tokenRequests.stats, 1);
});

test("workerd: fetch calls the API with the bearer token", async () => {
  const res = await fetch(`${base}/agents`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { Ready: 10, Away: 3, "Extended Away": 0, "Logged Out": 2 });
  // Token flights and API calls ran above; none scheduled through queueMicrotask.
  assert.deepEqual(await (await fetch(`${base}/microtasks`)).json(), { calls: 0, restored: true });
});

test("workerd: errors keep their code and never show the secret", async () => {
  const res = await fetch(`${base}/wrong-secret`);
  const body = await res.json();
  assert.equal(body.name, "VccError");
  assert.equal(body.code, "invalid_client");
  assert.ok(!JSON.stringify(body).includes("workerd-wrong-secret"));
  assert.ok(!output().includes(secret) && !output().includes("workerd-wrong-secret"), "no secret in wrangler's output");
});
