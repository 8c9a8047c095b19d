// The demo page, "through the gateway" mode, and the mode switch. The page calls the
// gateway at /api/<VCC path> with its gateway key; the gateway adds the VCC token. The
// wasm package is loaded only when direct mode is opened (direct.js).
import { $, STATUSES, el, duration, showError, table } from "./ui.js";

const KEY_STORAGE = "vcc-demo.gatewayKey";
const APIS = {
  availability: { name: "Agents Availability", scope: "agents-availability:read" },
  users: { name: "Users", scope: "users:read" },
  stats: { name: "Stats", scope: "stats" },
};

// ---- the gateway key: sessionStorage only, never written back into the DOM ----------
const storage = {
  get: () => {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null;
    }
  },
  set: (k) => {
    try {
      if (k) sessionStorage.setItem(KEY_STORAGE, k);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {}
  },
};

// ---- who calls: a person signed in in front of the gateway (Cloudflare Access, or make
// demo's stand-in for it), or this tab's gateway key ------------------------------------
// Behind Access every request carries the person's sign-in (a header Access adds): the
// page sends no credential of its own. Otherwise it sends the key.
let who = null; // /whoami's answer: { kind: "person" | "key", scopes, admin, … } or null
let whoReady = Promise.resolve();
const signedIn = () => who?.kind === "person";
/** The headers that carry this tab's credential: none when signed in. */
const credential = () => {
  const key = signedIn() ? null : storage.get();
  return key ? { authorization: `Bearer ${key}` } : {};
};

/** Scopes in words: the page's API names where it knows them. */
function mayUse(scopes) {
  if (scopes.includes("*")) return "every API";
  const names = scopes.map((s) => Object.values(APIS).find((a) => a.scope === s)?.name ?? s);
  return names.length ? names.join(", ") : "no API";
}

