import * as zmq from "zeromq";
import {
  Channel,
  DEFAULT_MAX_MESSAGE_BYTES,
  zmqContext,
  type ClientTask,
  type DirectResultsMsg,
  type FromPeer,
  type Logger,
  type Part,
  type ToPeer,
} from "@ptcluster/protocol";

export type DirectLinkState = "dialing" | "ready" | "failed";

export interface DirectLinkOptions {
  engine: number;
  /** The engine's peer endpoint, `host:port`. */
  address: string;
  key: Buffer;
  /** This client's routing id (the one it has at the controller: the engine reports tasks under it). */
  routingId: string;
  maxMessageBytes?: number;
  /** How long the engine may take to answer the hello (ms). */
  dialMs: number;
  log: Logger;
  /** The engine answered: the link carries tasks from now on. */
  ready(): void;
  results(msg: DirectResultsMsg, parts: Part[]): void;
  /** The hello was refused or not answered in time. */
  failed(): void;
}

/**
 * One client's link to one engine's peer endpoint (a DEALER carrying the authenticated channel, as
 * an engine's link to a peer): `peer_hello` first, answered `ok` only by the engine meant, so a
 * stale address never takes tasks; then `dsubmit` out and `dresults` in. It keeps the tasks it
 * sent until their results come, for the controller to carry if the link fails.
 */
export class DirectLink {
  state: DirectLinkState = "dialing";
  readonly address: string;
  /** Sent here, no result yet: client task id → the task and its body. */
  readonly pending = new Map<number, { task: ClientTask; part: Part }>();
  readonly #channel: Channel<FromPeer, ToPeer>;
  readonly #timer: NodeJS.Timeout;
  readonly #engine: number;

  constructor(o: DirectLinkOptions) {
    this.address = o.address;
    this.#engine = o.engine;
    const at = o.address.lastIndexOf(":");
    const host = o.address.slice(0, at);
    const socket = new zmq.Dealer({
      routingId: o.routingId,
      linger: 0,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
      maxMessageSize: (o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES) + 65_536,
      ...(host.includes(":") ? { ipv6: true } : {}),
      context: zmqContext(),
    });
    socket.connect(`tcp://${host.includes(":") ? `[${host}]` : host}:${o.address.slice(at + 1)}`);
    this.#channel = new Channel<FromPeer, ToPeer>({
      socket,
      clusterKey: o.key,
      sendLabel: "e2p",
      recvLabel: "p2e",
      selfId: Buffer.from(o.routingId),
      logger: o.log,
      onMessage: ({ header, parts }) => {
        if (header.type === "dresults") {
          if (this.state === "ready") o.results(header, parts);
          return;
        }
        if (this.state !== "dialing" || header.type !== "peer_hello_reply") return;
        clearTimeout(this.#timer);
        this.state = header.ok ? "ready" : "failed";
        if (header.ok) o.ready();
        else o.failed();
      },
    }).start();
    this.#timer = setTimeout(() => {
      if (this.state !== "dialing") return;
      this.state = "failed";
      o.failed();
    }, o.dialMs);
    this.#timer.unref();
    this.#channel.send({ type: "peer_hello", to: o.engine });
  }

  send(tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      this.pending.set(t.id, { task: t, part: parts[i] as Part });
    }
    this.#channel.send({ type: "dsubmit", tasks, pf: parts.map((p) => p.frames.length) }, parts);
  }

  /** Whether the engine left messages unacknowledged longer than `ms` (the link is presumed broken). */
  overdue(ms: number): boolean {
    return this.#channel.overdue(ms).length > 0;
  }

  hold(on: boolean): void {
    this.#channel.hold(on);
  }

  /** Bytes sent and received on this link, frames included. */
  get bytes(): { sent: number; received: number } {
    const { bytesSent, bytesReceived } = this.#channel.stats;
    return { sent: bytesSent ?? 0, received: bytesReceived ?? 0 };
  }

  /** Asks the engine for an answer, so that a receive in flight returns (see `DirectLinks.hold`). */
  nudge(): void {
    if (this.state === "ready") this.#channel.send({ type: "peer_hello", to: this.#engine });
  }

  close(): Promise<void> {
    clearTimeout(this.#timer);
    this.state = "failed";
    return this.#channel.close(0, { awaitAcks: false });
  }
}
