import {
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  protocolMajor,
  type EngineInfo,
  type HubToClient,
} from "@ptcluster/protocol";

/** A connected client. */
export interface ClientEntry {
  routingId: Buffer;
  /** Its routing id as a string: the key of its tasks and kept results. */
  key: string;
  lastSeen: number;
  /** Function hashes whose sources it sent (it holds them until it goes). */
  knownFns: Set<string>;
  /** Where it runs, as it said when it connected. */
  pid?: number;
  host?: string;
}

/** At most this many clients that are not connected are remembered (why they were let go, when told). */
const MAX_STRANGERS = 10_000;

/** Connected clients, by routing id. */
export class ClientSessions {
  private readonly byKey = new Map<string, ClientEntry>();
  /** Clients not connected that were let go (why), or that sent something anyway (when last told to rejoin). */
  private readonly strangers = new Map<string, { reason: string | undefined; toldAt: number }>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): ClientEntry | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  all(): IterableIterator<ClientEntry> {
    return this.byKey.values();
  }

  /** A client connected (again, perhaps: the new session replaces the old). */
  open(routingId: Buffer, key: string, where?: { pid: number; host: string }): ClientEntry {
    const client: ClientEntry = { routingId, key, lastSeen: Date.now(), knownFns: new Set(), ...where };
    this.byKey.set(key, client);
    this.strangers.delete(key);
    return client;
  }

  /** Ends a session and returns it; `droppedFor`: the controller let it go (why), not the client. */
  close(key: string, droppedFor?: string): ClientEntry | undefined {
    const client = this.byKey.get(key);
    this.byKey.delete(key);
    if (client && droppedFor !== undefined) this.stranger(key).reason = droppedFor;
    return client;
  }

  /**
   * What to tell a client that is not connected and sent something other than `connect` or `bye`
   * (one taken for gone whose process runs on: its calls would otherwise wait for ever), at most
   * once per `intervalMs`.
   */
  tellRejoin(key: string, intervalMs: number, send: (notice: HubToClient) => void): void {
    const s = this.stranger(key);
    const now = Date.now();
    if (now - s.toldAt < intervalMs) return;
    s.toldAt = now;
    send(s.reason === undefined ? { type: "rejoin" } : { type: "rejoin", reason: s.reason });
  }

  private stranger(key: string): { reason: string | undefined; toldAt: number } {
    let s = this.strangers.get(key);
    if (!s) {
      if (this.strangers.size >= MAX_STRANGERS) this.strangers.clear();
      this.strangers.set(key, (s = { reason: undefined, toldAt: 0 }));
    }
    return s;
  }
}

/** A client speaking another major protocol version is refused with what to upgrade. */
export function versionMismatch(v: string, pkg: string): { code: string; message: string } | undefined {
  if (protocolMajor(v) === protocolMajor(PROTOCOL_VERSION)) return undefined;
  const side = protocolMajor(v) < protocolMajor(PROTOCOL_VERSION) ? "client" : "controller";
  return {
    code: "ERR_PTC_VERSION",
    message: `The client speaks protocol ${v} (ptcluster ${pkg}) and the controller ${PROTOCOL_VERSION} (ptcluster ${PACKAGE_VERSION}). Upgrade the ${side}.`,
  };
}

export function connectReply(
  clusterId: string,
  heartbeatMs: number,
  engines: EngineInfo[],
  error?: { code: string; message: string },
): HubToClient {
  return {
    type: "connect_reply",
    ok: !error,
    v: PROTOCOL_VERSION,
    pkg: PACKAGE_VERSION,
    clusterId,
    heartbeatMs,
    engines,
    ...(error ? { error } : {}),
  };
}
