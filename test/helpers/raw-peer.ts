import * as zmq from "zeromq";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AUTH_FAILED,
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  Signer,
  TAG,
  Verifier,
  decodeBody,
  decodeValue,
  encodeBody,
  encodeValue,
  endpoint,
  newClusterKey,
  readConnectionFile,
  sourceHash,
  type ChannelLabel,
  type ConnectionInfo,
  type Message,
  type Part,
  type SubmitMsg,
} from "@ptcluster/protocol";

/** Frames of one message as a DEALER sends them: `TAG AUTH HEADER (BODY BINARY*)*`. */
export function signedFrames(
  signer: Signer,
  label: ChannelLabel,
  header: Message,
  parts?: readonly Part[],
  recipient?: Buffer,
): Buffer[] {
  const body = encodeBody(header, parts);
  return [TAG, signer.sign(label, recipient, body), ...body];
}

/** A `submit` of one `apply` task running `src` (a function expression) with `args` on `engineId`. */
export function applySubmit(
  taskId: number,
  engineId: number,
  src: string,
  args: unknown[],
): { header: SubmitMsg; parts: Part[] } {
  const { body, frames } = encodeValue([args]);
  return {
    header: {
      type: "submit",
      tasks: [{ id: taskId, op: "apply", to: [engineId], fn: sourceHash(src), src }],
      pf: [frames.length],
      t: Date.now(),
    },
    parts: [{ body: Buffer.from(body), frames }],
  };
}

/** The outcome of task `taskId` in a `results` message, decoded; undefined if it is not there. */
export function resultOf(
  msg: { header: Extract<Message, { type: "results" }>; parts: Part[] },
  taskId: number,
): { ok: boolean; value: unknown } | undefined {
  const i = msg.header.results.findIndex((r) => r.id === taskId);
  const r = msg.header.results[i];
  if (!r) return undefined;
  const part = msg.parts[i];
  return { ok: r.ok, value: part && part.body.length ? decodeValue(part.body, part.frames) : undefined };
}

export type Received = { kind: "auth-failed" } | { kind: "message"; header: Message; parts: Part[] };

/**
 * A DEALER speaking the client protocol by hand, for tests that need to send what a real client
 * never would (tampered, replayed or unsigned frames). What it receives is verified like a client
 * would: channel `h2c`, bound to its routing id.
 */
export class RawPeer {
  readonly routingId = Buffer.from(randomBytes(16).toString("hex"));
  readonly signer: Signer;
  readonly dealer: zmq.Dealer;
  private readonly verifier: Verifier;
  /** Unsigned AUTH_FAILED notices received so far. */
  authFailedNotices = 0;

  private readonly receiveTimeoutMs: number;

  constructor(
    readonly key: Buffer,
    host: string,
    port: number,
    options: { receiveTimeoutMs?: number } = {},
  ) {
    this.signer = new Signer(key);
    this.verifier = new Verifier(key);
    this.receiveTimeoutMs = options.receiveTimeoutMs ?? 5_000;
    this.dealer = new zmq.Dealer({
      routingId: this.routingId.toString(),
      linger: 0,
      receiveTimeout: this.receiveTimeoutMs,
    });
    this.dealer.connect(endpoint(host, port));
  }

  /** A peer on the client port of the cluster whose client connection file is `file`. */
  static forClientFile(file: string, key?: Buffer): RawPeer {
    const info: ConnectionInfo = readConnectionFile(file, "client");
    return new RawPeer(key ?? Buffer.from(info.key, "hex"), info.host, info.port);
  }

  /** Sends frames exactly as given. */
  async sendRaw(frames: Buffer[]): Promise<void> {
    await this.dealer.send(frames);
  }

  /** Signs a message for `c2h` with this peer's session (taking the next sequence number) without sending it. */
  sign(header: Message, parts?: readonly Part[]): Buffer[] {
    return signedFrames(this.signer, "c2h", header, parts);
  }

  /** Signs and sends a message on `c2h`; returns the frames sent, so a test can replay them. */
  async send(header: Message, parts?: readonly Part[]): Promise<Buffer[]> {
    const frames = this.sign(header, parts);
    await this.sendRaw(frames);
    return frames;
  }

