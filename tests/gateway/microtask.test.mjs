// The gateway's wasm futures never call workerd's `queueMicrotask` (a runtime API that
// costs ~46x a promise's `then` per call there; see `prime_queue` in src/glue/js.rs),
// and the global is left as it was. Served by workerd through the Miniflare API, as
// the benchmark serves the gateway.
import { rmSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { bundle, serve } from "../../bench/workerd.mjs";
import { gatewayVars, mintKey, newClient } from "./helpers.mjs";

test("the gateway's futures never call queueMicrotask, and the global stays as it was", async () => {
  const client = await newClient("microtask");
  const { key, entry } = mintKey("microtask", ["*"]);
  const built = bundle(new URL("./microtask/", import.meta.url).pathname);
  const server = await serve(built, gatewayVars(client, [entry]));
  try {
    for (const path of ["/healthz", "/api/agents-availability?skillNames=Sales", "/api/agents-availability?skillNames=Sales"]) {
      const res = await fetch(`${server.base}${path}`, { headers: { authorization: `Bearer ${key}` } });
      await res.arrayBuffer();
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("x-queue-microtask-calls"), "0", `${path}: queueMicrotask calls so far`);
      assert.equal(res.headers.get("x-queue-microtask-restored"), "true", path);
    }
  } finally {
    await server.mf.dispose();
    rmSync(built.out, { recursive: true, force: true });
  }
});