async function whoAmI(headers) {
  try {
    const res = await fetch("/whoami", { cache: "no-store", headers });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/** Asks the gateway who this tab is: a signed-in person first, else the key. */
function refreshWho() {
  whoReady = (async () => {
    const person = await whoAmI({});
    who = person?.kind === "person" ? person : null;
    let identity = null;
    if (signedIn()) {
      // Access (and the demo's stand-in) says who is signed in, by name, on this origin.
      try {
        const r = await fetch("/cdn-cgi/access/get-identity", { cache: "no-store" });
        if (r.ok) identity = await r.json();
      } catch {}
    } else if (storage.get()) {
      who = await whoAmI(credential());
    }
    drawWho(identity);
  })();
  return whoReady;
}

function drawWho(identity) {
  $("key-form").hidden = signedIn();
  $("signed-in").hidden = !signedIn();
  if (signedIn()) {
    const name = identity?.name || who.name || identity?.email || who.sub;
    const email = identity?.email && identity.email !== name ? ` (${identity.email})` : "";
    $("who").textContent =
      `Signed in as ${name}${email}. You may use: ${mayUse(who.scopes)}` +
      `${who.admin ? "; you see the gateway's details" : ""}. No key is needed.`;
    return;
  }
  $("key-state").textContent = storage.get()
    ? `A key is set for this tab (kept in sessionStorage; closing the tab forgets it).${
        who?.kind === "key" ? ` It may use: ${mayUse(who.scopes)}${who.admin ? "; it sees the gateway's details" : ""}.` : ""
      }`
    : "No key yet: paste the one make demo printed.";
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("key-input");
  storage.set(input.value.trim());
  input.value = "";
  who = null;
  drawWho(null); // at once; what the key may use follows
  refreshWho().then(refreshHealth);
  showError($("gateway-error"), null);
});
$("key-forget").addEventListener("click", () => {
  storage.set(null);
  who = null;
  drawWho(null);
  refreshWho().then(refreshHealth);
});

// ---- errors in plain words ------------------------------------------------------------
/** What went wrong and what to do, from the status and the (JSON) body of an answer. */
export function explain(status, body, api, retryAfter) {
  // The gateway refuses with {error, message} and a stable code: branch on the code.
  // Anything else is VCC's own answer, passed through: branch on the status.
  const gatewayRefusal = body && typeof body.error === "string" && typeof body.message === "string";
  const said =
    body && (body.error || body.message)
      ? `${gatewayRefusal ? "The gateway" : "VCC"} said: ${[body.error, body.message].filter(Boolean).join(": ")}`
      : null;
  const wait = (fallback) => (retryAfter ? duration(Number(retryAfter)) : fallback);
  const words = (title, advice) => ({ title, advice, detail: said });
  if (status === 0) return words("Could not reach the gateway.", "Is make demo still running? Start it again, then reload this page.");
  if (gatewayRefusal) {
    switch (body.error) {
      case "no_key":
        return words(
          "The gateway needs a key, or a sign-in.",
          "Paste the gateway key that make demo printed (or one from GATEWAY_KEYS) and press Use key, or sign in.",
        );
      case "bad_identity":
        return words(
          "The gateway did not accept your sign-in.",
          "Reload the page to sign in again. If it keeps happening, the gateway's ACCESS_ALGORITHMS or ACCESS_JWKS_URL may not fit your identity provider.",
        );
      case "identity_expired":
        return words("Your sign-in has expired.", "Reload the page to sign in again.");
      case "identity_not_yet_valid":
        return words(
          "Your sign-in is not valid yet.",
          "The identity provider's clock and the gateway's disagree by over a minute: check them, then reload the page.",
        );
      case "identity_wrong_issuer":
        return words(
          "You signed in with an identity provider this gateway does not trust.",
          "The gateway's ACCESS_ISSUER must be the issuer that signs you in.",
        );
      case "identity_wrong_audience":
        return words(
          "Your sign-in is for another application.",
          "The gateway's ACCESS_AUDIENCE must be the Access application's AUD tag (or the audience your sign-in asks for).",
        );
      case "identity_not_allowed":
        return words(
          "You are signed in, but this gateway grants you nothing.",
          "Ask whoever runs the gateway for a GATEWAY_ACCESS_POLICY row that names you or your group.",
        );
      case "identity_unavailable":
        return words(
          "The gateway cannot check sign-ins right now.",
          `It cannot fetch your identity provider's keys. Try again in ${wait("a few seconds")}; if it persists, check ACCESS_JWKS_URL.`,
        );
      case "unknown_key":
        return words(
          "The gateway did not accept the key.",
          "This key is unknown to the gateway (make demo makes a new one each run). Paste the key it printed and press Use key.",
        );
      case "malformed_key":
        return words(
          "That is not a gateway key.",
          "Gateway keys start with vccgw_ and carry a checksum, which did not match: check for a typo or a cut-off paste, then press Use key.",
        );
      case "expired_key":
        return words("This gateway key has expired.", "Ask whoever runs the gateway for a new key (make key mints one).");
      case "rate_limited":
        return words(
          "You have made too many calls for now.",
          `The gateway limits the calls of each key and each person. Wait ${wait("a minute")} and try again; the page will work as before.`,
        );
      case "scope_denied":
        return words(
          `${signedIn() ? "You" : "This key"} may not use the ${api.name} API.`,
          signedIn()
            ? `Ask whoever runs the gateway for a GATEWAY_ACCESS_POLICY row that grants you the scope "${api.scope}".`
            : `Use a key whose GATEWAY_KEYS entry lists the scope "${api.scope}" (or "*"), or ask whoever runs the gateway to add it.`,
        );
      case "origin_denied":
        return words("This page's origin is not allowed.", `Add ${location.origin} to the gateway's ALLOWED_ORIGINS setting.`);
      case "route_not_found":
      case "path_not_plain":
        return words(
          "The gateway has no route for this API.",
          "Only the VCC APIs in the gateway's route table are forwarded, by their plain path. Check the path, or update the gateway.",
        );
      case "method_not_allowed":
        return words("This API does not allow that method.", "Use a method the route table allows for it.");
      case "body_timeout":
        return words("The request body took too long to arrive.", "Try again; the gateway's BODY_TIMEOUT_MS setting is the limit.");
      case "body_too_large":
        return words("The request body is too large.", "The gateway forwards at most 100 KiB (VCC itself takes 100 KB).");
      case "bad_request":
        return words("The gateway could not read the request.", "Try again.");
      case "gateway_misconfigured":
        return words("The gateway is misconfigured.", `Fix its ${body.setting ?? "settings"} setting and restart it.`);
      case "token_failed":
        return words(
          "The gateway could not get a token from VCC.",
          "Check VCC_CLIENT_ID, VCC_CLIENT_SECRET and VCC_REGION in the gateway's settings and that VCC is reachable; the gateway status below shows the last error per scope.",
        );
      case "token_rejected":
        return words(
          "VCC is rejecting the tokens it issues.",
          `The gateway waits ${wait("a little")} before asking for another. If it keeps happening, check the VCC client's status and the clocks.`,
        );
      case "upstream_unreachable":
        return words("The gateway could not reach VCC.", "Try again in a moment; check VCC_REGION or VCC_API_BASE_URL if it persists.");
      case "gateway_busy":
        return words("The gateway is busy.", `It holds as many request bodies as it may at once. Try again in ${wait("a second")}.`);
      case "upstream_incomplete":
        return words("VCC's answer broke off before its end.", "Try again in a moment; the network between the gateway and VCC cut it.");
      case "upstream_redirect":
        return words(
          "VCC answered with a redirect, which the gateway does not follow.",
          "Check VCC_API_BASE_URL: it must be VCC's API root itself.",
        );
      case "upstream_timeout":
        return words("VCC did not answer in time.", "Try again in a moment. The gateway's UPSTREAM_TIMEOUT_MS setting is the limit.");
    }
  }
  switch (status) {
    case 401:
    case 403:
      return words("VCC refused the call.", "The gateway's VCC client may lack this API's scope; check its API credentials in VCC.");
    case 404:
      return words("VCC says this does not exist.", "Check the filter or the id you asked for.");
    case 429:
      return words("VCC's rate limit was reached.", `Wait ${wait("a little")} and try again.`);
    default:
      return words(
        `The request failed (HTTP ${status}).`,
        status >= 500 ? "VCC or the gateway had a problem; try again in a moment." : "Check what you asked for.",
      );
  }
}

// ---- calling the gateway --------------------------------------------------------------
async function callGateway(apiId, path) {
  const api = APIS[apiId];
  const box = $("gateway-error");
  const result = $("result");
  await whoReady;
  if (!signedIn() && !storage.get()) {
    showError(box, explain(401, { error: "no_key", message: "no key given" }, api));
    $("key-input").focus();
    return null;
  }
  result.setAttribute("aria-busy", "true");
  let res;
  try {
    res = await fetch(`/api${path}`, { headers: credential() });
  } catch {
    showError(box, explain(0, null, api));
    return null;
  } finally {
    result.removeAttribute("aria-busy");
    refreshHealth();
  }
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {}
  if (!res.ok) {
    showError(box, explain(res.status, body, api, res.headers.get("retry-after")));
    result.replaceChildren();
    return null;
  }
  showError(box, null);
  if (body === null) {
    showError(box, {
      title: "The answer was not JSON.",
      advice: "VCC answered something this page cannot show.",
      detail: `Content-Type: ${res.headers.get("content-type")}`,
    });
    return null;
  }
  return body;
}

/** A bar of the chart. Its width is set through the CSSOM: the page's CSP allows no
 *  inline style attributes. */
function bar(cls, percent) {
  const b = el("div", { class: cls });
  b.style.width = `${percent}%`;
  return b;
}

function availabilityView(data, skills) {
  const counts = STATUSES.map((s) => ({ status: s, agents: Number(data?.[s] ?? 0) }));
  const max = Math.max(1, ...counts.map((c) => c.agents));
  const total = counts.reduce((a, c) => a + c.agents, 0);
  const what = skills ? `skills ${skills}` : "all skills";
  return [
    table(counts, { caption: `Agents by status, ${what} (${total} in all)` }),
    el(
      "div",
      { class: "chart", "aria-hidden": "true" },
      counts.map((c, i) => [
        el("span", {}, c.status),
        el("div", {}, bar(`bar s${i}`, (100 * c.agents) / max)),
        el("span", { class: "num" }, c.agents),
      ]),
    ),
  ];
}

let usersPage = 1;
function usersView(data) {
  const items = Array.isArray(data) ? data : (data.items ?? []);
  const page = Number(data.page ?? usersPage);
  const limit = Number(data.limit ?? items.length);
  const total = Number.isFinite(Number(data.total)) ? Number(data.total) : null;
  const pages = total !== null && limit > 0 ? Math.max(1, Math.ceil(total / limit)) : null;
  const cols = ["id", "firstName", "lastName", "userName", "email", "active", "presence"].filter((c) => items.some((u) => c in u));
  const prev = el("button", { type: "button", disabled: page <= 1 }, "Previous page");
  const next = el("button", { type: "button", disabled: pages !== null ? page >= pages : items.length < limit }, "Next page");
  prev.addEventListener("click", () => loadUsers(page - 1));
  next.addEventListener("click", () => loadUsers(page + 1));
  const rows = items.map((u) => ({ ...u, active: u.active === undefined ? undefined : u.active ? "yes" : "no" }));
  return [
    items.length
      ? table(rows, {
          caption: `Users, page ${page}${pages ? ` of ${pages}` : ""}${total !== null ? ` (${total} in all)` : ""}`,
          columns: cols.length ? cols : undefined,
        })
      : el("p", {}, "No users on this page."),
    el("div", { class: "pager" }, prev, next),
  ];
}

async function loadUsers(page) {
  const limit = $("page-size").value;
  const q = new URLSearchParams({ page: String(page), limit });
  if ($("active-only").checked) q.set("include", "Active");
  const data = await callGateway("users", `/useradmin/users?${q}`);
  if (!data) return;
  usersPage = page;
  $("result").replaceChildren(...usersView(data));
}

$("availability-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const skills = $("skills")
    .value.split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .join(",");
  const data = await callGateway("availability", `/agents-availability${skills ? `?${new URLSearchParams({ skillNames: skills })}` : ""}`);
  if (data) $("result").replaceChildren(...availabilityView(data, skills));
});
$("users-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadUsers(1);
});
$("stats-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = await callGateway("stats", "/stats/agent-status");
  if (!data) return;
  const items = Array.isArray(data) ? data : (data.items ?? []);
  $("result").replaceChildren(items.length ? table(items, { caption: "Agent status" }) : el("p", {}, "No agents."));
});
for (const radio of document.querySelectorAll("input[name=api]")) {
  radio.addEventListener("change", () => {
    for (const form of document.querySelectorAll(".api-form")) form.hidden = form.dataset.api !== radio.value;
    $("result").replaceChildren();
    showError($("gateway-error"), null);
  });
}

