import { randomBytes } from "node:crypto";
import {
  Channel,
  silentLogger,
  type CommAbortMsg,
  type CommMsg,
  type FromPeer,
  type Part,
  type PeerStateMsg,
  type ToPeer,
} from "@ptcluster/protocol";
import type * as zmq from "zeromq";
import { FrameDealer, FrameRouter } from "../peer-net/frame-socket.js";
import { SeenLinks } from "../shared/seen-links.js";
import type { CommSetup } from "./protocol.js";

type Out = CommMsg | CommAbortMsg;

/** What the executor's peer links need from the thread around them. */
export interface PeerLinksDeps {
  /** This engine's id now. */
  selfId(): number;
  /**
   * To the supervisor, which sends it on its own path (its peer socket, or the controller's
   * relay); with `relay`, through the controller whatever its path.
   */
  viaSupervisor(msg: Out, parts: Part[], relay?: boolean): void;
  /** Asks the supervisor how to reach engine `id` (the answer comes to `route`). */
  ask(id: number): void;
  /** The executor endpoint is bound: peers' executors can dial `address`. */
  listening(address: string): void;
  /**
   * A message for this engine, once (copies resent by another path are dropped here); `own`: it
   * came to this executor's endpoint (the supervisor has not seen it).
   */
  deliver(msg: CommMsg | CommAbortMsg, parts: Part[], own: boolean): void;
}

type Queued = [Out, Part[]];
type Route =
  | { kind: "asking"; queue: Queued[] }
  | { kind: "hello"; queue: Queued[]; link: Link; timer: NodeJS.Timeout }
  | { kind: "link"; link: Link; lid: string; seq: number }
  | { kind: "supervisor"; relay: boolean };

interface Link {
  channel: Channel<FromPeer, ToPeer>;
  socket: FrameDealer;
}

/** How long a peer executor may take to answer the hello of a new link before the supervisor's path is taken (ms). */
const HELLO_MS = 1_000;

/**
 * `engine.comm` between executor threads without either supervisor on the way: this executor
 * binds its own endpoint (plain TCP carrying the project's authenticated `Channel`: cluster-key
 * signatures, acknowledgements, retransmission; labels `x2p`/`p2x`) and dials peers' executors.
 *
 * The supervisor keeps the decisions: on the first message to a peer the executor asks it
 * (`ask`); it answers with the peer executor's address, learnt from the `peer_hello` of its own
 * direct link, or with none (no direct link, CURVE, the relay forced): then, and whenever an
 * executor link fails or its peer is reset, messages to that peer go through the supervisor, in
 * order, for the rest of this executor's life. What a failed link did not see acknowledged is
 * sent again that way first; each link message carries its link id and number (`ps`) and
 * `deliver` is called once per message whatever the paths it took (`SeenLinks`).
 */
export class PeerLinks {
  private readonly routes = new Map<number, Route>();
  private readonly seen = new SeenLinks();
  private setup: CommSetup | undefined;
  private endpoint: Channel<ToPeer, FromPeer> | undefined;
  private counts: Int32Array | undefined;
  private checker: NodeJS.Timeout | undefined;
  private readonly uid = randomBytes(6).toString("hex");

  constructor(private readonly d: PeerLinksDeps) {}

  /** The supervisor's word at start: executor links are on, with these keys and limits. */
  async start(setup: CommSetup): Promise<void> {
    if (this.setup) return;
    this.setup = setup;
    this.counts = new Int32Array(setup.counts);
    const key = Buffer.from(setup.key);
    const router = new FrameRouter(setup.maxBytes + 65_536);
    let port: number;
    try {
      port = await router.listen(setup.ip);
    } catch {
      return; // No endpoint: peers reach this executor through its supervisor, as before.
    }
    router.unref();
    this.endpoint = new Channel<ToPeer, FromPeer>({
      socket: router as unknown as zmq.Socket,
      clusterKey: key,
      sendLabel: "p2x",
      recvLabel: "x2p",
      router: true,
      // The executor has nowhere to log (its output is its tasks'): fault injection, which must
      // announce itself, stays on the supervisors' channels, and refusals are only counted.
      logger: silentLogger(),
      faults: null,
      onMessage: ({ from, header, parts }) => {
        if (!from) return;
        const me = this.d.selfId();
        switch (header.type) {
          case "peer_hello":
            this.endpoint?.send({ type: "peer_hello_reply", ok: me >= 0 && header.to === me }, undefined, from);
            break;
          case "comm":
            if (header.to === me) this.incoming(header, parts, true);
            break;
          case "comm_abort":
            if (header.to.includes(me)) this.incoming({ ...header, to: [me] }, [], true);
            break;
        }
      },
    }).start();
    const limit = setup.linkLimitMs;
    this.checker = setInterval(() => this.checkLinks(limit), Math.max(50, Math.floor(limit / 6))).unref();
    this.d.listening(`${setup.ip.includes(":") ? `[${setup.ip}]` : setup.ip}:${port}`);
  }

  /** A message from any path (this endpoint, or the supervisor's): delivered unless a copy already was. */
  incoming(msg: CommMsg | CommAbortMsg, parts: Part[], own = false): void {
    if (this.seen.fresh(msg)) this.d.deliver(msg, parts, own);
  }

