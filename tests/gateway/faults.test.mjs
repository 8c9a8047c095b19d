// The gateway's fault matrix: every "G" row of docs/faults.md against one gateway in
// workerd, each row on a route of its own (so with no cached token), asserted column by
// column. The table is the test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { assertCount, counts as countsOf, emulatorStep, matrix, steps } from "../faults-table.mjs";
import { EMU, ROOT, control, gatewayVars, mintKey, newClient, sleep, startGateway } from "./helpers.mjs";

const ROWS = matrix(ROOT, "G");
const ALL = mintKey("all", ["*"]);
const routeOf = (row) => `/fault-${row.id.toLowerCase()}`;
const routes = ROWS.map((row) => ({ methods: "read", prefix: routeOf(row), scope: `fault-${row.id.toLowerCase()}:read` }));
let gw;
let client;
/** Each row's full 200 answer, from its first. */
const full = new Map();

before(async () => {
  client = await newClient("faults");
  assert.equal(
    (
      await fetch(`${EMU}/_emulator/routes`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(routes),
      })
    ).status,
    200,
  );
  gw = await startGateway(gatewayVars(client, [ALL.entry], { GATEWAY_ROUTES: JSON.stringify(routes), UPSTREAM_TIMEOUT_MS: "1500" }));
});

after(async () => {
  await control("faults", { clientId: client.id });
  await gw?.stop();
});

const counts = () => countsOf(EMU, client.id);

/** A `get`'s outcome, in the table's words. */
async function run(row, [verb]) {
  switch (verb) {
    case "get": {
      const r = await fetch(`${gw.base}/api${routeOf(row)}`, {
        headers: { authorization: `Bearer ${ALL.key}` },
        signal: AbortSignal.timeout(20_000),
      });
      let text;
      try {
        text = await r.text();
      } catch {
        return `${r.status}, body cut`;
      }
      // The route's full answer is known from the first 200; a strict prefix of it is a
      // body that broke off but ended cleanly for the caller.
      if (r.status === 200 && !full.has(row.id)) full.set(row.id, text);
      const whole = full.get(row.id);
      if (r.status === 200 && whole?.startsWith(text) && text.length < whole.length) return "200, body short";
      let code;
      try {
        code = JSON.parse(text).error;
      } catch {}
      return typeof code === "string" ? `${r.status} ${code}` : String(r.status);
    }
    default:
      throw new Error(`docs/faults.md: unknown gateway step ${verb}`);
  }
}

for (const row of ROWS) {
  test(`${row.id}: ${row.fault}`, async () => {
    try {
      for (const s of steps(row["setup (not counted)"])) {
        if (!(await emulatorStep(EMU, client.id, s))) assert.equal(await run(row, s), "200", "setup get");
      }
      const start = await counts();
      let outcome = null;
      for (const s of steps(row.steps)) {
        if (!(await emulatorStep(EMU, client.id, s))) outcome = await run(row, s);
      }
      const end = await counts();
      assert.equal(outcome, row["caller sees"], "what the caller sees");
      assertCount(end.token - start.token, row["token requests"], "token requests");
      assertCount(end.api - start.api, row["API requests"], "API requests");
      if (row["cached token"] === "kept") {
        await control("faults", { clientId: client.id });
        assert.equal(await run(row, ["get", ""]), "200", "the cached token still serves");
        assert.equal((await counts()).token, end.token, "and no token request was made for it");
      }
    } finally {
      await control("faults", { clientId: client.id });
      // A background refresh may still be retrying: let it finish before the next row
      // counts (the emulator's counters are per client, and rows share the client).
      for (let last = await counts(); ; ) {
        await sleep(700);
        const now = await counts();
        if (now.token === last.token && now.api === last.api) break;
        last = now;
      }
    }
  });
}
