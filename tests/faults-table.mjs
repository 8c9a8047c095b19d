// Reads the fault matrix (docs/faults.md) for the tests that assert it:
// tests/pkg/faults.test.mjs (the client), tests/gateway/faults.test.mjs (the gateway) and
// the broker row in tests/gateway/broker.test.mjs. The table is the single source.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

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
