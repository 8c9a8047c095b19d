// Reads the fault matrix (docs/faults.md) for the tests that assert it:
// tests/pkg/faults.test.mjs (the client), tests/gateway/faults.test.mjs (the gateway) and
// the broker row in tests/gateway/broker.test.mjs. The table is the single source.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { control, stats } from "./emulator.mjs"; // beside this file in tests/ and in its copies

/** The rows of docs/faults.md (under `root`) whose id starts with `prefix`, as objects
 *  keyed by column header. */
export function matrix(root, prefix) {
  const cells = (l) =>
    l
      .trim()
      .replace(/^\||\|$/g, "")
      .split("|")
      .map((c) => c.trim());
  const rows = [];
  let header = null;
  for (const l of readFileSync(`${root}/docs/faults.md`, "utf8").split("\n")) {
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

/** Asserts that `n` lies in the table's `text` (`a` or `a–b`). */
export function assertCount(n, text, what) {
  const [min, max] = range(text);
  assert.ok(n >= min && n <= max, `${what}: ${n}, table: ${text}`);
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

/** What the table's count columns compare, for emulator client `id`: every token
 *  request (whatever its answer) and every API request. */
export async function counts(emu, id) {
  const s = await stats(id, emu);
  return { token: s.tokenAttempts ?? 0, api: s.apiRequests ?? 0 };
}

/** Carries out a step that acts on the emulator or the clock for client `id` (`faults
 *  {…}`, `revoke`, `wait N`); false for any other verb (the caller's own steps). */
export async function emulatorStep(emu, id, [verb, arg]) {
  switch (verb) {
    case "faults":
      await control("faults", { clientId: id, ...JSON.parse(arg) }, emu);
      return true;
    case "revoke":
      await control("revoke", { clientId: id }, emu);
      return true;
    case "wait":
      await new Promise((r) => setTimeout(r, Number(arg)));
      return true;
    default:
      return false;
  }
}
