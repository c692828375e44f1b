import type { HubToEngine } from "@ptcluster/protocol";
import type { EngineRegistry } from "./engine-registry.js";

/** A channel's view of its peers' acknowledgements. */
export interface AckTracker {
  /** Peers that left messages unacknowledged for longer than `limitMs`. */
  overdue(limitMs: number): Array<Buffer | undefined>;
  /** Drops what is kept for a peer. */
  forget(peer?: Buffer): unknown;
}

export interface LivenessOptions {
  /** Heartbeat period (ms). */
  heartbeatMs: number;
  /** Heartbeats an engine may miss before it is declared dead. */
  missedHeartbeats: number;
  /** A client silent this long (ms) is presumed gone. */
  clientTimeoutMs: number;
}

export interface LivenessDeps {
  engines: EngineRegistry;
  engineLinks: AckTracker;
  clientLinks: AckTracker;
  /** Connected clients: their keys and when each was last heard from. */
  clients(): Iterable<{ key: string; lastSeen: number }>;
  hasClient(key: string): boolean;
  toEngine(msg: HubToEngine, to: Buffer): void;
  engineGone(id: number, reason: string): void;
  clientGone(key: string, reason: string): void;
}

/**
 * Heartbeats and liveness: each tick the controller sends engines a heartbeat and judges its
 * peers. An engine that misses heartbeats, or a peer that stops acknowledging, is declared gone.
 */
export class LivenessMonitor {
  /** When the tick last ran. */
  private lastTick = Date.now();

  constructor(
    private readonly o: LivenessOptions,
    private readonly d: LivenessDeps,
  ) {}

  /** Starts counting from now (the first tick is judged against it). */
  reset(now = Date.now()): void {
    this.lastTick = now;
  }

  tick(now: number): void {
    // A late tick means this event loop was blocked (a huge message, a busy machine): timers run
    // before the sockets are read, so heartbeats and acknowledgements that arrived meanwhile are
    // still unread. Judge no peer on this tick; the next one sees them.
    const stalled = now - this.lastTick > 2 * this.o.heartbeatMs;
    this.lastTick = now;
    if (!stalled) this.judge(now);
    for (const e of this.d.engines.all()) this.d.toEngine({ type: "heartbeat", t: now }, e.routingId);
  }

  /** Declares dead the engines and clients that went silent or stopped acknowledging. */
  private judge(now: number): void {
    const { engines, engineLinks, clientLinks } = this.d;
    const deadMs = this.o.heartbeatMs * this.o.missedHeartbeats;
    for (const e of engines.silentSince(now - deadMs)) {
      this.d.engineGone(e.info.id, `missed ${this.o.missedHeartbeats} heartbeats`);
    }
    // A peer that talks but does not acknowledge what we send it (its half of the link is cut,
    // or it is broken) is as dead as a silent one: its work would wait for ever. Twice the
    // heartbeat window, as a message lost several times over is resent within it.
    const ackDeadMs = 2 * deadMs;
    for (const peer of engineLinks.overdue(ackDeadMs)) {
      const e = peer && engines.byRoutingId(peer);
      if (e) this.d.engineGone(e.info.id, `did not acknowledge messages for ${ackDeadMs} ms`);
      else engineLinks.forget(peer);
    }
    const clientTimeoutMs = this.o.clientTimeoutMs;
    const clientDeadline = now - clientTimeoutMs;
    for (const c of [...this.d.clients()])
      if (c.lastSeen < clientDeadline) this.d.clientGone(c.key, `silent for more than ${clientTimeoutMs} ms`);
    for (const peer of clientLinks.overdue(clientTimeoutMs)) {
      const key = peer?.toString("latin1") ?? "";
      if (this.d.hasClient(key)) this.d.clientGone(key, `did not acknowledge messages for ${clientTimeoutMs} ms`);
      else clientLinks.forget(peer);
    }
  }
}