// ---- gateway status: /healthz polled, countdown ticked locally -----------------------
// /healthz tells anyone only that the gateway is up; its details (the tokens, counters,
// keys) go to the admin role: a key granted gateway:admin, or a person the policy makes
// admin.
let health = null; // { at, scopes }, or { at, scopes: null } without the admin role
let healthTimer = null;

async function refreshHealth() {
  try {
    await whoReady;
    const res = await fetch("/healthz", { cache: "no-store", headers: credential() });
    if (!res.ok) throw new Error(String(res.status));
    health = { at: Date.now(), scopes: (await res.json()).scopes ?? null };
    $("health-state").textContent = health.scopes
      ? ""
      : "The gateway is up. Its token details are shown to the admin role only: a key granted gateway:admin, or a person the access policy makes admin.";
  } catch {
    health = null;
    $("health-state").textContent = "The gateway's /healthz does not answer. Is make demo still running?";
  }
  drawHealth();
}

function drawHealth() {
  const list = $("health-list");
  if (!health?.scopes) return list.replaceChildren();
  const entries = Object.entries(health.scopes);
  if (!entries.length) {
    $("health-state").textContent = "No token cached yet: the gateway fetches one on the first API call.";
    return list.replaceChildren();
  }
  const gone = (Date.now() - health.at) / 1000;
  list.replaceChildren(
    ...entries.map(([scope, s]) => {
      const left = s.expiresInSeconds === null ? null : Math.max(0, s.expiresInSeconds - gone);
      const refreshIn = s.refreshInSeconds === null ? null : Math.max(0, s.refreshInSeconds - gone);
      const id = `scope-${scope.replace(/[^a-z0-9]+/gi, "-")}`;
      const text =
        left === null
          ? "no token cached"
          : left <= 0
            ? "expired; the next API call fetches a new token"
            : `expires in ${duration(left)}${refreshIn > 0 ? `; refreshed ahead on a call after ${duration(refreshIn)}` : "; the next call refreshes it ahead of expiry"}`;
      return el(
        "li",
        { "data-scope": scope },
        el("code", {}, scope),
        el("meter", { min: 0, max: s.lifetimeSeconds ?? 1, value: left ?? 0, "aria-labelledby": id }),
        el(
          "p",
          { class: "hint", id },
          `${text}. Fetched ${s.fetches ?? 0}, refreshed ${s.refreshes ?? 0} times`,
          s.failures ? `; ${s.failures} failed token request${s.failures === 1 ? "" : "s"}` : "",
          s.lastError ? ` (last error: ${s.lastError})` : "",
          ".",
        ),
      );
    }),
  );
}

$("health-refresh").addEventListener("click", refreshHealth);

function startHealth() {
  if (healthTimer) return;
  refreshHealth();
  let n = 0;
  healthTimer = setInterval(() => (++n % 5 === 0 ? refreshHealth() : drawHealth()), 1000);
}
function stopHealth() {
  clearInterval(healthTimer);
  healthTimer = null;
}
// Poll only while someone can see the panel: the tab is visible and in gateway mode.
const healthVisible = () => !document.hidden && !$("gateway-mode").hidden;
document.addEventListener("visibilitychange", () => (healthVisible() ? startHealth() : stopHealth()));

// ---- modes -------------------------------------------------------------------------------
let direct = null;
async function setMode(mode) {
  $("gateway-mode").hidden = mode !== "gateway";
  $("direct-mode").hidden = mode !== "direct";
  if (healthVisible()) startHealth();
  else stopHealth();
  if (mode === "direct" && !direct) {
    direct = import("./direct.js").then((m) => m.init());
    await direct;
  }
}
for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", () => setMode(radio.value));

refreshWho();
startHealth();
const checked = document.querySelector("input[name=mode]:checked");
if (checked && checked.value !== "gateway") setMode(checked.value);
