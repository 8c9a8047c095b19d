// Before the package, so the counter is in place when its entry runs.
import { calls, restored } from "./count.mjs";
import { VccClient } from "vcc-auth";

// Created inside a request, never at module scope (workerd allows no I/O there, and the
// settings come from env). Requests are sequential in the test, so no cross-request
// promise is ever awaited here; the gateway handles that case.
let client;

export default {
  async fetch(request, env) {
    client ??= new VccClient({ clientId: env.CLIENT_ID, clientSecret: env.CLIENT_SECRET, authBaseUrl: env.EMU, apiBaseUrl: env.EMU });
    const { pathname } = new URL(request.url);
    try {
      if (pathname === "/token") {
        const token = await client.getToken("stats");
        const again = await client.getToken("stats");
        return Response.json({ length: token.length, cached: token === again, info: client.tokenInfo("stats") });
      }
      if (pathname === "/agents") {
        const res = await client.fetch("/agents-availability?skillNames=Sales");
        return new Response(res.body, { status: res.status, headers: { "content-type": "application/json" } });
      }
      if (pathname === "/microtasks") {
        // The package's futures schedule with a promise's `then`, never workerd's
        // costlier queueMicrotask, and the global is left as it was.
        return Response.json({ calls: calls(), restored: restored() });
      }
      if (pathname === "/wrong-secret") {
        const bad = new VccClient({
          clientId: env.CLIENT_ID,
          clientSecret: "workerd-wrong-secret",
          authBaseUrl: env.EMU,
          apiBaseUrl: env.EMU,
        });
        await bad.getToken("stats");
        return Response.json({ unexpected: "success" });
      }
      return new Response("not found", { status: 404 });
    } catch (e) {
      return Response.json({ name: e.name, code: e.code, message: e.message }, { status: 500 });
    }
  },
};