  /**
   * Receives one message (rejects after the receive timeout); throws if the hub's signature does
   * not verify. This peer never acknowledges, so the hub sends its messages again after a while:
   * copies of what was received already are skipped, as are the hub's standalone acknowledgements.
   */
  async receive(): Promise<Received> {
    const deadline = Date.now() + this.receiveTimeoutMs;
    for (;;) {
      if (Date.now() > deadline)
        throw new Error(`nothing but copies and acknowledgements from the hub for ${this.receiveTimeoutMs} ms`);
      const frames = (await this.dealer.receive()) as Buffer[];
      if (frames.length >= 2 && frames[0]?.equals(TAG) && frames[1]?.equals(AUTH_FAILED)) {
        this.authFailedNotices++;
        return { kind: "auth-failed" };
      }
      const [tag, auth] = frames;
      if (!tag?.equals(TAG) || !auth) throw new Error(`unexpected frames from the hub: ${frames.length}`);
      const body = frames.slice(2);
      const verdict = this.verifier.verify("h2c", this.routingId, auth, body);
      if (verdict === "replay") continue;
      if (verdict !== "ok") throw new Error(`the hub's message did not verify: ${verdict}`);
      if (body.length === 0) continue;
      const { header, parts } = decodeBody(frames, 2);
      return { kind: "message", header, parts };
    }
  }

  /** Receives until a message of `type` arrives, skipping AUTH_FAILED notices (counted) and other messages. */
  async receiveType<T extends Message["type"]>(
    type: T,
  ): Promise<{ header: Extract<Message, { type: T }>; parts: Part[] }> {
    for (;;) {
      const r = await this.receive();
      if (r.kind === "message" && r.header.type === type)
        return { header: r.header as Extract<Message, { type: T }>, parts: r.parts };
    }
  }

  /** Sends a signed `connect` and waits for a successful `connect_reply`. */
  async connect(): Promise<Extract<Message, { type: "connect_reply" }>> {
    await this.send({ type: "connect", v: PROTOCOL_VERSION, pkg: PACKAGE_VERSION, pid: process.pid, host: "raw-peer" });
    const { header } = await this.receiveType("connect_reply");
    if (!header.ok) throw new Error(`connect refused: ${header.error?.message}`);
    return header;
  }

  /** Waits for the result of task `taskId` (results of other tasks are skipped) and decodes its value. */
  async result(taskId: number): Promise<{ ok: boolean; value: unknown }> {
    for (;;) {
      const found = resultOf(await this.receiveType("results"), taskId);
      if (found) return found;
    }
  }

  /** Says `bye` (when connected) and closes the socket. */
  async close(sayBye = false): Promise<void> {
    if (sayBye && !this.dealer.closed) await this.send({ type: "bye" });
    this.dealer.close();
  }
}

/**
 * A stand-in controller for client tests: a ROUTER and a notification PUB on loopback, and a
 * client connection file (0600) pointing at them, speaking protocol `protocol`. The test answers
 * on `router` and publishes on `pub` itself (signing with `key`).
 */
export async function standInController(
  dir: string,
  name: string,
  protocol: string,
): Promise<{
  key: Buffer;
  router: zmq.Router;
  pub: zmq.Publisher;
  file: string;
  close(): void;
}> {
  const key = newClusterKey();
  const router = new zmq.Router({ linger: 0 });
  await router.bind("tcp://127.0.0.1:*");
  const pub = new zmq.Publisher({ linger: 0 });
  await pub.bind("tcp://127.0.0.1:*");
  const port = (s: zmq.Socket) => Number(/:(\d+)$/.exec(s.lastEndpoint ?? "")?.[1]);
  const file = join(dir, `${name}.json`);
  const info: ConnectionInfo = {
    kind: "client",
    protocol,
    clusterId: "",
    profile: name,
    host: "127.0.0.1",
    port: port(router),
    notifyPort: port(pub),
    key: key.toString("hex"),
    signatureScheme: "chacha20-poly1305",
    hubPid: process.pid,
    createdAt: Date.now(),
  };
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  return {
    key,
    router,
    pub,
    file,
    close: () => {
      router.close();
      pub.close();
    },
  };
}
