// The token broker's figures for `make bench`: token requests per token lifetime with
// N = 1, 2 and 4 gateway processes, with the broker (one process hosts it, the others
// bind it through a private dev registry) and without it (each process its own cache);
// and what an L1 miss adds (the broker round trip) over a cached call.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { control, gatewayVars, mintKey, newClient, sleep, startGateway, stats } from "../tests/gateway/helpers.mjs";

const LIFETIME_S = 5;
const WINDOW_S = 15;

async function fleet(n, broker, vars) {
  const registry = mkdtempSync(join(tmpdir(), "bench-registry-"));
  const gws = [];
  // One at a time: wrangler dev processes starting together race for shared state.
  for (let i = 0; i < n; i++) {
    const opts = broker
      ? i === 0
        ? { broker: true, registry }
        : { broker: "vcc-auth-gateway", name: `vcc-auth-gateway-${i}`, registry }
      : { name: `vcc-auth-gateway-${i}`, registry };
    gws.push(await startGateway(vars, opts));
  }
  return {
    gws,
    stop: async () => {
      for (const g of gws) await g.stop();
      rmSync(registry, { recursive: true, force: true });
    },
  };
}

/** Steady traffic on every process for WINDOW_S: token requests per token lifetime. */
async function perLifetime(n, broker) {
  const client = await newClient(`bench-fleet-${broker ? "b" : "i"}${n}`, LIFETIME_S);
  const key = mintKey("bench", ["*"]);
  const vars = gatewayVars(client, [key.entry]);
  const f = await fleet(n, broker, vars);
  try {
    const until = Date.now() + WINDOW_S * 1000;
    let failed = 0;
    while (Date.now() < until) {
      await Promise.all(
        f.gws.map(async (g) => {
          const r = await fetch(`${g.base}/api/stats/agent-status`, { headers: { authorization: `Bearer ${key.key}` } });
          if (r.status !== 200) failed++;
          await r.arrayBuffer();
        }),
      );
      await sleep(50);
    }
    const tokens = (await stats(client.id)).tokenRequests?.stats ?? 0;
    return { perLifetime: tokens / (WINDOW_S / LIFETIME_S), failed };
  } finally {
    await f.stop();
  }
}

/** Median ms of `n` sequential calls of `fn`. */
async function median(fn, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(n / 2)];
}

/** An L1 miss that the broker answers from its cache, against an L1 hit: one scope set
 *  per miss (scopes the route table has), warmed in the broker through process A. */
async function l1Miss() {
  const client = await newClient("bench-l1", 7200);
  const key = mintKey("bench", ["*"]);
  const vars = gatewayVars(client, [key.entry]);
  const f = await fleet(2, true, vars);
  const call = (g, path) => fetch(`${g.base}${path}`, { headers: { authorization: `Bearer ${key.key}` } }).then((r) => r.arrayBuffer());
  const paths = ["/api/stats/agent-status", "/api/useradmin/users", "/api/agents-availability", "/api/webhooks/subscriptions"];
  try {
    const [a, b] = f.gws;
    for (const p of paths) await call(a, p); // the broker holds every scope's token
    await call(b, paths[0]); // B's L1 holds the first
    const hit = await median(() => call(b, paths[0]), 21);
    const misses = [];
    for (const p of paths.slice(1)) {
      const t = performance.now();
      await call(b, p);
      misses.push(performance.now() - t);
    }
    misses.sort((x, y) => x - y);
    return { hit, miss: misses[1] };
  } finally {
    await f.stop();
  }
}

export async function brokerRows() {
  await control("faults", {}); // none
  const rows = [];
  for (const n of [1, 2, 4]) {
    const without = await perLifetime(n, false);
    const withB = await perLifetime(n, true);
    rows.push([
      `token requests per ${LIFETIME_S} s token lifetime, ${n} gateway process${n > 1 ? "es" : ""}`,
      `${withB.perLifetime.toFixed(1)} with broker, ${without.perLifetime.toFixed(1)} without`,
      "1 per scope set for the fleet",
      `steady calls on every process for ${WINDOW_S} s; failed calls: ${withB.failed + without.failed}`,
    ]);
  }
  const { hit, miss } = await l1Miss();
  rows.push([
    "L1 miss answered by the broker (added latency)",
    `${(miss - hit).toFixed(1)} ms (${miss.toFixed(1)} vs ${hit.toFixed(1)} ms cached)`,
    "",
    "wrangler dev, two processes; the miss's token is already in the broker",
  ]);
  return rows;
}
