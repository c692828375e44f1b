import * as zmq from "zeromq";
import { randomBytes } from "node:crypto";
import {
  Channel,
  DEFAULT_MAX_MESSAGE_BYTES,
  type CommPathCounts,
  type FromPeer,
  type Logger,
  type Part,
  type ToPeer,
} from "@ptcluster/protocol";
import { partBytes, type CommOutMsg, type CommTransport } from "./comm-transport.js";

export { SeenLinks } from "../shared/seen-links.js";

export interface DirectTransportOptions {
  key: Buffer;
  /** This engine's uuid, in the routing id of its DEALERs (one per peer). */
  uuid: string;
  /** Through the controller (the fallback path). */
  relay: (msg: CommOutMsg, parts: Part[]) => void;
  /** Asks the controller for engine `id`'s endpoint; the answer comes to `endpointOf`. */
  lookup: (id: number) => void;
  /** How long the lookup and the peer's hello answer may take before the relay is chosen (ms). */
  helloTimeoutMs?: number;
  maxMessageBytes?: number;
  /** This engine's CURVE keys (clusters with `--curve`): peers without a server key take the relay. */
  curve?: { publicKey: string; secretKey: string } | undefined;
  logger: Logger;
}

type Queued = [CommOutMsg, Part[]];
/** Told the peer executor's address (direct paths whose hello answered with one), or undefined. */
type RouteAnswer = (exec: string | undefined) => void;
type Path =
  | {
      kind: "pending";
      queue: Queued[];
      timer: NodeJS.Timeout;
      link?: Channel<FromPeer, ToPeer>;
      exec?: string | undefined;
      asked?: RouteAnswer[];
    }
  | { kind: "direct"; link: Channel<FromPeer, ToPeer>; lid: string; seq: number; exec: string | undefined }
  | { kind: "relay" };

/**
 * `engine.comm` over direct peer sockets, with the controller's relay as fallback. The path to a
 * peer is chosen once, on the first message to it: direct if the controller knows the peer's
 * endpoint and the peer answers a `peer_hello` within `helloTimeoutMs`, else the relay. Messages
 * sent meanwhile wait in order, so one peer's messages never take two paths at once and never
 * reorder. A direct link whose messages stay unacknowledged past the heartbeat window
 * (`checkLinks`) is dropped and what it did not acknowledge is sent again, in order, through the
 * relay, followed by every later message: each direct message carries its link's id and number
 * (`ps`), and the receiver (`SeenLinks`) drops a copy of one it already had.
 */
export class DirectTransport implements CommTransport {
  readonly counts: CommPathCounts = { direct: 0, relayed: 0 };
  bytesSent = 0;
  private readonly paths = new Map<number, Path>();
  private closed = false;

  constructor(private readonly o: DirectTransportOptions) {}

  send(msg: CommOutMsg, parts: Part[]): void {
    if (msg.type === "comm_abort") {
      // Each peer's share goes on that peer's path, behind the messages sent to it before.
      for (const id of msg.to) this.toPeer(id, { ...msg, to: [id] }, []);
    } else this.toPeer(msg.to, msg, parts);
  }

  /** The path to `id`, its choice begun (lookup, then hello) if it has none yet. */
  private pathTo(id: number): Path {
    let path = this.paths.get(id);
    if (!path) {
      const timer = setTimeout(() => this.settle(id, false), this.o.helloTimeoutMs ?? 1_000);
      path = { kind: "pending", queue: [], timer };
      this.paths.set(id, path);
      this.o.lookup(id);
    }
    return path;
  }

  /**
   * How this engine's executor may reach engine `id` itself: `answer` gets the peer executor's
   * address once the path is chosen, if it is direct and the peer's hello gave one (the executor
   * then dials it), else undefined (the executor sends through this transport).
   */
  route(id: number, answer: RouteAnswer): void {
    if (this.closed) return answer(undefined);
    const path = this.pathTo(id);
    if (path.kind === "pending") (path.asked ??= []).push(answer);
    else answer(path.kind === "direct" ? path.exec : undefined);
  }

  private toPeer(id: number, msg: CommOutMsg, parts: Part[]): void {
    if (!this.paths.has(id) && this.closed) return this.viaRelay(msg, parts);
    const path = this.pathTo(id);
    switch (path.kind) {
      case "pending":
        path.queue.push([msg, parts]);
        break;
      case "direct":
        this.counts.direct++;
        this.bytesSent += partBytes(parts);
        // A message resent here after its executor link failed keeps that link's number: the
        // receiving executor drops it if the link had delivered it.
        msg.ps ??= [path.lid, ++path.seq];
        path.link.send(msg, parts);
        break;
      case "relay":
        this.viaRelay(msg, parts);
        break;
    }
  }

