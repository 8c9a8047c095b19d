// The VCC emulator's control API (docs/emulator.md) for tests and benchmarks: clients,
// faults, revocation, and what it counted. Suites that run from a copy of their files
// (tests/pkg, tests/store) have this file copied beside them by their script.
import assert from "node:assert/strict";

/** The emulator the harness started (scripts/with-emulator.sh). */
export const EMU = process.env.VCC_EMULATOR_URL;

export const rnd = () => Math.random().toString(36).slice(2);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POSTs `body` to the control endpoint `path` (`clients`, `faults`, `revoke`, …). */
export async function control(path, body, emu = EMU) {
  const r = await fetch(`${emu}/_emulator/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, path);
}

/** What the emulator counted for client `id` (token requests by scope, API requests, …). */
export const stats = async (id, emu = EMU) => (await fetch(`${emu}/_emulator/stats?clientId=${id}`)).json();
/** Token requests for client `id`, all scope sets together. */
export const tokenRequests = async (id) => Object.values((await stats(id)).tokenRequests ?? {}).reduce((a, b) => a + b, 0);

/** A fresh emulator client: its own counters and faults. */
export async function newClient(prefix, lifetimeSeconds = 7200, scopes = ["*"]) {
  const id = `${prefix}-${rnd()}`;
  const secret = `${prefix}-secret-${rnd()}-${rnd()}`;
  await control("clients", { id, secret, scopes, lifetimeSeconds });
  return { id, secret };
}

/** `VccClient` options for emulator client `c`, plus `extra`. */
export const clientOptions = (c, extra = {}) => ({
  clientId: c.id,
  clientSecret: c.secret,
  authBaseUrl: EMU,
  apiBaseUrl: EMU,
  ...extra,
});
