// The client's fault matrix: every "C" row of docs/faults.md, run against the emulator
// with the installed package and asserted column by column. The table is the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { VccClient } from "vcc-auth";

const EMU = process.env.VCC_EMULATOR_URL;
assert.ok(EMU && process.env.VCC_ROOT, "VCC_EMULATOR_URL and VCC_ROOT must be set");
const SCOPE = "agents-availability:read";

/** The rows of docs/faults.md whose id starts with `prefix`, as objects by column. */
export function matrix(prefix) {
  const lines = readFileSync(`${process.env.VCC_ROOT}/docs/faults.md`, "utf8").split("\n");
  const cells = (l) =>
    l
      .trim()
      .replace(/^\||\|$/g, "")
      .split("|")
      .map((c) => c.trim());
  const rows = [];
  let header = null;
  for (const l of lines) {
    if (!l.startsWith("|")) {
      header = null;
      continue;
    }
    const c = cells(l);
    if (c[0] === "id") header = c;
    else if (header && c[0].startsWith(prefix)) rows.push(Object.fromEntries(header.map((h, i) => [h, c[i] ?? ""])));
  }
  assert.ok(rows.length > 0, `no ${prefix} rows in docs/faults.md`);
  return rows;
}

/** `a`, or `a–b`, as [min, max]. */
export function range(text) {
  const [a, b] = text.split("–").map(Number);
  assert.ok(Number.isInteger(a), `a count, not ${text}`);
  return [a, b ?? a];
}

/** `faults {…}; wait 10; get` as [verb, argument] pairs. */
export function steps(text) {
  return text
    .split(";")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const i = s.indexOf(" ");
      return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1).trim()];
    });
}

const post = (path, body) =>
  fetch(`${EMU}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function counts(id) {
  const s = await (await fetch(`${EMU}/_emulator/stats?clientId=${id}`)).json();
  return { token: s.tokenAttempts ?? 0, api: s.apiRequests ?? 0 };
}

/** One step's outcome, in the table's words. */
async function run(client, c, [verb, arg]) {
  try {
    switch (verb) {
      case "getToken":
        await client.getToken(SCOPE);
        return "token";
      case "fetch": {
        const init = arg ? { signal: AbortSignal.timeout(Number(arg)) } : {};
        const res = await client.fetch("/agents-availability", init);
        try {
          await res.arrayBuffer();
        } catch {
          return `${res.status}, body cut`;
        }
        return String(res.status);
      }
      case "faults":
        assert.equal((await post("/_emulator/faults", { clientId: c.id, ...JSON.parse(arg) })).status, 200);
        return "faults set";
      case "revoke":
        assert.equal((await post("/_emulator/revoke", { clientId: c.id })).status, 200);
        return "revoked";
      case "wait":
        await new Promise((r) => setTimeout(r, Number(arg)));
        return "waited";
      default:
        throw new Error(`docs/faults.md: unknown step ${verb}`);
    }
  } catch (e) {
    if (e?.name === "VccError") return e.code;
    if (e?.name === "TimeoutError" || e?.name === "AbortError") return e.name;
    throw e;
  }
}

for (const row of matrix("C")) {
  test(`${row.id}: ${row.fault}`, async () => {
    const id = `faults-${row.id}-${Math.random().toString(36).slice(2)}`;
    const c = { id, secret: `secret-${id}` };
    const lifetimeSeconds = Number(row["token lifetime (s)"]);
    assert.equal((await post("/_emulator/clients", { ...c, scopes: ["*"], lifetimeSeconds })).status, 200);
    const client = new VccClient({
      clientId: c.id,
      clientSecret: c.secret,
      authBaseUrl: EMU,
      apiBaseUrl: EMU,
      timeoutMs: 500,
      autoRefresh: false,
    });
    try {
      let setupToken = null;
      for (const s of steps(row["setup (not counted)"])) {
        assert.equal(s[0], "getToken", "setup steps are getToken");
        setupToken = await client.getToken(SCOPE);
      }
      const before = await counts(id);
      let outcome = null;
      for (const s of steps(row.steps)) {
        const o = await run(client, c, s);
        if (s[0] === "getToken" || s[0] === "fetch") outcome = o;
      }
      const after = await counts(id);
      assert.equal(outcome, row["caller sees"], "what the caller sees");
      const [tMin, tMax] = range(row["token requests"]);
      const tokenRequests = after.token - before.token;
      assert.ok(tokenRequests >= tMin && tokenRequests <= tMax, `token requests: ${tokenRequests}, table: ${row["token requests"]}`);
      const [aMin, aMax] = range(row["API requests"]);
      const apiRequests = after.api - before.api;
      assert.ok(apiRequests >= aMin && apiRequests <= aMax, `API requests: ${apiRequests}, table: ${row["API requests"]}`);
      if (row["cached token"] === "kept") {
        assert.ok(setupToken, "a kept token needs a setup getToken");
        assert.equal(await client.getToken(SCOPE), setupToken, "the cached token still serves");
        assert.equal((await counts(id)).token, after.token, "and no token request was made for it");
      }
    } finally {
      client.close();
      await post("/_emulator/faults", { clientId: c.id });
    }
  });
}
