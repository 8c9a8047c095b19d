// `make demo`: the emulator (or real VCC), the gateway under wrangler dev and the demo
// page, until Ctrl-C. Settings (all optional):
//   DEMO_PORT=8787 DEMO_GATEWAY_PORT=8788 DEMO_EMULATOR_PORT=4010   preferred ports (a
//     free one if taken): the page (behind the sign-in stand-in), the gateway itself,
//     the emulator. With real VCC there is no sign-in, and the gateway takes DEMO_PORT.
//   DEMO_GATEWAY_LIFETIME=60 DEMO_DIRECT_LIFETIME=20   emulator token lifetimes, s
//   VCC_REGION VCC_CLIENT_ID VCC_CLIENT_SECRET (env or worker/.dev.vars)   real VCC
//   DEMO_EMULATOR=1   the emulator even when real credentials are configured
//   DEMO_VERBOSE=1    also show /healthz polls and wrangler's own output
import { chooseVcc, startStack } from "./demo-stack.mjs";

const num = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`demo: ${name} must be a whole number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
};
const verbose = process.env.DEMO_VERBOSE === "1";
const say = (text) => process.stdout.write(`${text}\n`);

let vcc;
try {
  vcc = chooseVcc();
} catch (e) {
  console.error(`demo: ${e.message}`);
  process.exit(2);
}
say(
  vcc.real
    ? `demo: real VCC (credentials from ${vcc.from}; region ${vcc.vars.VCC_REGION ?? "emea (worker/wrangler.toml)"}); no emulator, so the page's direct mode is off`
    : `demo: VCC emulator (${vcc.why})`,
);
say("demo: starting the gateway (wrangler dev, workerd); the first start takes a few seconds...");

// The gateway's JSON lines are the interesting output; wrangler's banner, the page's
// /healthz polls and workerd's offline Request.cf lookup ("ENOTFOUND
// workers.cloudflare.com", harmless) are noise unless asked for.
const onLine = (name, line) => {
  if (!line.trim()) return;
  const json = line.indexOf('{"method"');
  if (name === "gateway" && json >= 0) {
    if (verbose || !line.includes('"route":"/healthz"')) say(`[gateway] ${line.slice(json)}`);
  } else if (verbose || (/\b(error|panic|failed)\b/i.test(line) && !line.includes("workers.cloudflare.com"))) {
    say(`[${name}] ${line}`);
  }
};

const lifetimes = { gateway: num("DEMO_GATEWAY_LIFETIME", 60), direct: num("DEMO_DIRECT_LIFETIME", 20) };
let stack;
try {
  stack = await startStack({
    vcc,
    onLine,
    pagePort: num("DEMO_PORT", 8787),
    gatewayPort: vcc.real ? num("DEMO_PORT", 8787) : num("DEMO_GATEWAY_PORT", 8788),
    emulatorPort: num("DEMO_EMULATOR_PORT", 4010),
    gatewayLifetime: lifetimes.gateway,
    directLifetime: lifetimes.direct,
  });
} catch (e) {
  console.error(`demo: could not start: ${e.message}`);
  process.exit(1);
}

const page =
  stack.emulatorUrl && !stack.emulatorUrl.endsWith(":4010")
    ? `${stack.pageUrl}/?emulator=${encodeURIComponent(stack.emulatorUrl)}`
    : `${stack.pageUrl}/`;
say("");
say("  vcc-auth demo is running");
say(`  Page         ${page}`);
if (stack.pageUrl !== stack.gatewayUrl) {
  say("               (sign in as a demo person: a stand-in for Cloudflare Access, the emulator signing;");
  say("               or go on without signing in and paste the key below)");
  say(`  Gateway      ${stack.gatewayUrl}  (itself, for scripts with the key)`);
}
say(`  Gateway key  ${stack.key}`);
say("               (made for this run, with gateway:admin; kept in the tab's sessionStorage only)");
if (stack.direct) {
  say(`  Direct mode  client id ${stack.direct.clientId}, secret ${stack.direct.secret}`);
  say("               (an emulator-only credential for this run; development only)");
  say(`  Emulator     ${stack.emulatorUrl}  (token lifetimes: gateway ${lifetimes.gateway} s, direct mode ${lifetimes.direct} s)`);
}
say(`  Health       ${stack.gatewayUrl}/healthz`);
say("  Press Ctrl-C to stop.");
say("");

let stopping = false;
async function shutdown(code, why) {
  if (stopping) return;
  stopping = true;
  say(`\ndemo: ${why}; stopping the gateway${stack.direct ? " and the emulator" : ""}...`);
  await stack.stop();
  say("demo: stopped.");
  process.exit(code);
}
process.on("SIGINT", () => shutdown(0, "Ctrl-C"));
process.on("SIGTERM", () => shutdown(0, "SIGTERM"));
process.on("SIGHUP", () => shutdown(0, "terminal closed"));
for (const p of stack.procs) {
  p.done.then((how) => {
    if (stopping) return;
    console.error(`demo: the ${p.name} exited unexpectedly (${JSON.stringify(how)}); its last output:\n${p.output.slice(-3000)}`);
    shutdown(1, `the ${p.name} stopped`);
  });
}
