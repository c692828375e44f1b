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
}

/** Connected clients, by routing id. */
export class ClientSessions {
  private readonly byKey = new Map<string, ClientEntry>();

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
  open(routingId: Buffer, key: string): ClientEntry {
    const client: ClientEntry = { routingId, key, lastSeen: Date.now(), knownFns: new Set() };
    this.byKey.set(key, client);
    return client;
  }

  /** Ends a session and returns it. */
  close(key: string): ClientEntry | undefined {
    const client = this.byKey.get(key);
    this.byKey.delete(key);
    return client;
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
