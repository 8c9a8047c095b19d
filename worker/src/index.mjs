// The gateway's Worker entry: nothing of substance lives here. The Gateway and the
// TokenBroker's logic (Rust, in the vcc-auth package built by `make pkg`) read their
// settings from env; nothing runs at module scope (workerd allows no I/O there).
import { DurableObject } from "cloudflare:workers";
import { Broker, Gateway } from "../build/gateway.mjs"; // scripts/build-pkg.sh --gateway (make gateway)

let gateway;

export default {
  fetch(request, env, ctx) {
    gateway ??= new Gateway(env);
    return gateway.fetch(request, ctx);
  },
};

/** One scope set's token for the whole fleet (binding TOKEN_BROKER): a thin shell over
 *  the wasm `Broker`, which keeps the token in this object's storage. RPC methods, each
 *  taking one message whose type is Rust's (src/core/gateway/broker.rs), read and
 *  written there: token(BrokerAsk) -> BrokerAnswer, and confirm(BrokerConfirm). */
export class TokenBroker extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.broker = new Broker(env, ctx);
    ctx.blockConcurrencyWhile(() => this.broker.restore());
  }

  token(ask) {
    return this.broker.token(ask);
  }

  confirm(confirm) {
    this.broker.confirm(confirm);
  }

  alarm() {
    return this.broker.alarm();
  }
}
