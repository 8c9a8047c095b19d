// Direct mode (development only): VccClient from the npm package runs in this tab with
// an emulator client id and secret, to show the token cache and the refresh timer at
// work. The emulator's /_emulator/ controls inject the faults (revocation, token
// endpoint down). Only loopback emulators are accepted: a real secret must never be
// typed into a web page.
import { $, STATUSES, el, duration, showError, timeEl, tokenPreview } from "./ui.js";

const SCOPE = "agents-availability:read";
const LOOPBACK = new Set(["127.0.0.1", "localhost"]);

let client = null;
let emulator = null; // origin
let clientId = null;
let ticker = null;
let endpointDown = false;

function log(kind, text) {
  const list = $("event-log");
  list.prepend(el("li", {}, timeEl(Date.now()), el("span", { class: kind }, kind), " ", text));
  while (list.children.length > 200) list.lastChild.remove();
}

/** Plain words for a VccError from the client (the gateway's refusals have their own,
 *  `explain` in app.js). */
function explainClientError(e) {
  const code = e?.code ?? "error";
  const words = {
    invalid_client: "The emulator did not accept this client id and secret. Use the ones make demo printed.",
    invalid_scope: "The emulator refused the scope for this client.",
    network: "Could not reach the emulator. Is make demo still running?",
    timeout: "The token endpoint did not answer in time.",
    token_endpoint: 'The token endpoint failed (is "token endpoint down" on?).',
    redirect: "The emulator answered with a redirect, which the client never follows.",
    token_rejected: "VCC rejected the tokens it just issued; the client waits before asking again.",
    rate_limited: "The token endpoint asked to slow down.",
    unauthorized: "VCC refused the token.",
    invalid_config: "The settings are not valid.",
    closed: "The client was stopped.",
  }[code];
  return { title: words ?? "Something went wrong.", advice: "", detail: `${code}: ${e?.message ?? String(e)}` };
}

