import {
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  protocolMajor,
  type EngineToHub,
  type HubToEngine,
  type Logger,
} from "@ptcluster/protocol";
import type { EngineEntry, EngineRegistry } from "./engine-registry.js";

export interface RegistrationDeps {
  engines: EngineRegistry;
  heartbeatMs: number;
  toEngine(msg: HubToEngine, to: Buffer): void;
  /** An engine registered (after its reply was sent). */
  up(entry: EngineEntry): void;
  /** An engine is to be declared gone (it registered again over its old self). */
  gone(id: number, reason: string): void;
  log: Logger;
}

/**
 * Engines joining: the protocol version check, ids (kept across a re-registration), and asking
 * an engine the controller does not know (declared dead after a long silence, say) to register again.
 */
export class EngineRegistration {
  private readonly reregisterAsked = new Map<string, number>();

  constructor(private readonly d: RegistrationDeps) {}

  register(from: Buffer, msg: Extract<EngineToHub, { type: "register" }>): void {
    const { engines, heartbeatMs } = this.d;
    if (protocolMajor(msg.v) !== protocolMajor(PROTOCOL_VERSION)) {
      const side = protocolMajor(msg.v) < protocolMajor(PROTOCOL_VERSION) ? "engine" : "controller";
      this.d.toEngine(
        {
          type: "register_reply",
          ok: false,
          id: -1,
          heartbeatMs,
          error: {
            code: "ERR_PTC_VERSION",
            message: `The engine speaks protocol ${msg.v} (ptcluster ${msg.pkg}) and the controller ${PROTOCOL_VERSION} (ptcluster ${PACKAGE_VERSION}). Upgrade the ${side}.`,
          },
        },
        from,
      );
      return;
    }
    const existing = engines.byRoutingId(from);
    if (existing) this.d.gone(existing.info.id, "re-registered");
    const entry = engines.register(
      from,
      {
        uuid: msg.uuid,
        host: msg.host,
        pid: msg.pid,
        concurrency: msg.concurrency,
        ...(msg.tag !== undefined ? { tag: String(msg.tag).slice(0, 200) } : {}),
        ...(msg.shm === true ? { shm: true } : {}),
        ...(msg.mpi && Number.isInteger(msg.mpi.rank) && Number.isInteger(msg.mpi.size)
          ? { mpi: { rank: msg.mpi.rank, size: msg.mpi.size } }
          : {}),
      },
      msg.requestedId,
    );
    if (typeof msg.peer === "string" && /^[^\s]{1,300}:\d{1,5}$/.test(msg.peer))
      entry.info.peer = entry.peer = msg.peer;
    else delete entry.peer;
    if (typeof msg.lean === "string" && /^[^\s]{1,300}:\d{1,5}$/.test(msg.lean)) entry.info.lean = msg.lean;
    else delete entry.info.lean;
    if (typeof msg.peerKey === "string" && msg.peerKey.length === 40) entry.peerKey = msg.peerKey;
    else delete entry.peerKey;
    this.d.toEngine({ type: "register_reply", ok: true, id: entry.info.id, heartbeatMs }, from);
    this.d.up(entry);
    this.d.log.info({ engineId: entry.info.id, pid: msg.pid, host: msg.host }, "engine registered");
  }

  /** An engine we do not know is alive: take it back (asked at most once per heartbeat period). */
  askToRegister(from: Buffer): void {
    const key = from.toString("latin1");
    const now = Date.now();
    if ((this.reregisterAsked.get(key) ?? 0) > now - this.d.heartbeatMs) return;
    if (this.reregisterAsked.size > 10_000) this.reregisterAsked.clear();
    this.reregisterAsked.set(key, now);
    this.d.toEngine({ type: "reregister" }, from);
  }
}
