// A real redis-server for the store's tests, as the emulator is for VCC: Debian's
// binary on a free loopback port, no persistence, stopped with the test. `stop()` and
// `start()` take it down and bring it back on the same port (empty: nothing is saved).
import { spawn } from "node:child_process";
import { connect, createServer } from "node:net";

const BIN = process.env.REDIS_SERVER ?? "redis-server";

/** A free loopback port (this file runs from a scratch project: no repo imports). */
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function answers(port) {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.write("PING\r\n");
    });
    s.once("data", (d) => {
      s.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
    s.once("error", () => resolve(false));
  });
}

export async function startRedis() {
  const port = await freePort();
  let proc = null;
  let output = "";
  const start = async () => {
    proc = spawn(BIN, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout.on("data", (d) => (output = (output + d).slice(-4000)));
    proc.stderr.on("data", (d) => (output = (output + d).slice(-4000)));
    const exited = new Promise((r) => proc.once("exit", r));
    for (let i = 0; i < 100; i++) {
      if (await answers(port)) return;
      if (proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill("SIGKILL");
    await exited;
    throw new Error(`redis-server did not start on ${port} (is it installed? make setup): ${output}`);
  };
  const stop = async () => {
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, start, stop };
}