  private viaRelay(msg: CommOutMsg, parts: Part[]): void {
    this.counts.relayed++;
    this.o.relay(msg, parts);
  }

  /** The controller's answer to a lookup: connect and say hello (no endpoint: the relay). */
  endpointOf(id: number, address: string | undefined, serverKey?: string): void {
    const path = this.paths.get(id);
    if (path?.kind !== "pending" || path.link) return;
    if (!address || (this.o.curve && !serverKey)) return this.settle(id, false);
    const curve =
      this.o.curve && serverKey
        ? { curveServerKey: serverKey, curvePublicKey: this.o.curve.publicKey, curveSecretKey: this.o.curve.secretKey }
        : {};
    const at = address.lastIndexOf(":");
    const host = address.slice(0, at);
    // One routing id per link: two links of this engine that reach one endpoint (a stale address
    // among them) must not take each other's place at that ROUTER.
    const routingId = `${this.o.uuid}:${id}`;
    const socket = new zmq.Dealer({
      routingId,
      linger: 0,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
      maxMessageSize: (this.o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES) + 65_536,
      ...(host.includes(":") ? { ipv6: true } : {}),
      ...curve,
    });
    socket.connect(`tcp://${host.includes(":") ? `[${host}]` : host}:${address.slice(at + 1)}`);
    const link = new Channel<FromPeer, ToPeer>({
      socket,
      clusterKey: this.o.key,
      sendLabel: "e2p",
      recvLabel: "p2e",
      selfId: Buffer.from(routingId),
      logger: this.o.logger,
      onMessage: ({ header }) => {
        if (header.type !== "peer_hello_reply" || this.paths.get(id) !== path) return;
        path.exec = header.ok ? header.exec : undefined;
        this.settle(id, header.ok);
      },
    }).start();
    path.link = link;
    link.send({ type: "peer_hello", to: id });
  }

  /** The path to `id` is chosen: what waited goes on it, in order. */
  private settle(id: number, direct: boolean): void {
    const path = this.paths.get(id);
    if (path?.kind !== "pending") return;
    clearTimeout(path.timer);
    if (direct && path.link)
      this.paths.set(id, {
        kind: "direct",
        link: path.link,
        lid: randomBytes(8).toString("hex"),
        seq: 0,
        exec: path.exec,
      });
    else {
      if (path.link) void path.link.close(0, { awaitAcks: false });
      this.paths.set(id, { kind: "relay" });
      this.o.logger.info({ peer: id }, "engine.comm: no direct link to this peer; its messages take the relay");
    }
    for (const [msg, parts] of path.queue) this.toPeer(id, msg, parts);
    for (const answer of path.asked ?? []) answer(direct ? path.exec : undefined);
  }

  /**
   * Engine `id` went away or came back (the controller's `peer_state`): forget its path, so a
   * returning engine (new process, new endpoint) is looked up again. What waited goes by relay,
   * which answers for a gone engine.
   */
  reset(id: number): void {
    const path = this.paths.get(id);
    if (!path) return;
    if (path.kind === "pending") this.settle(id, false);
    const now = this.paths.get(id);
    if (now?.kind === "direct") void now.link.close(0, { awaitAcks: false });
    this.paths.delete(id);
  }

  /**
   * Direct links with messages unacknowledged past `limitMs` are given up (called on the heartbeat
   * timer): what they did not acknowledge goes again through the relay, in order, and so does
   * everything after it.
   */
  checkLinks(limitMs: number): void {
    for (const [id, path] of this.paths) {
      if (path.kind !== "direct" || path.link.overdue(limitMs).length === 0) continue;
      const undelivered = path.link.forget();
      void path.link.close(0, { awaitAcks: false });
      this.paths.set(id, { kind: "relay" });
      this.o.logger.warn(
        { peer: id, undelivered: undelivered.length },
        "engine.comm: direct link lost; its unacknowledged messages and later ones take the relay",
      );
      for (const { header, parts } of undelivered)
        if (header.type === "comm" || header.type === "comm_abort") this.viaRelay(header, parts);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const links: Array<Promise<void>> = [];
    for (const [id, path] of this.paths) {
      if (path.kind === "pending") this.settle(id, false);
      const now = this.paths.get(id);
      if (now?.kind === "direct") links.push(now.link.close(100));
    }
    await Promise.all(links);
  }
}
