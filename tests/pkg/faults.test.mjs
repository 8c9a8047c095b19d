// The client's fault matrix: every "C" row of docs/faults.md, run against the emulator
// with the installed package and asserted column by column. The table is the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VccClient } from "vcc-auth";
// (tests/faults-table.mjs, copied beside this file by scripts/test-pkg.sh)
import { assertCount, counts, emulatorStep, matrix, steps } from "./faults-table.mjs";
import { newClient } from "./emulator.mjs"; // (tests/emulator.mjs, copied likewise)

const EMU = process.env.VCC_EMULATOR_URL;
assert.ok(EMU && process.env.VCC_ROOT, "VCC_EMULATOR_URL and VCC_ROOT must be set");
const SCOPE = "agents-availability:read";

/** A client step's outcome (`getToken`, `fetch`), in the table's words. */
async function run(client, [verb, arg]) {
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
      default:
        throw new Error(`docs/faults.md: unknown step ${verb}`);
    }
  } catch (e) {
    if (e?.name === "VccError") return e.code;
    if (e?.name === "TimeoutError" || e?.name === "AbortError") return e.name;
    throw e;
  }
}

for (const row of matrix(process.env.VCC_ROOT, "C")) {
  test(`${row.id}: ${row.fault}`, async () => {
    const c = await newClient(`faults-${row.id}`, Number(row["token lifetime (s)"]));
    const { id } = c;
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
        if (s[0] === "getToken") setupToken = await client.getToken(SCOPE);
        else if (!(await emulatorStep(EMU, id, s))) await run(client, s);
      }
      const before = await counts(EMU, id);
      let outcome = null;
      for (const s of steps(row.steps)) {
        if (!(await emulatorStep(EMU, id, s))) outcome = await run(client, s);
      }
      const after = await counts(EMU, id);
      assert.equal(outcome, row["caller sees"], "what the caller sees");
      assertCount(after.token - before.token, row["token requests"], "token requests");
      assertCount(after.api - before.api, row["API requests"], "API requests");
      if (row["cached token"] === "kept") {
        assert.ok(setupToken, "a kept token needs a setup getToken");
        assert.equal(await client.getToken(SCOPE), setupToken, "the cached token still serves");
        assert.equal((await counts(EMU, id)).token, after.token, "and no token request was made for it");
      }
    } finally {
      client.close();
      await emulatorStep(EMU, id, ["faults", "{}"]);
    }
  });
}
