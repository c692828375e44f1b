import { connect, createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { CommAbortMsg, CommMsg, Part } from "@ptcluster/protocol";
import { LinkDialer, LinkListener } from "../src/peer-net/link-socket.js";
import { MsgReader } from "@ptcluster/protocol/lean";
import { bigBuffer, recycle } from "@ptcluster/protocol/lean";

const KEY = randomBytes(32);
const closing: Array<() => void> = [];
afterEach(() => {
  for (const c of closing.splice(0)) c();
});

type Got = { msg: CommMsg | CommAbortMsg; parts: Part[]; lid: string; seq: number };

async function listener(key = KEY): Promise<{ port: number; got: Got[]; hellos: number[] }> {
  const got: Got[] = [];
  const hellos: number[] = [];
  const l = new LinkListener(key, 64 << 20, {
    hello: (to) => (hellos.push(to), to === 7),
    message: ({ msg, parts }, lid, seq) => got.push({ msg, parts, lid, seq }),
  });
  const port = await l.listen("127.0.0.1");
  closing.push(() => l.close());
  return { port, got, hellos };
}

/** A dialler to `port` for engine `to`; resolves with it and the welcome's answer (or `closed`), and when it closes. */
function dial(
  port: number,
  key = KEY,
  to = 7,
): Promise<{ link: LinkDialer; outcome: "ok" | "refused" | "closed"; closed: Promise<void> }> {
  return new Promise((resolve) => {
    let ended!: () => void;
    const closed = new Promise<void>((r) => (ended = r));
    const link: LinkDialer = new LinkDialer("127.0.0.1", port, key, to, randomBytes(8), 64 << 20, {
      welcome: (ok) => resolve({ link, outcome: ok ? "ok" : "refused", closed }),
      closed: () => {
        ended();
        resolve({ link, outcome: "closed", closed });
      },
    });
    closing.push(() => link.close());
  });
}

const msg = (i: number, meta = false): CommMsg => ({
  type: "comm",
  g: "group-é",
  to: 7,
  from: 1,
  ch: i % 2 ? "u:tag ✓" : "c:3",
  pf: [0],
  ...(meta ? { meta: { op: "allreduce", root: 0 } } : {}),
});
const part = (i: number): Part => ({ body: Buffer.from([0xcb, 0, 0, 0, 0, 0, 0, 0, i]), frames: [] });

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

/**
 * A TCP relay between a dialler and the listener that hands the dialler's messages, whole, to
 * `edit` (which returns what to pass on instead: nothing, the same, altered or repeated bytes).
 */
async function proxy(
  port: number,
  edit: (m: Buffer, i: number) => Buffer[],
): Promise<{ port: number; seen: Buffer[] }> {
  const seen: Buffer[] = [];
  const server: Server = createServer((client: Socket) => {
    const upstream = connect({ host: "127.0.0.1", port });
    const reader = new MsgReader(64 << 20);
    client.on("data", (chunk: Buffer) => {
      for (const m of reader.push(chunk) ?? []) {
        const copy = Buffer.from(m);
        seen.push(copy);
        for (const out of edit(copy, seen.length - 1)) upstream.write(out);
      }
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const end = () => (client.destroy(), upstream.destroy());
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
    closing.push(end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closing.push(() => server.close());
  return { port: (server.address() as { port: number }).port, seen };
}

describe("executor links (peer-net/link-socket.ts)", () => {
  it("deliver every message once and in order, with its fields, link id and number; acknowledgements empty the resend buffer", async () => {
    const { port, got } = await listener();
    const { link, outcome } = await dial(port);
    expect(outcome).toBe("ok");
    const big = new Float64Array(1 << 17).map((_, i) => i); // 1 MiB: many TCP reads, the large tag
    for (let i = 0; i < 20; i++) link.send(msg(i, i === 3), [part(i)]);
    link.send(msg(20), [{ body: Buffer.from("body"), frames: [Buffer.from(big.buffer), Buffer.from([1, 2, 3])] }]);
    const abort: CommAbortMsg = { type: "comm_abort", g: "group-é", to: [7, 8], error: { code: "E", message: "m ✓" } };
    link.send(abort, []);
    await until("22 messages", () => got.length === 22);
    expect(got.map((g) => g.seq)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    expect(new Set(got.map((g) => g.lid)).size).toBe(1);
    expect(got[3]?.msg).toEqual(msg(3, true));
    expect(got[4]?.msg).toEqual(msg(4));
    expect(got[4]?.parts).toEqual([part(4)]);
    const frames = got[20]?.parts[0]?.frames ?? [];
    expect(frames.map((f) => f.length)).toEqual([1 << 20, 3]);
    expect((frames[0] as Buffer).byteOffset % 8).toBe(0); // viewable as a Float64Array where it lies
    expect(new Float64Array(frames[0]!.buffer, frames[0]!.byteOffset, 1 << 17)[12_345]).toBe(12_345);
    expect(Buffer.compare(frames[0]!, Buffer.from(big.buffer))).toBe(0);
    expect(got[21]?.msg).toEqual(abort);
    await until("the acknowledgement", () => link.unacked().length === 0);
  });

  it("close ends the connections it accepted, not only the listening: their diallers see the link close", async () => {
    const got: Got[] = [];
    const l = new LinkListener(KEY, 64 << 20, {
      hello: (to) => to === 7,
      message: ({ msg, parts }, lid, seq) => got.push({ msg, parts, lid, seq }),
    });
    const port = await l.listen("127.0.0.1");
    closing.push(() => l.close());
    const { link, outcome, closed } = await dial(port);
    expect(outcome).toBe("ok");
    link.send(msg(1), []);
    await until("the message", () => got.length === 1);
    l.close();
    await closed;
  });

  it("a dialler without the cluster key gets no answer; a hello for another engine is refused", async () => {
    const { port, got, hellos } = await listener();
    expect((await dial(port, randomBytes(32))).outcome).toBe("closed");
    expect(hellos).toEqual([]); // refused before its content counted
    expect((await dial(port, KEY, 8)).outcome).toBe("refused");
    expect(got).toEqual([]);
  });

  it("an altered message is refused and ends the link; what it did not acknowledge comes back for the other path", async () => {
    const { port: real, got } = await listener();
    // Message 0 is the hello; flip a byte of the value of message 2 (the second data message).
    const { port } = await proxy(real, (m, i) => {
      if (i === 2) m[m.length - 20]! ^= 1;
      return [m];
    });
    const { link, closed } = await dial(port);
    for (let i = 0; i < 3; i++) link.send(msg(i), [part(i)]);
    await closed;
    expect(got.map((g) => g.seq)).toEqual([1]);
    const back = link.unacked();
    // Message 1 may or may not have been acknowledged before the link ended; 2 and 3 never were.
    expect(back.map((c) => c.msg.ps?.[1]).slice(-2)).toEqual([2, 3]);
    expect(back.at(-1)?.parts).toEqual([part(2)]);
  });

  it("a replayed message is refused, on its connection or a new one", async () => {
    const { port: real, got } = await listener();
    // Every data message is passed on twice: the copy must not be delivered.
    const twice = await proxy(real, (m, i) => (i === 0 ? [m] : [m, m]));
    const { link } = await dial(twice.port);
    link.send(msg(0), [part(0)]);
    await until("the first copy", () => got.length === 1);
    // A recording of the whole connection (hello and data), played again on a new connection.
    const recorded = twice.seen.map((m) => Buffer.from(m));
    const sock = connect({ host: "127.0.0.1", port: real });
    const ended = new Promise<void>((r) => sock.on("close", () => r()));
    sock.on("error", () => undefined);
    sock.on("data", () => undefined);
    for (const m of recorded) sock.write(m);
    await ended; // the listener answers the old hello, then refuses the data signed for the old connection
    expect(got.map((g) => g.seq)).toEqual([1]);
  });
});

describe("the buffer pool of executor links", () => {
  it("reuses only its own buffers, once each", () => {
    const a = bigBuffer(1 << 20);
    recycle(a.buffer);
    recycle(a.buffer); // a second return of the same buffer is ignored: it would be handed out twice
    const foreign = Buffer.allocUnsafeSlow(1 << 20);
    recycle(foreign.buffer); // never lent: the caller may still hold it
    const b = bigBuffer(1 << 20);
    const c = bigBuffer(1 << 20);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
    expect(c.buffer).not.toBe(foreign.buffer);
    expect(b.byteOffset % 8).toBe(0);
  });
});

describe("MsgReader reading in place", () => {
  it("cuts messages of every size from reads landing where target() says, large ones straight into their own buffer", () => {
    const sizes = [4, 70_000, 10, 1 << 20, 5, 64 * 1024 - 4, 200_000];
    const msgs = sizes.map((n, k) => {
      const m = Buffer.alloc(4 + n, k + 1);
      m.writeUInt32BE(n, 0);
      return m;
    });
    const stream = Buffer.concat(msgs);
    const reader = new MsgReader(64 << 20);
    const got: Buffer[] = [];
    let direct = 0;
    // Reads of a kernel that fills at most 7,000 bytes at a time.
    for (let at = 0; at < stream.length;) {
      const t = reader.target();
      const n = Math.min(t.length, 7_000, stream.length - at);
      stream.copy(t, 0, at, at + n);
      at += n;
      if (t.length !== 64 * 1024) direct++;
      got.push(...(reader.landed(n) ?? []));
    }
    expect(got.map((m) => m.length)).toEqual(msgs.map((m) => m.length));
    for (let k = 0; k < msgs.length; k++) expect(got[k]!.equals(msgs[k]!)).toBe(true);
    // Most of the large messages' bytes were read into their buffers, not through the scratch buffer.
    expect(direct).toBeGreaterThan((1 << 20) / 7_000);
  });
});

describe("an executor endpoint before the hello", () => {
  async function rawListener(helloMs: number): Promise<number> {
    const l = new LinkListener(KEY, 64 << 20, { hello: () => true, message: () => undefined }, helloMs);
    const port = await l.listen("127.0.0.1");
    closing.push(() => l.close());
    return port;
  }
  const closedWithin = (sock: Socket, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      sock.on("close", () => (clearTimeout(t), resolve(true)));
      sock.on("error", () => undefined);
    });

  it("ends a connection whose first message claims more than a hello (it would otherwise wait for, and make room for, 50 MB)", async () => {
    const port = await rawListener(60_000);
    const sock = connect({ host: "127.0.0.1", port });
    closing.push(() => sock.destroy());
    const len = Buffer.alloc(5);
    len.writeUInt32BE(50_000_000, 0);
    sock.write(len);
    expect(await closedWithin(sock, 2_000)).toBe(true);
  });

  it("ends a connection that says nothing within its hello time", async () => {
    const port = await rawListener(150);
    const sock = connect({ host: "127.0.0.1", port });
    closing.push(() => sock.destroy());
    const t0 = Date.now();
    expect(await closedWithin(sock, 5_000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });
});
