// The gateway's Worker entry: nothing of substance lives here. The Gateway (Rust, in
// the vcc-auth package built by `make pkg`) reads its settings from env once per
// isolate; nothing runs at module scope (workerd allows no I/O there).
import { Gateway } from "../build/workerd.mjs"; // scripts/build-pkg.sh --gateway (make gateway)

let gateway;

export default {
  fetch(request, env, ctx) {
    gateway ??= new Gateway(env);
    return gateway.fetch(request, ctx);
  },
};
