import type { EngineInfo, LinkReport } from "@ptcluster/protocol";

/** An engine as the controller tracks it. */
export interface EngineEntry {
  info: EngineInfo;
  /** ZeroMQ routing id of the engine's DEALER. */
  routingId: Buffer;
  lastSeen: number;
  /** Function hashes whose source this engine has been sent. */
  knownFns: Set<string>;
  /** Controller task ids running or queued on this engine. */
  inflight: Set<number>;
  /** Tasks running there (controller id → start, by the controller's clock), from its last heartbeat. */
  current: Map<number, number>;
  /** The engine's own socket counters, from its last heartbeat. */
  link?: LinkReport;
  /** Its peer endpoint for `engine.comm` (`host:port`), as it registered it. */
  peer?: string;
  /** Its peer endpoint's CURVE server public key (clusters with `--curve`). */
  peerKey?: string;
}

/**
 * Registered engines, by id and by routing id. Ids are assigned 0, 1, 2, … and never reused,
 * except that an engine re-registering with the same uuid (after a network blip) gets its id back.
 */
export class EngineRegistry {
  private readonly byId = new Map<number, EngineEntry>();
  private readonly byRouting = new Map<string, EngineEntry>();
  private readonly idByUuid = new Map<string, number>();
  private nextId = 0;

  get size(): number {
    return this.byId.size;
  }

  ids(): number[] {
    return [...this.byId.keys()].sort((a, b) => a - b);
  }

  get(id: number): EngineEntry | undefined {
    return this.byId.get(id);
  }

  byRoutingId(routingId: Buffer): EngineEntry | undefined {
    return this.byRouting.get(routingId.toString("latin1"));
  }

  all(): IterableIterator<EngineEntry> {
    return this.byId.values();
  }

  /** Whether engine `id` was registered and is no more. */
  gone(id: number): boolean {
    return !this.byId.has(id) && id < this.freshIdBase();
  }

  /** One above every id given out so far (live or dead): ids from here on are free. */
  freshIdBase(): number {
    let max = -1;
    for (const id of this.idByUuid.values()) if (id > max) max = id;
    for (const id of this.byId.keys()) if (id > max) max = id;
    return max + 1;
  }

  /** Adds an engine; `requestedId` is honoured when free (MPI ranks, re-registration). */
  register(
    routingId: Buffer,
    info: Omit<EngineInfo, "id" | "state" | "tasksDone" | "running" | "registeredAt">,
    requestedId?: number,
  ): EngineEntry {
    const previous = this.idByUuid.get(info.uuid);
    let id: number;
    if (previous !== undefined && !this.byId.has(previous)) id = previous;
    else if (
      requestedId !== undefined &&
      requestedId >= 0 &&
      !this.byId.has(requestedId) &&
      ![...this.idByUuid.values()].includes(requestedId)
    )
      id = requestedId;
    else {
      while (this.byId.has(this.nextId) || [...this.idByUuid.values()].includes(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const entry: EngineEntry = {
      info: { ...info, id, state: "idle", tasksDone: 0, running: 0, registeredAt: Date.now() },
      routingId,
      lastSeen: Date.now(),
      knownFns: new Set(),
      inflight: new Set(),
      current: new Map(),
    };
    this.byId.set(id, entry);
    this.byRouting.set(routingId.toString("latin1"), entry);
    this.idByUuid.set(info.uuid, id);
    return entry;
  }

  /** Removes an engine (dead or unregistered) and returns it. */
  remove(id: number): EngineEntry | undefined {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    this.byId.delete(id);
    this.byRouting.delete(entry.routingId.toString("latin1"));
    entry.info.state = "dead";
    return entry;
  }

  /** Engines not heard from since `deadline`. */
  silentSince(deadline: number): EngineEntry[] {
    return [...this.byId.values()].filter((e) => e.lastSeen < deadline);
  }
}
