import * as zmq from "zeromq";
import { createSocket } from "node:dgram";
import { isIP } from "node:net";
import {
  Channel,
  DEFAULT_MAX_MESSAGE_BYTES,
  endpoint,
  type CommAbortMsg,
  type CommMsg,
  type DirectSubmitMsg,
  type FromPeer,
  type Logger,
  type Part,
  type ToPeer,
} from "@ptcluster/protocol";

/** How long a hello answer may wait for the executor's endpoint (ms). */
const EXEC_WAIT_MS = 500;

export interface PeerEndpointOptions {
  /** The address to bind (and advertise). */
  ip: string;
  key: Buffer;
  /** This engine's id now (it can change when the engine registers again). */
  id: () => number;
  /** A peer's `engine.comm` message or abort for this engine. */
  onComm: (msg: CommMsg | CommAbortMsg, parts: Part[]) => void;
  /** A client's DirectView tasks, sent straight here (`from`: its routing id, the one it has at the controller). */
  onDirect?: (from: Buffer, msg: DirectSubmitMsg, parts: Part[]) => void;
  /** The address of this engine's executor endpoint now, told to peers in the hello answer (none: they send here). */
  exec?: () => string | undefined;
  /** The executor is binding its endpoint (just started, or replaced): a hello waits for it a little. */
  execComing?: () => boolean;
  maxMessageBytes?: number;
  /** Encrypt with CURVE (clusters with `--curve`): a server key pair is made for this endpoint. */
  curve?: boolean;
  logger: Logger;
}

/**
 * This engine's endpoint for direct `engine.comm` messages: a ROUTER on an ephemeral port inside
 * the project's authenticated channel (cluster key, same signatures and reliable delivery as the
 * controller link). Peers connect lazily (`PeerLinks`); the first message of a link is a
 * `peer_hello` naming the engine it means to reach, answered `ok` only by that engine, so a stale
 * endpoint (an engine gone, its port reused) never takes another engine's messages.
 */
export class PeerEndpoint {
  private channel!: Channel<ToPeer, FromPeer>;
  /** `host:port` as peers should dial it. */
  address = "";
  /** With `curve`: the public key peers need to dial it (advertised with the address). */
  readonly publicKey: string | undefined;
  private readonly secretKey: string | undefined;

  constructor(private readonly o: PeerEndpointOptions) {
    const pair = o.curve ? zmq.curveKeyPair() : undefined;
    this.publicKey = pair?.publicKey;
    this.secretKey = pair?.secretKey;
  }

  async start(): Promise<string> {
    const socket = new zmq.Router({
      linger: 0,
      // A peer engine's DEALER that reconnects (same routing id) takes its old place.
      handover: true,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
      maxMessageSize: (this.o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES) + 65_536,
      ...(isIP(this.o.ip) === 6 ? { ipv6: true } : {}),
      // No ZAP handler runs in an engine, so any CURVE client completes the handshake: what is
      // accepted is decided by the channel's signatures (the cluster key), as without CURVE.
      ...(this.secretKey ? { curveServer: true, curveSecretKey: this.secretKey } : {}),
    });
    await socket.bind(`${endpoint(this.o.ip, 0).replace(/:0$/, ":*")}`);
    const port = Number(/:(\d+)$/.exec(socket.lastEndpoint ?? "")?.[1]);
    this.address = `${this.o.ip}:${port}`;
    this.channel = new Channel<ToPeer, FromPeer>({
      socket,
      clusterKey: this.o.key,
      sendLabel: "p2e",
      recvLabel: "e2p",
      router: true,
      logger: this.o.logger,
      onMessage: ({ from, header, parts }) => {
        if (!from) return;
        const me = this.o.id();
        switch (header.type) {
          case "peer_hello":
            this.helloReply(from, me >= 0 && header.to === me);
            break;
          case "comm":
            if (header.to === me) this.o.onComm(header, parts);
            break;
          case "comm_abort":
            if (header.to.includes(me)) this.o.onComm({ ...header, to: [me] }, []);
            break;
          case "dsubmit":
            this.o.onDirect?.(from, header, parts);
            break;
        }
      },
    }).start();
    return this.address;
  }

  /**
   * Answers a hello, with the executor's endpoint if it has one: a peer whose first messages find
   * the executor still binding it (the engine just started, or its executor was replaced) would
   * otherwise send through the supervisors for as long as its own executor lives, so the answer
   * waits for it up to `EXEC_WAIT_MS` (the dialler waits a second).
   */
  private helloReply(to: Buffer, ok: boolean, waited = 0): void {
    const exec = ok ? this.o.exec?.() : undefined;
    if (ok && !exec && waited < EXEC_WAIT_MS && this.o.execComing?.()) {
      setTimeout(() => this.helloReply(to, ok, waited + 10), 10).unref();
      return;
    }
    this.channel.send({ type: "peer_hello_reply", ok, ...(exec ? { exec } : {}) }, undefined, to);
  }

  /** To a client's direct link; returns the message's `seq` on it (for `acknowledged`). */
  toClient(client: Buffer, msg: FromPeer, parts: Part[]): number {
    this.channel.send(msg, parts, client);
    return this.channel.lastSeq(client);
  }

  acknowledged(client: Buffer, seq: number): boolean | undefined {
    return this.channel.acknowledged(client, seq);
  }

  /**
   * Of `clients` (routing ids, latin1), those whose link stopped acknowledging for `ms`: each is
   * forgotten, and what it was sent and did not acknowledge is returned with it.
   */
  lostClients(
    clients: ReadonlySet<string>,
    ms: number,
  ): Array<{ client: Buffer; unacked: Array<{ header: FromPeer }> }> {
    const out: Array<{ client: Buffer; unacked: Array<{ header: FromPeer }> }> = [];
    for (const peer of this.channel.overdue(ms)) {
      if (peer && clients.has(peer.toString("latin1"))) out.push({ client: peer, unacked: this.channel.forget(peer) });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.channel?.close(0, { awaitAcks: false });
  }
}

/**
 * The local address this host uses to reach `host` (the controller): the interface peers on the
 * controller's network can reach too. A connected UDP socket sends nothing; the kernel only picks
 * the route. Loopback for a loopback controller.
 */
export async function localAddressTowards(host: string, port: number): Promise<string> {
  const family = isIP(host) === 6 || (isIP(host) === 0 && host.includes(":")) ? "udp6" : "udp4";
  const sock = createSocket(family);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.connect(port, host, () => resolve());
    });
    return sock.address().address;
  } finally {
    sock.close();
  }
}
