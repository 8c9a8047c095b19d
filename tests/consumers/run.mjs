// The npm package as its users build it. `npm pack` of pkg/, then for each setup an app
// under apps/, written as that tool's own guide says (no vcc-auth-specific settings; the
// check they share is in shared/, copied into each app where its guide puts the entry),
// installed with pinned tool versions, built and run; each checks a real outcome: a
// token from the emulator, a 200 from `client.fetch`, and a bad secret rejected as an
// `instanceof VccError` with code `invalid_client`. Browser apps run in Chromium with no
// console error; the serverless bundle runs from a folder holding only its output;
// TypeScript setups type-check.
//
// Installs are cached (VCC_CONSUMER_CACHE, default ~/.cache/vcc-auth-consumers), one
// folder per app and per content of its package.json, so a warm run installs nothing;
// the package under test is unpacked into each app's node_modules every run (it has no
// dependencies, so that is what npm would do). Apps build and run two at a time.
//
//   scripts/with-emulator.sh node tests/consumers/run.mjs        (make test-consumers)
//   CONSUMERS=vite7,next ...   only the apps named (folders of apps/)
//   VCC_CONSUMER_PKG=<dir>     another build of the package (an older one, say)
//   VCC_CONSUMER_ERROR_BY_NAME=1  the apps tell a VccError by its name, not `instanceof`
//                              (for a package older than the exported class)
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { homedir, tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { launchChromium } from "../chromium.mjs";
import { EMU, newClient } from "../emulator.mjs";

const ROOT = new URL("../../", import.meta.url).pathname;
const APPS = join(ROOT, "tests/consumers/apps");
/** Sources several apps share, copied into each (app → [file in shared/, path in the app]). */
const SHARED = {
  "esbuild-browser": [["browser.js", "main.js"]],
  rollup: [["browser.js", "main.js"]],
  webpack: [["browser.js", "src/index.js"]],
  vite6: [["browser.js", "main.js"]],
  vite7: [["browser.js", "main.js"]],
  node: [["node.mjs", "app.mjs"]],
  bun: [["node.mjs", "app.mjs"]],
  "esbuild-node": [["node.mjs", "app.mjs"]],
  "ts-bundler": [["check.ts", "check.ts"]],
  "ts-node20": [["check.ts", "check.ts"]],
};
if (!EMU) throw new Error("VCC_EMULATOR_URL must be set (run under scripts/with-emulator.sh)");
const CACHE = process.env.VCC_CONSUMER_CACHE ?? join(homedir(), ".cache", "vcc-auth-consumers");
const PKG = process.env.VCC_CONSUMER_PKG ?? join(ROOT, "pkg");
const ONLY = process.env.CONSUMERS?.split(",").filter(Boolean);

const bin = (tool) => join("node_modules/.bin", tool);
const npm = (...args) => ["npm", ...args];
/** Every setup: its app folder, what builds it (once per app), and how it is checked. */
const SETUPS = [
  { name: "Node, ESM", app: "node", run: ["node", "app.mjs"] },
  { name: "Node, CommonJS (require)", app: "node", run: ["node", "app.cjs"] },
  {
    name: "esbuild --bundle --platform=node, run from its output folder alone",
    app: "esbuild-node",
    build: npm("run", "build"),
    alone: "out",
    run: ["node", "app.mjs"],
  },
  { name: "esbuild for the browser, esm", app: "esbuild-browser", build: npm("run", "build"), page: "esm.html" },
  { name: "esbuild for the browser, iife", app: "esbuild-browser", page: "iife.html" },
  { name: "Rollup (with node-resolve), browser", app: "rollup", build: npm("run", "build"), page: "index.html" },
  { name: "webpack 5, browser", app: "webpack", build: npm("run", "build"), page: "index.html" },
  { name: "Vite 7 build, browser", app: "vite7", build: npm("run", "build"), root: "dist", page: "index.html" },
  { name: "Vite 7 dev server, browser", app: "vite7", dev: [bin("vite"), "--host", "127.0.0.1", "--strictPort", "--port"] },
  { name: "Vite 6 build, browser", app: "vite6", build: npm("run", "build"), root: "dist", page: "index.html" },
  { name: "Vite 6 dev server, browser", app: "vite6", dev: [bin("vite"), "--host", "127.0.0.1", "--strictPort", "--port"] },
  {
    name: "Next.js 16 App Router route handler (next build, next start)",
    app: "next",
    build: npm("run", "build"),
    serve: [bin("next"), "start", "-H", "127.0.0.1", "-p"],
    get: "/api/token",
  },
  { name: "Bun", app: "bun", run: [bin("bun"), "app.mjs"] },
  {
    name: "Deno (--allow-net only, and the env it reads)",
    app: "deno",
    run: [bin("deno"), "run", "--allow-net", "--allow-env=EMU,CLIENT_ID,CLIENT_SECRET", "app.mjs"],
  },
  {
    name: "TypeScript, moduleResolution bundler, lib es2022 + dom",
    app: "ts-bundler",
    run: [bin("tsc"), "-p", "."],
    typecheck: true,
  },
  {
    name: "TypeScript, @tsconfig/node20 (nodenext, lib es2023, no DOM)",
    app: "ts-node20",
    run: [bin("tsc"), "-p", "."],
    typecheck: true,
  },
].filter((s) => !ONLY || ONLY.includes(s.app));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a command in `cwd`; resolves with its output, rejects (with it) on failure. */
function run(cmd, cwd, { env = {}, timeout = 240_000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd[0], cmd.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const take = (d) => (out = (out + d).slice(-20_000));
    p.stdout.on("data", take);
    p.stderr.on("data", take);
    const timer = setTimeout(() => p.kill("SIGKILL"), timeout);
    p.on("error", (e) => reject(new Error(`${cmd.join(" ")}: ${e.message}`)));
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd.join(" ")} (in ${cwd}) exited ${code ?? signal}:\n${out}`));
    });
  });
}

/** A long-running server command; resolves once `url` answers. */
async function start(cmd, cwd, url, env = {}) {
  const p = spawn(cmd[0], cmd.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  for (const s of [p.stdout, p.stderr]) s.on("data", (d) => (out = (out + d).slice(-20_000)));
  const stop = () => {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {}
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null) break;
    try {
      await fetch(url, { signal: AbortSignal.timeout(2000) });
      return { stop, output: () => out };
    } catch {}
    await sleep(250);
  }
  stop();
  throw new Error(`${cmd.join(" ")} did not start:\n${out}`);
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
};
/** A static server of `dir`, as any web server would serve a built app. */
async function serveStatic(dir) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const file = join(dir, path.endsWith("/") ? `${path}index.html` : path);
    if (!file.startsWith(dir)) return res.writeHead(403).end();
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${server.address().port}`, stop: () => server.close() };
}

