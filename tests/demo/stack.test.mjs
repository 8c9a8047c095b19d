// `make demo` itself: which VCC it picks, that real-VCC settings reach the gateway
// (a second emulator, VCC_EMULATOR_URL from scripts/with-emulator.sh, stands in for VCC
// through VCC_AUTH_BASE_URL / VCC_API_BASE_URL), and that Ctrl-C stops every process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, chooseVcc, mintKey, parseDotenv, startStack, withDemoKey } from "../../scripts/demo-stack.mjs";

const EMU = process.env.VCC_EMULATOR_URL;
const devVars = (text) => {
  const f = join(mkdtempSync(join(tmpdir(), "devvars-")), ".dev.vars");
  writeFileSync(f, text);
  return f;
};
const answers = async (url) => {
  try {
    await (await fetch(url, { signal: AbortSignal.timeout(1500) })).arrayBuffer();
    return true;
  } catch {
    return false;
  }
};

test("the emulator unless a client secret is configured; the environment wins over .dev.vars", () => {
  const none = devVars("# nothing\n");
  assert.equal(chooseVcc({}, none).real, false);
  assert.equal(chooseVcc({}, "/no/such/file").real, false);
  const env = chooseVcc({ VCC_REGION: "nam", VCC_CLIENT_ID: "id", VCC_CLIENT_SECRET: "s3cret" }, none);
  assert.deepEqual(env, {
    real: true,
    from: "the environment",
    vars: { VCC_REGION: "nam", VCC_CLIENT_ID: "id", VCC_CLIENT_SECRET: "s3cret" },
  });
  const file = devVars("VCC_REGION=apac\nVCC_CLIENT_ID=\"file-id\"\nexport VCC_CLIENT_SECRET='file secret'\n# VCC_AUTH_BASE_URL=x\n");
  const fromFile = chooseVcc({ VCC_REGION: "emea" }, file);
  assert.equal(fromFile.from, "worker/.dev.vars");
  assert.deepEqual(fromFile.vars, { VCC_REGION: "emea", VCC_CLIENT_ID: "file-id", VCC_CLIENT_SECRET: "file secret" });
  assert.equal(chooseVcc({ DEMO_EMULATOR: "1", VCC_CLIENT_ID: "id", VCC_CLIENT_SECRET: "s" }, file).real, false);
  assert.throws(() => chooseVcc({ VCC_CLIENT_SECRET: "s" }, none), /VCC_CLIENT_ID is not set/);
  const example = chooseVcc({}, join(ROOT, "worker/.dev.vars.example"));
  assert.equal(example.real, false, "an unedited copy of .dev.vars.example is not real credentials");
  assert.match(example.why, /placeholder/);
  assert.deepEqual(parseDotenv('A=1\n  B = two words \nnot a line\nC="q"\n'), { A: "1", B: "two words", C: "q" });
});

test("make demo mints its key with the minter; its entry joins existing GATEWAY_KEYS; bad GATEWAY_KEYS is named, not echoed", () => {
  const { key, entry } = mintKey("demo", ["stats"]);
  assert.match(key, /^vccgw_[0-9a-f]{72}$/);
  assert.equal(entry.sha256, createHash("sha256").update(key).digest("hex"));
  assert.deepEqual(entry.scopes, ["stats"]);
  const other = { id: "wallboard", sha256: "ab".repeat(32), scopes: ["stats"] };
  const joined = JSON.parse(withDemoKey(JSON.stringify([other, { ...entry, sha256: "cd".repeat(32) }]), entry));
  assert.deepEqual(joined, [other, entry], "an earlier demo entry is replaced, the others kept");
  assert.deepEqual(JSON.parse(withDemoKey(undefined, entry)), [entry]);
  for (const bad of ["{nope", '{"plaintext-key-0123456789":["stats"]}', "null"]) {
    assert.throws(
      () => withDemoKey(bad, entry),
      (e) => /GATEWAY_KEYS/.test(e.message) && !e.message.includes(bad) && !e.message.includes("plaintext-key"),
    );
  }
});

