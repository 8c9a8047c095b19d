// `make demo-node`: VccClient in Node against the local
// VCC emulator with 5-second tokens, so refresh-ahead, single-flight, 401 recovery and
// "keep serving while the token endpoint is down" all happen within half a minute.
// Ctrl-C stops it; DEMO_SECONDS sets its length (default 30).
import { VccClient } from "../pkg/index.mjs"; // in your project: from "vcc-auth"

const EMU = process.env.VCC_EMULATOR_URL ?? "http://127.0.0.1:4010";
const seconds = Number(process.env.DEMO_SECONDS ?? 30);
const t0 = Date.now();
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const log = (...a) => console.log(stamp(), ...a);
const control = (path, body = {}) =>
  fetch(`${EMU}/_emulator/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

const client = new VccClient({
  clientId: "demo-client",
  clientSecret: "demo-secret", // the emulator's demo client; never ship a secret to a browser
  authBaseUrl: EMU,
  apiBaseUrl: EMU,
  onEvent: (e) =>
    log(`event ${e.type.padEnd(9)} ${e.scope}${e.code ? ` ${e.code}${e.keptToken ? " (still serving the valid cached token)" : ""}` : ""}`),
});

const preview = (t) => `${t.slice(0, 8)}… (${t.length} chars)`; // never print a whole token
log(`VCC emulator at ${EMU}; tokens live 5 s, refresh-ahead starts at 50 % of the lifetime`);
const [a, b, c] = await Promise.all([1, 2, 3].map(() => client.getToken("agents-availability:read")));
log(`3 concurrent getToken calls -> one token ${preview(a)}; same for all: ${a === b && b === c}`);

let stop = false;
process.on("SIGINT", () => {
  stop = true;
});
const steps = [
  [8, "revoking every token at the emulator: the next call gets 401 invalid_token -> refresh -> retry", () => control("revoke")],
  [14, "token endpoint down: the cached token keeps serving until it expires", () => control("faults", { tokenDown: true })],
  [20, "token endpoint back", () => control("faults", {})],
];
while (!stop && Date.now() - t0 < seconds * 1000) {
  const elapsed = (Date.now() - t0) / 1000;
  while (steps.length && steps[0][0] <= elapsed) {
    const [, what, act] = steps.shift();
    log(`** ${what}`);
    await act();
  }
  try {
    const res = await client.fetch("/agents-availability?skillNames=Sales,Service");
    const info = client.tokenInfo("agents-availability:read");
    const left = info?.expiresAt ? ((info.expiresAt - Date.now()) / 1000).toFixed(1) : "-";
    log(
      `GET /agents-availability -> ${res.status} ${JSON.stringify(await res.json())}  token expires in ${left}s, refreshes ${info?.refreshes ?? 0}`,
    );
  } catch (e) {
    log(`call failed: ${e.name} ${e.code}: ${e.message}`);
  }
  await new Promise((r) => setTimeout(r, 1500));
}
client.close();
log("done (client closed)");
