// Every browser app's entry (esbuild, Rollup, webpack, Vite 6 and 7): run.mjs copies it
// into each app, where that tool's guide puts the entry, so each tool bundles the same check.
import { VccClient, VccError } from "vcc-auth";

// The emulator's address and a client's credentials come in the page's query.
const q = new URLSearchParams(location.search);
const [emu, clientId, clientSecret] = ["emu", "id", "secret"].map((k) => q.get(k));
const options = { clientId, clientSecret, authBaseUrl: emu, apiBaseUrl: emu };
(async () => {
  try {
    const client = new VccClient(options);
    const token = await client.getToken("agents-availability:read");
    const res = await client.fetch("/agents-availability?skillNames=Sales");
    await res.text();
    let error;
    try {
      await new VccClient({ ...options, clientSecret: "not-the-secret" }).getToken("stats");
    } catch (e) {
      error = e instanceof VccError ? e.code : `not a VccError: ${e}`;
    }
    client.close();
    window.result = { tokenLength: token.length, status: res.status, error };
  } catch (e) {
    window.result = { failed: String(e) };
  }
})();
