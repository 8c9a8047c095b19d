// A paired A/B of two gateway builds: how a change to the wasm or a hot path is judged
// (README, "Benchmarks"). Each build is bundled as `wrangler deploy` would upload it and
// served in workerd as shipped (broker bound, rate limit bound with a limit no run
// reaches, log line on); rounds alternate A, B, A, B… so the machine's drift falls on
// both, and each round's figures are compared pair by pair. Cold starts alternate too,
// each a new workerd process (bench/workerd.mjs `coldStart`).
//
//   make gateway  (in each checkout)
//   scripts/with-emulator.sh node bench/ab.mjs <worker dir A> <worker dir B>
//
// Knobs: AB_ROUNDS (default 8), AB_ROUND_S (default 5), AB_COLD (cold starts of each,
// default 15). Prints medians and the B/A ratios; no verdict.
import { rmSync } from "node:fs";
import autocannon from "autocannon";
import { gatewayVars, mintKey, newClient } from "../tests/gateway/helpers.mjs";
import { bundle, coldStart, cpuSeconds, serve } from "./workerd.mjs";

const [dirA, dirB] = process.argv.slice(2);
if (!dirA || !dirB) {
  console.error("usage: node bench/ab.mjs <worker dir A> <worker dir B>  (under scripts/with-emulator.sh)");
  process.exit(2);
}
const ROUNDS = Number(process.env.AB_ROUNDS ?? 8);
const ROUND_S = Number(process.env.AB_ROUND_S ?? 5);
const COLD = Number(process.env.AB_COLD ?? 15);
const PATH = "/api/agents-availability?skillNames=Sales";
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const spread = (a) => `${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}`;

const client = await newClient("ab");
// admin: the cold start asks /healthz, and gets its details, as before the admin role.
const { key, entry } = mintKey("ab", ["*", "gateway:admin"]);
const vars = gatewayVars(client, [entry], { VCC_REGION: "emea" });
const auth = { authorization: `Bearer ${key}` };
const builds = [
  { name: "A", ...bundle(dirA) },
  { name: "B", ...bundle(dirB) },
];
try {
  for (const b of builds) console.log(`${b.name}: ${(b.wasm / 1024).toFixed(1)} KB wasm, ${(b.gz / 1024).toFixed(1)} KB gzipped bundle`);
  const servers = [];
  for (const b of builds) {
    const s = await serve(b, vars, { broker: true, rateLimit: true });
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${s.base}${PATH}`, { headers: auth });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`${b.name}: warm-up answered ${r.status}`);
    }
    servers.push({ ...s, name: b.name, cpu: [], reqs: [] });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of round % 2 ? [...servers].reverse() : servers) {
      const cpu0 = cpuSeconds(s.pid);
      const r = await new Promise((resolve, reject) =>
        autocannon({ url: `${s.base}${PATH}`, headers: auth, connections: 32, duration: ROUND_S }, (e, res) =>
          e ? reject(e) : resolve(res),
        ),
      );
      if (r.non2xx || r.errors) throw new Error(`${s.name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      s.cpu.push(((cpuSeconds(s.pid) - cpu0) * 1e6) / r.requests.total);
      s.reqs.push(r.requests.average);
    }
    console.error(`  round ${round + 1}: A ${servers[0].cpu.at(-1).toFixed(0)} µs, B ${servers[1].cpu.at(-1).toFixed(0)} µs per request`);
  }
  for (const s of servers) await s.mf.dispose();
  const [a, b] = servers;
  const cpuRatios = b.cpu.map((c, i) => c / a.cpu[i]);
  console.log(
    `CPU per request: A ${median(a.cpu).toFixed(0)} µs, B ${median(b.cpu).toFixed(0)} µs; B/A median ${median(cpuRatios).toFixed(3)} (${spread(cpuRatios)}) over ${ROUNDS} paired rounds of ${ROUND_S} s`,
  );
  const reqRatios = b.reqs.map((r, i) => r / a.reqs[i]);
  console.log(`req/s: A ${median(a.reqs).toFixed(0)}, B ${median(b.reqs).toFixed(0)}; B/A median ${median(reqRatios).toFixed(3)}`);

  const cold = [[], []];
  await coldStart(builds[0], vars, "/healthz", auth); // this process's first fetch of a new origin
  for (let i = 0; i < COLD; i++) {
    const order = i % 2 ? [1, 0] : [0, 1];
    for (const j of order) cold[j].push(await coldStart(builds[j], vars, "/healthz", auth));
  }
  const total = (xs) => xs.map((x) => x.start + x.first);
  const coldRatios = total(cold[1]).map((t, i) => t / total(cold[0])[i]);
  for (const [j, b] of builds.entries()) {
    const xs = cold[j];
    console.log(
      `cold start ${b.name}: ${median(total(xs)).toFixed(1)} ms (start ${median(xs.map((x) => x.start)).toFixed(1)}, first /healthz ${median(xs.map((x) => x.first)).toFixed(1)})`,
    );
  }
  console.log(`cold start B/A median ${median(coldRatios).toFixed(3)} (${spread(coldRatios)}) over ${COLD} pairs`);
} finally {
  for (const b of builds) rmSync(b.out, { recursive: true, force: true });
}
