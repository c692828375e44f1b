import { randomBytes } from "node:crypto";
import type { CommAbortMsg, CommMsg, Part, PeerStateMsg } from "@ptcluster/protocol";
import { LinkDialer, LinkListener, type LinkMeter } from "../peer-net/link-socket.js";
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
  | { kind: "hello"; queue: Queued[]; link: LinkDialer; timer: NodeJS.Timeout }
  | { kind: "link"; link: LinkDialer }
  | { kind: "supervisor"; relay: boolean };

/** How long a peer executor may take to answer the hello of a new link before the supervisor's path is taken (ms). */
const HELLO_MS = 1_000;

/**
 * `engine.comm` between executor threads without either supervisor on the way: this executor
 * binds its own endpoint and dials peers' executors (plain TCP, `peer-net/link-socket.ts`: every
 * message signed with a key of the connection's own derived from the cluster key, numbered,
 * acknowledged; docs/comm-transport.md).
 *
 * The supervisor keeps the decisions: on the first message to a peer the executor asks it
 * (`ask`); it answers with the peer executor's address, learnt from the `peer_hello` of its own
 * direct link, or with none (no direct link, CURVE, the relay forced): then, and whenever an
 * executor link fails or its peer is reset, messages to that peer go through the supervisor, in
 * order, for the rest of this executor's life. What a failed link did not see acknowledged is
 * sent again that way first; each such message carries its link id and number (`ps`) and
 * `deliver` is called once per message whatever the paths it took (`SeenLinks`).
 */
export class PeerLinks {
  private readonly routes = new Map<number, Route>();
  private readonly seen = new SeenLinks();
  private setup: CommSetup | undefined;
  private endpoint: LinkListener | undefined;
  private counts: Int32Array | undefined;
  /** Bytes written and read on this executor's links, and their shared copies (`CommSetup.counts`). */
  private bytes = { sent: 0, received: 0, shared: undefined as BigInt64Array | undefined };
  private readonly meter: LinkMeter = {
    sent: (n) => {
      const b = this.bytes;
      b.sent += n;
      if (b.shared) Atomics.store(b.shared, 0, BigInt(b.sent));
    },
    received: (n) => {
      const b = this.bytes;
      b.received += n;
      if (b.shared) Atomics.store(b.shared, 1, BigInt(b.received));
    },
  };
  private checker: NodeJS.Timeout | undefined;

  constructor(private readonly d: PeerLinksDeps) {}

  /** The supervisor's word at start: executor links are on, with these keys and limits. */
  async start(setup: CommSetup): Promise<void> {
    if (this.setup) return;
    this.setup = setup;
    this.counts = new Int32Array(setup.counts, 0, 1);
    this.bytes.shared = new BigInt64Array(setup.counts, 8, 2);
    const endpoint = new LinkListener(
      Buffer.from(setup.key),
      setup.maxBytes + 65_536,
      {
        hello: (to) => {
          const me = this.d.selfId();
          return me >= 0 && to === me;
        },
        message: ({ msg, parts }, lid, seq) => {
          const me = this.d.selfId();
          msg.ps = [lid, seq];
          if (msg.type === "comm") {
            if (msg.to === me) this.incoming(msg, parts, true);
          } else if (msg.to.includes(me)) this.incoming({ ...msg, to: [me] }, [], true);
        },
      },
      undefined,
      this.meter,
    );
    let port: number;
    try {
      port = await endpoint.listen(setup.ip);
    } catch {
      return; // No endpoint: peers reach this executor through its supervisor, as before.
    }
    this.endpoint = endpoint;
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
        route.link.send(msg, parts); // copies the bytes into its message
        // Counted once written (its bytes too): a report with this message has its bytes.
        if (this.counts) Atomics.add(this.counts, 0, 1);
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
    const port = Number(address.slice(at + 1));
    const link: LinkDialer = new LinkDialer(
      host,
      port,
      Buffer.from(setup.key),
      id,
      randomBytes(8),
      setup.maxBytes + 65_536,
      {
        welcome: (ok) => {
          const now = this.routes.get(id);
          if (now?.kind === "hello" && now.link === link) this.settle(id, ok ? link : undefined);
        },
        // The peer executor's endpoint is gone (it was replaced) or the connection broke: the
        // supervisor's path, which falls back to the relay itself where the network failed.
        closed: () => this.drop(id, link, false),
      },
      this.meter,
    );
    const timer = setTimeout(() => this.settle(id, undefined), HELLO_MS);
    this.routes.set(id, { kind: "hello", queue: route.queue, link, timer });
  }

  /** The route to `id` is chosen: what waited goes on it, in order. */
  private settle(id: number, link: LinkDialer | undefined): void {
    const route = this.routes.get(id);
    if (route?.kind !== "asking" && route?.kind !== "hello") return;
    this.routes.set(id, link ? { kind: "link", link } : { kind: "supervisor", relay: false });
    if (route.kind === "hello") {
      clearTimeout(route.timer);
      if (route.link !== link) route.link.close();
    }
    for (const [msg, parts] of route.queue) this.toPeer(id, msg, parts);
  }

  /** Engine `id` went away or came back: its link (if any) is given up; the supervisor's path answers for it. */
  peerState(msg: PeerStateMsg): void {
    this.fail(msg.id, false);
  }

  /** Links whose messages stay unacknowledged past `limitMs` are given up for the relay (the network between the engines failed: their supervisors' direct path would fail too). */
  private checkLinks(limitMs: number): void {
    for (const [id, route] of this.routes)
      if (route.kind === "link" && route.link.overdue(limitMs)) this.fail(id, true);
  }

  private drop(id: number, link: LinkDialer, relay: boolean): void {
    const route = this.routes.get(id);
    if ((route?.kind === "link" || route?.kind === "hello") && route.link === link) this.fail(id, relay);
  }

  /** Messages to `id` go through the supervisor from now on, starting with what the link did not see acknowledged. */
  private fail(id: number, relay: boolean): void {
    const route = this.routes.get(id);
    if (!route || route.kind === "supervisor") return;
    if (route.kind !== "link") {
      if (route.kind === "asking") return; // the answer will come; a reset changes nothing yet
      return this.settle(id, undefined);
    }
    this.routes.set(id, { kind: "supervisor", relay });
    const undelivered = route.link.unacked();
    route.link.close();
    for (const { msg, parts } of undelivered) this.d.viaSupervisor(msg, parts, relay);
  }
}

/**
 * Bytes this module may keep (queued until a route is chosen): the value codec's body is a view
 * of its reused output buffer and a typed array's frame a view of the caller's array.
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