async function control(path, body) {
  const res = await fetch(`${emulator}/_emulator/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`emulator ${path}: HTTP ${res.status}`);
  return res.json();
}

/** The emulator's origin, or an explanation of why this URL is refused. */
async function checkEmulator(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw { title: "That is not a URL.", advice: "Use the emulator URL make demo printed, e.g. http://127.0.0.1:4010." };
  }
  if (!/^https?:$/.test(url.protocol) || !LOOPBACK.has(url.hostname)) {
    throw {
      title: "Direct mode only talks to a local emulator.",
      advice: "Give a loopback URL (127.0.0.1 or localhost). For real VCC, use the gateway: the secret must stay server-side.",
    };
  }
  try {
    const res = await fetch(`${url.origin}/_emulator/health`, { cache: "no-store" });
    if (!(await res.json()).ok) throw new Error();
  } catch {
    throw {
      title: `No VCC emulator answers at ${url.origin}.`,
      advice: "Start it with make demo (or make emulator), and check the URL it printed.",
    };
  }
  return url.origin;
}

async function showToken() {
  if (!client) return;
  try {
    $("token-preview").textContent = tokenPreview(await client.getToken(SCOPE));
  } catch {
    $("token-preview").textContent = "none (no valid token)";
  }
}

function onEvent(ev) {
  const left = ev.expiresAt ? `; it expires in ${duration((ev.expiresAt - Date.now()) / 1000)}` : "";
  if (ev.type === "fetched") log("fetched", `got a new token${left}`);
  else if (ev.type === "refreshed") log("refreshed", `refreshed ahead of expiry by the timer${left}`);
  else log("failed", `${ev.code}: ${ev.message}${ev.keptToken ? ` — still serving the cached token${left}` : ""}`);
  if (ev.type !== "failed") showToken();
}

function draw() {
  const info = client?.tokenInfo(SCOPE);
  if (!info) return;
  const now = Date.now();
  const meter = $("direct-meter");
  if (info.expiresAt) {
    const left = Math.max(0, (info.expiresAt - now) / 1000);
    meter.max = Math.max(1, (info.expiresAt - (info.obtainedAt ?? now)) / 1000);
    meter.value = left;
    const refresh = info.inFlight
      ? "a token request is in flight"
      : info.refreshAt > now
        ? `the refresh timer fires in ${duration((info.refreshAt - now) / 1000)}`
        : "refreshing (retrying while the cached token is still valid)";
    $("direct-countdown").textContent =
      left > 0 ? `Expires in ${duration(left)}; ${refresh}.` : "Expired: the next call fetches a new token.";
  } else {
    meter.value = 0;
    $("direct-countdown").textContent = info.inFlight ? "Fetching a token…" : "No token cached.";
  }
  $("direct-counts").textContent = `Fetched ${info.fetches}, refreshed ${info.refreshes}, failed ${info.failures}.`;
}

async function callApi() {
  if (!client) return;
  const info = client.tokenInfo(SCOPE);
  const before = info ? info.fetches + info.refreshes : 0;
  log("action", "API call: GET /agents-availability");
  try {
    const res = await client.fetch("/agents-availability");
    const body = await res.json().catch(() => null);
    const after = client.tokenInfo(SCOPE);
    const renewed = after && after.fetches + after.refreshes > before;
    const summary =
      res.ok && body
        ? STATUSES.filter((k) => k in body)
            .map((k) => `${k} ${body[k]}`)
            .join(", ")
        : `HTTP ${res.status}`;
    log(
      res.ok ? "ok" : "bad",
      `API answered ${res.status}${renewed ? " after a retry with a new token (the old one was rejected with 401 invalid_token)" : ""}: ${summary}`,
    );
    $("direct-result").textContent = `Last call: HTTP ${res.status}. ${summary}`;
  } catch (e) {
    const p = explainClientError(e);
    log("bad", `API call failed: ${p.title} (${p.detail})`);
    $("direct-result").textContent = `Last call failed: ${p.title}`;
  }
}

async function start(e) {
  e.preventDefault();
  const box = $("direct-error");
  showError(box, null);
  const secretInput = $("client-secret");
  const button = e.submitter ?? $("direct-form").querySelector("button");
  button.disabled = true;
  try {
    emulator = await checkEmulator($("emulator-url").value.trim());
    clientId = $("client-id").value.trim();
    const { init, VccClient } = await import("./vendor/vcc-auth/slim.mjs");
    await init(); // the .wasm next to it, compiled while it downloads
    const c = new VccClient({ clientId, clientSecret: secretInput.value, authBaseUrl: emulator, apiBaseUrl: emulator, onEvent });
    secretInput.value = ""; // the secret now lives only inside the client (wasm memory)
    try {
      await c.getToken(SCOPE);
    } catch (err) {
      c.close();
      throw explainClientError(err);
    }
    client = c;
    $("direct-form").hidden = true;
    $("direct-running").hidden = false;
    $("direct-scope").textContent = `(scope ${SCOPE}, emulator ${emulator})`;
    await showToken();
    ticker = setInterval(draw, 250);
    draw();
  } catch (problem) {
    showError(
      box,
      problem?.title ? problem : { title: "Could not start the client.", advice: "", detail: String(problem?.message ?? problem) },
    );
  } finally {
    button.disabled = false;
  }
}

async function setEndpointDown(down) {
  try {
    await control("faults", { clientId, tokenDown: down });
    endpointDown = down;
    const b = $("endpoint-down");
    b.setAttribute("aria-pressed", String(down));
    b.textContent = down ? "Bring token endpoint back" : "Token endpoint down";
    log(
      "action",
      down
        ? "token endpoint is down (the emulator answers 503): the cached token keeps serving while it is valid"
        : "token endpoint is back",
    );
  } catch (err) {
    log("bad", `could not change the emulator: ${err.message}`);
  }
}

async function stop() {
  clearInterval(ticker);
  ticker = null;
  if (endpointDown) await setEndpointDown(false);
  client?.close();
  client = null;
  log("action", "client stopped (timers cancelled)");
  $("direct-running").hidden = true;
  $("direct-form").hidden = false;
  $("token-preview").textContent = "—";
}

export function init() {
  $("emulator-url").value = new URLSearchParams(location.search).get("emulator") ?? "http://127.0.0.1:4010";
  $("direct-form").addEventListener("submit", start);
  $("call-api").addEventListener("click", callApi);
  $("revoke").addEventListener("click", async () => {
    try {
      const r = await control("revoke", { clientId });
      log("action", `revoked ${r.revoked} token(s) at the emulator; VCC now rejects the cached one`);
    } catch (err) {
      log("bad", `could not revoke: ${err.message}`);
      return;
    }
    await callApi(); // shows 401 invalid_token -> new token -> retry
  });
  $("endpoint-down").addEventListener("click", () => setEndpointDown(!endpointDown));
  $("direct-stop").addEventListener("click", stop);
}
