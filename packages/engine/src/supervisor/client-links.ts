import type { Server } from "node:net";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  type DirectSubmitMsg,
  type FromPeer,
  type Logger,
  type Part,
} from "@ptcluster/protocol";
import { DuplexLink } from "@ptcluster/protocol/lean";
import type { ExecClientsMsg } from "./executor-slot.js";
import type { DirectTasks } from "./direct-tasks.js";
import type { ClientSetup } from "../executor/protocol.js";
import { unpackFrames } from "../shared/transfer.js";

export interface ClientLinksOptions {
  /** The address to bind (the peer endpoint's). */
  ip: string;
  key: Buffer;
  maxBytes: number;
  /** This engine's id now. */
  id: () => number;
  /** A client's DirectView tasks (`from`: its routing id, the one it has at the controller). */
  onDirect: (from: Buffer, msg: DirectSubmitMsg, parts: Part[]) => void;
  /** A client's link closed: what it was sent and did not acknowledge. */
  onLost: (client: Buffer, unacked: Array<{ header: FromPeer }>) => void;
  /** A client asked for the executor's own endpoint (`dexec_ask`): bound on the first ask. */
  onExecAsk?: () => void;
}

/**
 * This engine's endpoint for clients' lean direct links (`@ptcluster/protocol/lean`'s
 * `DuplexLink`: plain TCP, a tag on every message, no `Channel`): what a client sends straight
 * here and the results that go straight back cost each side a fraction of a `Channel` message.
 * It serves the same `dsubmit`/`dresults` as the ZeroMQ peer endpoint (`peer-endpoint.ts`),
 * which clients without it still use.
 */
export class ClientLinks {
  private readonly links = new Map<string, DuplexLink>();
  private server: Server | undefined;
  address = "";
  /** The current executor's endpoint for clients' own links (`executor/client-tasks.ts`), told to every client. */
  private exec: string | undefined;

  constructor(private readonly o: ClientLinksOptions) {}

  get ip(): string {
    return this.o.ip;
  }

  async start(): Promise<string> {
    const { port, server } = await DuplexLink.listen(
      { host: this.o.ip, clusterKey: this.o.key, maxBytes: this.o.maxBytes + 65_536 },
      {
        hello: (to) => {
          const me = this.o.id();
          return me >= 0 && to === me;
        },
        link: (link, id) => this.adopt(link, id),
      },
    );
    this.server = server;
    this.address = `${this.o.ip.includes(":") ? `[${this.o.ip}]` : this.o.ip}:${port}`;
    return this.address;
  }

  private adopt(link: DuplexLink, id: Buffer): void {
    const who = id.toString("latin1");
    const old = this.links.get(who);
    this.links.set(who, link);
    old?.close();
    if (this.exec) link.send({ type: "dexec", address: this.exec });
    link.on = {
      message: (header, parts) => {
        if (header.type === "dsubmit") this.o.onDirect(id, header, parts);
        else if (header.type === "dexec_ask") this.o.onExecAsk?.();
      },
      closed: () => {
        if (this.links.get(who) === link) this.links.delete(who);
        const unacked = link.unacked() as Array<{ header: FromPeer }>;
        if (unacked.length) this.o.onLost(id, unacked);
      },
    };
  }

  /** The executor bound its endpoint for clients (or is being replaced: none): every client is told. */
  setExec(address: string | undefined): void {
    if (address === this.exec) return;
    this.exec = address;
    for (const link of this.links.values()) link.send({ type: "dexec", ...(address ? { address } : {}) });
  }

  has(client: Buffer): boolean {
    return this.links.has(client.toString("latin1"));
  }

  /** To a client's link; returns the message's number on it (0: no link). */
  toClient(client: Buffer, msg: FromPeer, parts: Part[]): number {
    return this.links.get(client.toString("latin1"))?.send(msg, parts) ?? 0;
  }

  acknowledged(client: Buffer, seq: number): boolean | undefined {
    return this.links.get(client.toString("latin1"))?.acknowledged(seq);
  }

  /** Of `clients`, those whose link left messages unacknowledged for `ms`: closed, with what they did not acknowledge. */
  lostClients(
    clients: ReadonlySet<string>,
    ms: number,
  ): Array<{ client: Buffer; unacked: Array<{ header: FromPeer }> }> {
    const out: Array<{ client: Buffer; unacked: Array<{ header: FromPeer }> }> = [];
    for (const [who, link] of this.links) {
      if (!clients.has(who) || !link.overdue(ms)) continue;
      this.links.delete(who);
      out.push({ client: Buffer.from(who, "latin1"), unacked: link.unacked() as Array<{ header: FromPeer }> });
      link.on.closed = () => undefined;
      link.close();
    }
    return out;
  }

  /**
   * Closes every client's link and keeps the endpoint: the controller took this engine for dead,
   * and so did its clients, which dial again. What they sent that was not read yet (it may wait
   * in the socket of an engine that was frozen) goes with the link: those tasks already failed.
   */
  dropLinks(): void {
    for (const link of this.links.values()) {
      link.on.closed = () => undefined;
      link.close();
    }
    this.links.clear();
  }

  close(): void {
    this.server?.close();
    this.dropLinks();
  }
}

/**
 * Opens the endpoint for clients' lean links beside the peer endpoint (same address). None with
 * `--curve` (clients there keep the controller path) or without a peer endpoint; a failure to
 * bind leaves clients the ZeroMQ peer endpoint.
 */
export async function openClientLinks(
  paths: { ip: string } | undefined,
  o: { key: Buffer; curve?: unknown; maxMessageBytes?: number | undefined },
  log: Logger,
  d: Pick<ClientLinksOptions, "id" | "onDirect" | "onLost" | "onExecAsk">,
): Promise<ClientLinks | undefined> {
  if (!paths || o.curve !== undefined) return undefined;
  const links = new ClientLinks({
    ip: paths.ip,
    key: o.key,
    maxBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    ...d,
  });
  try {
    await links.start();
  } catch (err) {
    log.warn({ err }, "no endpoint for clients' lean links; clients use the peer endpoint");
    return undefined;
  }
  return links;
}

/** What the executor needs to own clients' links: this endpoint's address and key, and when a silent link is given up. */
export function execClientsSetup(
  ip: string,
  o: { key: Buffer; maxMessageBytes?: number | undefined },
  heartbeatMs: number,
): ClientSetup {
  return {
    ip,
    key: new Uint8Array(o.key),
    maxBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    // A client that leaves results unacknowledged this long is gone, as on the lean link.
    linkLimitMs: heartbeatMs * 6,
  };
}

/** What the executor says of the clients' links it owns: its endpoint (told to clients), what ran, what a closed link left. */
export function execClients(m: ExecClientsMsg, clients: ClientLinks | undefined, direct: DirectTasks): void {
  if (m.type === "client_listen") clients?.setExec(m.address);
  else if (m.type === "client_link") direct.execLink(m.link, m.client);
  else if (m.type === "exec_cancelled") direct.execCancelled(m.key, m.started);
  else if (m.type === "exec_report") direct.fromExecutor(m.items, m.acks, m.journaled);
  else
    direct.execLost(
      m.items.map(({ rid, data }) => {
        if (!data) return { rid };
        const [body, ...frames] = unpackFrames(data);
        return { rid, part: { body: body ?? Buffer.alloc(0), frames } };
      }),
    );
}
