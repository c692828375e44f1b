import type { CommAbortMsg, CommMsg, HubToEngine, Part, PeerLookupMsg } from "@ptcluster/protocol";
import type { EngineRegistry } from "./engine-registry.js";

export type ToEngine = (msg: HubToEngine, parts: readonly Part[] | undefined, to: Buffer) => void;

/**
 * The controller's part in `engine.comm`: it relays messages between the engines of a DirectView
 * call (the path every engine kind reaches over its authenticated channel; direct peer sockets
 * bypass it where they connect) and tells every engine when one is gone, so groups that contain
 * it fail with `CommPeerLostError` instead of waiting. Routing is by engine id; the only state is
 * which ids were announced gone (so that only their return is announced, not every registration).
 */
export class CommRelay {
  private readonly announcedDown = new Set<number>();
  private readonly d: { engines: EngineRegistry; toEngine: ToEngine };

  constructor(engines: EngineRegistry, toEngine: ToEngine) {
    this.d = { engines, toEngine };
  }

  /** A message or an abort from an engine (`fromRouting`). */
  fromEngine(fromRouting: Buffer, msg: CommMsg | CommAbortMsg, parts: readonly Part[]): void {
    if (msg.type === "comm") this.message(fromRouting, msg, parts);
    else this.abort(msg);
  }

  /**
   * An engine about to send to engine `id` directly asks where it listens: the endpoint that engine
   * registered, or none (it is gone, or has none: the sender uses this relay).
   */
  lookup(fromRouting: Buffer, msg: PeerLookupMsg): void {
    const e = this.d.engines.get(msg.id);
    const reply: HubToEngine = {
      type: "peer_endpoint",
      id: msg.id,
      ...(e?.peer ? { endpoint: e.peer } : {}),
      ...(e?.peerKey ? { key: e.peerKey } : {}),
    };
    this.d.toEngine(reply, undefined, fromRouting);
  }

  /** A rank's message: to its target engine, or a `peer_state` down back to the sender. */
  private message(fromRouting: Buffer, msg: CommMsg, parts: readonly Part[]): void {
    const target = this.d.engines.get(msg.to);
    if (target) this.d.toEngine(msg, parts, target.routingId);
    else {
      this.announcedDown.add(msg.to);
      this.d.toEngine(down(msg.to, "no engine has this id (it is gone)"), undefined, fromRouting);
    }
  }

  /** A member aborted its group: every other member named is told. */
  private abort(msg: CommAbortMsg): void {
    for (const id of msg.to) {
      const target = this.d.engines.get(id);
      if (target) this.d.toEngine({ ...msg, to: [id] }, undefined, target.routingId);
    }
  }

  /** Engine `id` is gone: every engine hears it (only those in a group with it act on it). */
  engineGone(id: number, reason: string): void {
    this.announcedDown.add(id);
    for (const e of this.d.engines.all()) this.d.toEngine(down(id, reason), undefined, e.routingId);
  }

  /** Engine `id` registered: an id engines may have marked lost is usable again. */
  engineUp(id: number): void {
    if (!this.announcedDown.delete(id)) return;
    const msg: HubToEngine = { type: "peer_state", id, up: true, reason: "registered" };
    for (const e of this.d.engines.all()) if (e.info.id !== id) this.d.toEngine(msg, undefined, e.routingId);
  }
}

function down(id: number, reason: string): HubToEngine {
  return { type: "peer_state", id, up: false, reason };
}
