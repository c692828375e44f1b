import * as zmq from "zeromq";
import { z85Encode, type Logger } from "@ptcluster/protocol";

/** Where libzmq sends authentication requests (ZeroMQ RFC 27), in this process's context. */
const ZAP_ENDPOINT = "inproc://zeromq.zap.01";

/**
 * Answers ZAP requests for the controller's CURVE sockets: a connection is accepted only if the
 * peer's public key is in the allow-list. Counts what it refused.
 */
export class ZapHandler {
  private readonly socket = new zmq.Router({ linger: 0 });
  refused = 0;
  private done: Promise<void> | undefined;

  constructor(
    private readonly allowed: ReadonlySet<string>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.socket.bind(ZAP_ENDPOINT);
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        // ROUTER envelope: [peer, empty, version, requestId, domain, address, identity, mechanism, ...credentials]
        const [peer, empty, version, requestId, , address, , mechanism, key] = frames;
        if (!peer || !empty || !version || !requestId) continue;
        let ok = false;
        if (mechanism?.toString() === "CURVE" && key?.length === 32) ok = this.allowed.has(z85Encode(key));
        if (!ok) {
          this.refused++;
          this.log.warn(
            { address: address?.toString(), mechanism: mechanism?.toString() },
            "connection refused: public key not allowed",
          );
        }
        await this.socket.send([
          peer,
          empty,
          version,
          requestId,
          ok ? "200" : "400",
          ok ? "OK" : "public key not allowed",
          "",
          "",
        ]);
      }
    } catch {
      /* socket closed */
    }
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.done;
  }
}
