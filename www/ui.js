// Small DOM helpers shared by both modes. Text goes in through textContent only, so
// nothing that came over the network is ever parsed as HTML.

/** `el("td", { class: "num" }, "42")`: an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

/** The four agent states of VCC's Agents Availability answer, in display order. */
export const STATUSES = ["Ready", "Away", "Extended Away", "Logged Out"];

/** "1 h 2 min", "3 min 5 s", "42 s". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

/** Local wall-clock time, HH:MM:SS, in a <time> element. */
export function timeEl(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return el("time", { datetime: d.toISOString() }, `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`);
}

/** At most the first 8 characters of a token and its length: enough to see it change. */
export const tokenPreview = (token) => `${token.slice(0, 8)}… (${token.length} characters)`;

/** "secondsInStatus" -> "Seconds in status". */
export const label = (key) => {
  const words = key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
};

/** A table of objects, columns from the first row's keys (or `columns`). */
export function table(rows, { caption, columns } = {}) {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cell = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : v);
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      caption ? el("caption", {}, caption) : null,
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          cols.map((c) => el("th", { scope: "col", class: rows.some((r) => typeof r[c] === "number") ? "num" : null }, label(c))),
        ),
      ),
      el(
        "tbody",
        {},
        rows.map((r) =>
          el(
            "tr",
            {},
            cols.map((c) => el("td", { class: typeof r[c] === "number" ? "num" : null }, cell(r[c]))),
          ),
        ),
      ),
    ),
  );
}

/** Shows `{ title, advice, detail }` in an alert box, or hides it (null). */
export function showError(box, problem) {
  box.replaceChildren();
  box.hidden = !problem;
  if (!problem) return;
  box.append(el("p", {}, el("strong", {}, problem.title)), el("p", {}, problem.advice));
  if (problem.detail) box.append(el("p", { class: "hint" }, problem.detail));
}