  send(msg: Out, parts: Part[]): void {
    if (msg.type === "comm_abort") {
      // Each member's share goes on that member's route, behind the messages sent to it before.
      for (const id of msg.to) this.toPeer(id, { ...msg, to: [id] }, []);
    } else this.toPeer(msg.to, msg, parts);
  }

  private toPeer(id: number, msg: Out, parts: Part[]): void {
    let route = this.routes.get(id);
    if (!route) {
      if (!this.endpoint) return this.d.viaSupervisor(msg, parts);
      route = { kind: "asking", queue: [] };
      this.routes.set(id, route);
      this.d.ask(id);
    }
    switch (route.kind) {
      case "asking":
      case "hello":
        // Kept until the route is known: the value's bytes may be views the caller reuses.
        route.queue.push([msg, ownParts(parts)]);
        break;
      case "link":
        msg.ps = [route.lid, ++route.seq];
        if (this.counts) Atomics.add(this.counts, 0, 1);
        route.link.channel.send(msg, ownParts(parts));
        break;
      case "supervisor":
        this.d.viaSupervisor(msg, parts, route.relay);
        break;
    }
  }

  /** The supervisor's answer to `ask`: the peer executor's address, or none (its own path). */
  route(id: number, address: string | undefined): void {
    const route = this.routes.get(id);
    if (route?.kind !== "asking") return;
    const setup = this.setup;
    const at = address?.lastIndexOf(":") ?? -1;
    if (!setup || !address || at < 0) return this.settle(id, undefined);
    const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const routingId = Buffer.from(`${this.uid}:${id}`);
    const socket = new FrameDealer(host, Number(address.slice(at + 1)), routingId, setup.maxBytes + 65_536);
    const link: Link = {
      socket,
      channel: new Channel<FromPeer, ToPeer>({
        socket: socket as unknown as zmq.Socket,
        clusterKey: Buffer.from(setup.key),
        sendLabel: "x2p",
        recvLabel: "p2x",
        selfId: routingId,
        logger: silentLogger(),
        faults: null,
        onMessage: ({ header }) => {
          const now = this.routes.get(id);
          if (header.type === "peer_hello_reply" && now?.kind === "hello" && now.link === link)
            this.settle(id, header.ok ? link : undefined);
        },
      }).start(),
    };
    const timer = setTimeout(() => this.settle(id, undefined), HELLO_MS);
    this.routes.set(id, { kind: "hello", queue: route.queue, link, timer });
    link.channel.send({ type: "peer_hello", to: id });
  }

  /** The route to `id` is chosen: what waited goes on it, in order. */
  private settle(id: number, link: Link | undefined): void {
    const route = this.routes.get(id);
    if (route?.kind !== "asking" && route?.kind !== "hello") return;
    if (route.kind === "hello") {
      clearTimeout(route.timer);
      if (route.link !== link) close(route.link);
    }
    this.routes.set(
      id,
      link ? { kind: "link", link, lid: randomBytes(8).toString("hex"), seq: 0 } : { kind: "supervisor", relay: false },
    );
    for (const [msg, parts] of route.queue) this.toPeer(id, msg, parts);
  }

  /** Engine `id` went away or came back: its link (if any) is given up; the supervisor's path answers for it. */
  peerState(msg: PeerStateMsg): void {
    this.fail(msg.id, false);
  }

  /**
   * Links whose messages stay unacknowledged past `limitMs` are given up for the relay (the
   * network between the engines failed: their supervisors' direct path would fail too); links
   * whose peer executor refuses the connection (it was replaced: its endpoint is gone) for the
   * supervisor's path.
   */
  private checkLinks(limitMs: number): void {
    for (const [id, route] of this.routes) {
      if (route.kind !== "link") continue;
      if (route.link.channel.overdue(limitMs).length > 0) this.fail(id, true);
      else if (route.link.socket.failures >= 3) this.fail(id, false);
    }
  }

  /** Messages to `id` go through the supervisor from now on, starting with what the link did not see acknowledged. */
  private fail(id: number, relay: boolean): void {
    const route = this.routes.get(id);
    if (!route || route.kind === "supervisor") return;
    if (route.kind !== "link") {
      if (route.kind === "asking") return; // the answer will come; a reset changes nothing yet
      return this.settle(id, undefined);
    }
    const undelivered = route.link.channel.forget();
    close(route.link);
    this.routes.set(id, { kind: "supervisor", relay });
    for (const { header, parts } of undelivered)
      if (header.type === "comm" || header.type === "comm_abort") this.d.viaSupervisor(header, parts, relay);
  }
}

function close(link: Link): void {
  void link.channel.close(0, { awaitAcks: false });
}

/**
 * Bytes this module may keep (queued, or unacknowledged on a link): the value codec's body is a
 * view of its reused output buffer and a typed array's frame a view of the caller's array.
 */
function ownParts(parts: Part[]): Part[] {
  return parts.map((p) => ({
    body: Buffer.from(p.body),
    frames: p.frames.map((f) => {
      const copy = Buffer.allocUnsafeSlow(f.byteLength);
      copy.set(f);
      return copy;
    }),
  }));
}