test("real-VCC settings from the environment reach the gateway, and no emulator is started", {
  skip: !EMU && "needs VCC_EMULATOR_URL",
  timeout: 120_000,
}, async () => {
  const id = `real-${Date.now()}`;
  const secret = `real-secret-${Math.random().toString(36).slice(2)}`;
  await fetch(`${EMU}/_emulator/clients`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id, secret, scopes: ["stats"] }),
  });
  const vcc = chooseVcc(
    { VCC_REGION: "emea", VCC_CLIENT_ID: id, VCC_CLIENT_SECRET: secret, VCC_AUTH_BASE_URL: EMU, VCC_API_BASE_URL: EMU },
    "/no/such/file",
  );
  const stack = await startStack({ vcc });
  try {
    assert.equal(stack.real, true);
    assert.equal(stack.emulatorUrl, undefined);
    assert.equal(stack.direct, undefined);
    assert.deepEqual(
      stack.procs.map((p) => p.name),
      ["gateway"],
    );
    const r = await fetch(`${stack.gatewayUrl}/api/stats/agent-status`, { headers: { authorization: `Bearer ${stack.key}` } });
    assert.equal(r.status, 200);
    const stats = await (await fetch(`${EMU}/_emulator/stats?clientId=${id}`)).json();
    assert.equal(stats.tokenRequests.stats, 1, "the gateway got its token with the configured client");
    const out = stack.procs.map((p) => p.output).join("\n");
    assert.ok(!out.includes(secret) && !out.includes(stack.key), "the gateway's output shows a secret or the key");
  } finally {
    await stack.stop();
  }
});

test("make demo's script prints the page, the key and the direct-mode client, and Ctrl-C stops everything", {
  timeout: 150_000,
}, async () => {
  const child = spawn(process.execPath, [join(ROOT, "scripts/demo.mjs")], {
    // Port 0: any free port, so this runs beside a `make demo` in use.
    env: { ...process.env, DEMO_EMULATOR: "1", DEMO_PORT: "0", DEMO_GATEWAY_PORT: "0", DEMO_EMULATOR_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 90_000;
  while (!out.includes("Press Ctrl-C to stop.")) {
    assert.ok(Date.now() < deadline, `the demo did not start:\n${out}`);
    if (child.exitCode !== null) assert.fail(`the demo exited:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const page = /Page\s+(http:\/\/127\.0\.0\.1:\d+)\/(\?emulator=(\S+))?/.exec(out);
  assert.ok(page, out);
  const gateway = page[1]; // the stand-in for Access in front of the gateway
  const direct = /Gateway\s+(http:\/\/127\.0\.0\.1:\d+)\s/.exec(out)?.[1];
  assert.ok(direct && direct !== gateway, out);
  const emulator = decodeURIComponent(page[3] ?? "http%3A%2F%2F127.0.0.1%3A4010");
  const key = /Gateway key\s+(\S+)/.exec(out)?.[1];
  assert.ok(key && key.length >= 32, "a fresh key of at least 32 characters");
  assert.match(out, /Direct mode\s+client id demo-direct, secret \S{32}/);

  const first = await fetch(`${gateway}/`, { redirect: "manual" });
  assert.equal(first.status, 303, "the stand-in for Access asks who is signing in first");
  assert.match(first.headers.get("location"), /^\/cdn-cgi\/access\/login/);
  assert.equal((await fetch(`${direct}/`)).status, 200, "the page is served");
  for (const base of [gateway, direct]) {
    const r = await fetch(`${base}/api/agents-availability`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.status, 200, `the printed key works (${base})`);
  }
  assert.equal(await answers(`${emulator}/_emulator/health`), true);

  child.kill("SIGINT");
  const how = await exited;
  assert.deepEqual(how, { code: 0, signal: null }, out);
  assert.match(out, /demo: stopped\./);
  assert.equal(await answers(`${gateway}/healthz`), false, "the stand-in still answers after Ctrl-C");
  assert.equal(await answers(`${direct}/healthz`), false, "the gateway still answers after Ctrl-C");
  assert.equal(await answers(`${emulator}/_emulator/health`), false, "the emulator still answers after Ctrl-C");
});