/** The app's folder in the cache, installed; its sources fresh; the package unpacked. */
async function prepare(app, tarball) {
  const src = join(APPS, app);
  const hash = createHash("sha256")
    .update(readFileSync(join(src, "package.json")))
    .update(process.version)
    .digest("hex")
    .slice(0, 12);
  const dir = join(CACHE, `${app}-${hash}`);
  const installed = join(dir, "node_modules/.vcc-consumer-installed");
  const t0 = Date.now();
  let installedNow = false;
  if (!existsSync(installed)) {
    rmSync(dir, { recursive: true, force: true });
    cpSync(src, dir, { recursive: true });
    await run(npm("install", "--no-audit", "--no-fund", "--loglevel=error"), dir);
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    writeFileSync(installed, "");
    installedNow = true;
  }
  cpSync(src, dir, { recursive: true, force: true });
  for (const [file, to] of SHARED[app] ?? []) cpSync(join(ROOT, "tests/consumers/shared", file), join(dir, to));
  if (process.env.VCC_CONSUMER_ERROR_BY_NAME === "1") byName(dir);
  for (const d of ["dist", "out", ".next", "node_modules/.vite", "node_modules/.vite-temp", "node_modules/vcc-auth"])
    rmSync(join(dir, d), { recursive: true, force: true });
  mkdirSync(join(dir, "node_modules/vcc-auth"), { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", join(dir, "node_modules/vcc-auth"), "--strip-components=1"]);
  return { dir, installSeconds: installedNow ? (Date.now() - t0) / 1000 : 0 };
}

/** Rewrites an app's sources to tell a VccError by its name (see the header). */
function byName(dir) {
  const walk = (d) =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.name === "node_modules" ? [] : e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
    );
  for (const f of walk(dir).filter((f) => /\.(m?js|cjs|ts)$/.test(f) && !f.includes(".config."))) {
    const text = readFileSync(f, "utf8");
    writeFileSync(
      f,
      text.replace(/\{ VccClient, VccError(,[^}]*)? \}/, "{ VccClient$1 }").replaceAll("e instanceof VccError", 'e?.name === "VccError"'),
    );
  }
}

/** The outcome every app reports, checked. */
function check(result) {
  if (!result || typeof result !== "object") throw new Error(`no result: ${JSON.stringify(result)}`);
  if (result.failed) throw new Error(`the app failed: ${result.failed}`);
  const problems = [];
  if (!(result.tokenLength > 20)) problems.push(`token length ${result.tokenLength}`);
  if (result.status !== 200) problems.push(`client.fetch answered ${result.status}`);
  if (result.error !== "invalid_client") problems.push(`a bad secret gave ${JSON.stringify(result.error)}`);
  if (problems.length) throw new Error(problems.join("; "));
}

function resultLine(out) {
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`no RESULT line in:\n${out}`);
  return JSON.parse(line.slice(7));
}

/** Opens `url` in Chromium and waits for the page's `window.result`; any console error
 *  or warning, or uncaught page error, fails it, but for the one the check itself causes:
 *  Chromium logs the token endpoint's 400 to the bad secret as a failed resource. */
