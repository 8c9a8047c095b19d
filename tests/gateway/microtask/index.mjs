// The gateway's Worker with one addition: every answer says how many times anything
// called `queueMicrotask` so far, and whether the global is still the counter.
import { calls, restored } from "../../workerd/count.mjs"; // the package's workerd test uses it too
import { Gateway } from "../../../worker/build/gateway.mjs";

let gateway;

export default {
  async fetch(request, env, ctx) {
    gateway ??= new Gateway(env);
    const answer = await gateway.fetch(request, ctx);
    const headers = new Headers(answer.headers);
    headers.set("x-queue-microtask-calls", String(calls()));
    headers.set("x-queue-microtask-restored", String(restored()));
    return new Response(answer.body, { status: answer.status, headers });
  },
};