async function inBrowser(browser, url) {
  const page = await browser.newPage();
  const complaints = [];
  page.on("console", (m) => {
    const expected = m.text().startsWith("Failed to load resource") && m.location().url?.startsWith(`${EMU}/Auth/connect/token`);
    if ((m.type() === "error" || m.type() === "warning") && !expected) complaints.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => complaints.push(`page error: ${e.message}`));
  try {
    await page.goto(url);
    let result;
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && result === undefined) {
      result = await page.evaluate(() => window.result).catch(() => undefined);
      if (result === undefined) await sleep(200);
    }
    if (complaints.length) throw new Error(complaints.join("\n"));
    if (result === undefined) throw new Error(`${url} set no window.result in 45 s`);
    return result;
  } finally {
    await page.close();
  }
}

async function runSetup(s, dir, browser, env) {
  if (s.run) {
    let cwd = dir;
    if (s.alone) {
      // Only the output, somewhere with no node_modules anywhere above it.
      cwd = mkdtempSync(join(tmpdir(), "consumer-alone-"));
      cpSync(join(dir, s.alone), cwd, { recursive: true });
    }
    try {
      const out = await run(s.run, cwd, { env });
      if (s.typecheck) return "type-checks";
      check(resultLine(out));
    } finally {
      if (s.alone) rmSync(cwd, { recursive: true, force: true });
    }
  } else if (s.page) {
    const server = await serveStatic(join(dir, s.root ?? ""));
    try {
      check(await inBrowser(browser, `${server.origin}/${s.page}?${env.query}`));
    } finally {
      server.stop();
    }
  } else if (s.dev) {
    const port = await freePort();
    const dev = await start([...s.dev, String(port)], dir, `http://127.0.0.1:${port}/`);
    try {
      check(await inBrowser(browser, `http://127.0.0.1:${port}/?${env.query}`));
    } catch (e) {
      throw new Error(`${e.message}\n--- the dev server said:\n${dev.output()}`);
    } finally {
      dev.stop();
    }
  } else if (s.serve) {
    const port = await freePort();
    const server = await start([...s.serve, String(port)], dir, `http://127.0.0.1:${port}${s.get}`, env);
    try {
      const r = await fetch(`http://127.0.0.1:${port}${s.get}`);
      check(await r.json());
    } catch (e) {
      throw new Error(`${e.message}\n--- the server said:\n${server.output()}`);
    } finally {
      server.stop();
    }
  }
  return "ok";
}

const t0 = Date.now();
const work = mkdtempSync(join(tmpdir(), "consumers-"));
const tarball = join(
  work,
  execFileSync("npm", ["pack", "--silent", "--pack-destination", work, PKG], { encoding: "utf8" }).trim().split("\n").at(-1),
);
const { id, secret } = await newClient("consumer");
const env = {
  EMU,
  CLIENT_ID: id,
  CLIENT_SECRET: secret,
  NEXT_TELEMETRY_DISABLED: "1",
  query: new URLSearchParams({ emu: EMU, id, secret }).toString(),
};
const browser = await launchChromium();

// One task per app: prepare, build once, then each of its setups in turn.
const apps = [...new Set(SETUPS.map((s) => s.app))];
const results = [];
async function doApp(app) {
  const setups = SETUPS.filter((s) => s.app === app);
  const started = Date.now();
  let dir;
  try {
    const p = await prepare(app, tarball);
    dir = p.dir;
    if (p.installSeconds) console.error(`  ${app}: installed in ${p.installSeconds.toFixed(0)} s`);
    for (const b of new Set(setups.filter((s) => s.build).map((s) => s.build.join(" ")))) await run(b.split(" "), dir, { env });
  } catch (e) {
    for (const s of setups) results.push({ name: s.name, ok: false, detail: e.message });
    return;
  }
  for (const s of setups) {
    const t = Date.now();
    try {
      const how = await runSetup(s, dir, browser, env);
      results.push({ name: s.name, ok: true, detail: `${how}, ${((Date.now() - t) / 1000).toFixed(1)} s` });
    } catch (e) {
      results.push({ name: s.name, ok: false, detail: e.message });
    }
  }
  console.error(`  ${app}: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
const queue = [...apps];
await Promise.all(
  [0, 1].map(async () => {
    for (let app = queue.shift(); app; app = queue.shift()) await doApp(app);
  }),
);
await browser.close();
rmSync(work, { recursive: true, force: true });

const order = SETUPS.map((s) => s.name);
results.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
for (const r of results) console.log(`${r.ok ? "✔" : "✖"} ${r.name}: ${r.ok ? r.detail : "FAILED"}`);
const failed = results.filter((r) => !r.ok);
for (const r of failed) console.log(`\n✖ ${r.name}\n${r.detail}`);
console.log(
  `\nconsumers: ${results.length - failed.length} of ${results.length} setups passed in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
process.exit(failed.length ? 1 : 0);
