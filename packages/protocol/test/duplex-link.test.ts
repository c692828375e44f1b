import { afterEach, describe, expect, it } from "vitest";
import { connect, createServer, type Server, type Socket } from "node:net";
import { DuplexLink } from "../src/lean/duplex-link.js";
import { flushPendingWrites, writer } from "../src/lean/socket-writer.js";
import { randomBytes } from "node:crypto";
import { decode, encode, hello } from "../src/lean/duplex-wire.js";
import { helloKey, nonce, verify } from "../src/lean/link-auth.js";
import { encodeBody } from "../src/codec/wire.js";
import { pad8 } from "../src/lean/frame-layout.js";
import type { DirectResultsMsg, DirectSubmitMsg, Message, Part } from "../src/index.js";

// Clients' lean direct links (docs/security.md, "Client links"): nothing accepted without the
// cluster key and the client role's hello, no message altered or replayed, over real loopback sockets.

const KEY = Buffer.alloc(32, 7);
const submit = (id: number): DirectSubmitMsg => ({ type: "dsubmit", tasks: [{ id, op: "apply", to: [3] }], pf: [1] });
const part = (n: number): Part => ({ body: Buffer.from([1, 2, 3]), frames: [Buffer.alloc(n, 9)] });

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** An engine's endpoint: messages it accepted, links it made, hellos it saw. */
async function endpoint(): Promise<{ port: number; got: Message[]; links: DuplexLink[]; closed: Promise<void> }> {
  const got: Message[] = [];
  const links: DuplexLink[] = [];
  let closedNow!: () => void;
  const closed = new Promise<void>((r) => (closedNow = r));
  const { port, server } = await DuplexLink.listen(
    { host: "127.0.0.1", clusterKey: KEY, maxBytes: 1 << 20 },
    {
      hello: (to) => to === 3,
      link: (link) => {
        links.push(link);
        link.on = { message: (h) => void got.push(h), closed: closedNow };
      },
    },
  );
  closers.push(() => {
    server.close();
    for (const l of links) l.close();
  });
  return { port, got, links, closed };
}

function dial(port: number, o: { key?: Buffer; to?: number } = {}): Promise<DuplexLink | "refused"> {
  return new Promise((resolve) => {
    DuplexLink.dial(
      {
        host: "127.0.0.1",
        port,
        clusterKey: o.key ?? KEY,
        to: o.to ?? 3,
        id: Buffer.from("client-1"),
        maxBytes: 1 << 20,
        ms: 2_000,
      },
      {
        welcome: (link) => {
          closers.push(() => link.close());
          resolve(link);
        },
        refused: () => resolve("refused"),
      },
    );
  });
}

/** A TCP proxy to `port` that passes the client's bytes through `edit` (the handshake untouched). */
async function proxy(port: number, edit: (chunk: Buffer, n: number) => Buffer): Promise<number> {
  let n = 0;
  const server: Server = createServer((a: Socket) => {
    const b = connect({ host: "127.0.0.1", port });
    a.on("data", (c: Buffer) => void b.write(edit(c, n++)));
    b.on("data", (c: Buffer) => void a.write(c));
    a.on("close", () => b.destroy());
    b.on("close", () => a.destroy());
    a.on("error", () => undefined);
    b.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => server.close());
  return (server.address() as { port: number }).port;
}

/** A TCP proxy to `port` passing each direction's bytes on in odd-sized pieces, each written in a turn of its own (many reads). */
async function dribble(port: number, sizes: number[]): Promise<number> {
  const pass = (from: Socket, to: Socket) => {
    let chain = Promise.resolve();
    let k = 0;
    from.on("data", (c: Buffer) => {
      chain = chain.then(async () => {
        for (let at = 0; at < c.length;) {
          const n = sizes[k++ % sizes.length] as number;
          to.write(c.subarray(at, (at += n)));
          await new Promise((r) => setImmediate(r));
        }
      });
    });
  };
  const server: Server = createServer((a: Socket) => {
    const b = connect({ host: "127.0.0.1", port });
    pass(a, b);
    pass(b, a);
    a.on("close", () => b.destroy());
    b.on("close", () => a.destroy());
    a.on("error", () => undefined);
    b.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => server.close());
  return (server.address() as { port: number }).port;
}

/** A task batch of several parts, with frames on both sides of the size written in place (16 KiB) and of odd lengths. */
function bulk(): { msg: DirectSubmitMsg; parts: Part[] } {
  const parts: Part[] = [
    { body: randomBytes(37), frames: [randomBytes(600_003), randomBytes(10)] },
    { body: randomBytes(5), frames: [randomBytes(20_001), randomBytes(300_007), randomBytes(16 * 1024)] },
  ];
  const tasks = [1, 2].map((id) => ({ id, op: "apply" as const, to: [3] }));
  return { msg: { type: "dsubmit", tasks, pf: parts.map((p) => p.frames.length) }, parts };
}

/** Parts equal byte for byte (vitest's deep equality walks a Buffer element by element: seconds per MiB). */
const same = (a: Part[] | undefined, b: Part[]): boolean =>
  a?.length === b.length &&
  a.every((p, i) => {
    const q = b[i] as Part;
    return (
      p.body.equals(q.body) &&
      p.frames.length === q.frames.length &&
      p.frames.every((f, j) => f.equals(q.frames[j] as Buffer))
    );
  });

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe("client direct links (lean/duplex-link.ts)", () => {
  it("carries messages both ways, in order, with their frames, and acknowledges them", async () => {
    const ep = await endpoint();
    const link = await dial(ep.port);
    if (link === "refused") throw new Error("refused");
    const back: Array<{ h: Message; parts: Part[] }> = [];
    link.on = { message: (h, parts) => void back.push({ h, parts }), closed: () => undefined };
    const seqs = [link.send(submit(1), [part(10)]), link.send(submit(2), [part(5000)])];
    await until(() => ep.got.length === 2);
    expect(ep.got.map((m) => (m as DirectSubmitMsg).tasks[0]?.id)).toEqual([1, 2]);
    const reply: DirectResultsMsg = {
      type: "dresults",
      results: [{ id: 1, ok: true, engine: 3, started: 1, completed: 2 }],
      pf: [1],
    };
    (ep.links[0] as DuplexLink).send(reply, [part(100_000)]);
    await until(() => back.length === 1);
    expect(back[0]?.h).toMatchObject({ type: "dresults" });
    expect(back[0]?.parts[0]?.frames[0]).toEqual(Buffer.alloc(100_000, 9));
    await until(() => link.acknowledged(seqs[1] as number) === true);
    expect(link.acknowledged(seqs[1] as number)).toBe(true);
  });

  it("refuses a dialler without the cluster key, and a hello for another engine", async () => {
    const ep = await endpoint();
    expect(await dial(ep.port, { key: Buffer.alloc(32, 8) })).toBe("refused");
    expect(await dial(ep.port, { to: 4 })).toBe("refused");
    expect(ep.links).toHaveLength(0);
  });

  it("refuses a hello made with the executor links' key (another role)", async () => {
    const ep = await endpoint();
    const sock = connect({ host: "127.0.0.1", port: ep.port });
    const answer: Buffer[] = [];
    sock.on("data", (c: Buffer) => void answer.push(c));
    const ended = new Promise<void>((r) => sock.on("close", () => r()));
    sock.write(hello(helloKey(KEY, "executor"), 3, Buffer.from("client-1"), nonce()));
    await ended;
    expect(answer).toEqual([]);
    expect(ep.links).toHaveLength(0);
  });

  it("closes a connection that sends no hello in time, or announces a message larger than a hello", async () => {
    const got: string[] = [];
    const { port, server } = await DuplexLink.listen(
      { host: "127.0.0.1", clusterKey: KEY, maxBytes: 1 << 20, helloMs: 400 },
      { hello: () => true, link: () => void got.push("link") },
    );
    closers.push(() => server.close());
    const closedAfter = async (bytes?: Buffer): Promise<number> => {
      const t0 = Date.now();
      const sock = connect({ host: "127.0.0.1", port });
      sock.on("error", () => undefined);
      const ended = new Promise<void>((r) => sock.on("close", () => r()));
      if (bytes) sock.write(bytes);
      await ended;
      return Date.now() - t0;
    };
    // Silent: closed by the hello timeout.
    expect(await closedAfter()).toBeGreaterThanOrEqual(390);
    // A length of 1 MiB (allowed after the hello, not for one): closed at once, long before the timeout.
    const big = Buffer.alloc(8);
    big.writeUInt32BE(1 << 20, 0);
    big[4] = 16;
    expect(await closedAfter(big)).toBeLessThan(300);
    expect(got).toEqual([]);
  });

  it("closes the link on a tampered message and delivers nothing of it", async () => {
    const ep = await endpoint();
    // Chunk 0 is the hello; in chunk 1 (the first data message) one bit of the body flips.
    const port = await proxy(ep.port, (c, n) => {
      if (n !== 1) return c;
      const out = Buffer.from(c);
      out[out.length - 20] = (out[out.length - 20] as number) ^ 1;
      return out;
    });
    const link = await dial(port);
    if (link === "refused") throw new Error("refused");
    link.send(submit(1), [part(10)]);
    await ep.closed;
    expect(ep.got).toEqual([]);
  });

  it("refuses a replayed message: the copy closes the link, the original was delivered once", async () => {
    const ep = await endpoint();
    const port = await proxy(ep.port, (c, n) => (n === 1 ? Buffer.concat([c, c]) : c));
    const link = await dial(port);
    if (link === "refused") throw new Error("refused");
    link.send(submit(1), [part(10)]);
    await ep.closed;
    expect(ep.got.map((m) => (m as DirectSubmitMsg).tasks[0]?.id)).toEqual([1]);
  });

  it("writes a large frame where it lies, tagged over the pieces as over the whole message", () => {
    const key = Buffer.alloc(32, 5);
    const { msg, parts } = bulk();
    const pieces = encode(key, 9, msg, parts);
    // The 600 KB frame and the 300 KB one are pieces of their own, not copies.
    for (const f of [parts[0]?.frames[0], parts[1]?.frames[1]])
      expect(pieces.some((p) => p.buffer === f?.buffer && p.byteOffset === f?.byteOffset)).toBe(true);
    const whole = Buffer.concat(pieces);
    expect(verify(key, Buffer.alloc(32 + 2048), whole, 9)).toBe(true);
    expect(same(decode(whole)?.parts, parts)).toBe(true);
    // A small message stays one buffer.
    expect(encode(key, 10, submit(1), [part(10)])).toHaveLength(1);
  });

  it("carries a message of several large and small frames intact, and refuses a byte changed in any frame", async () => {
    const { msg, parts } = bulk();
    const ep = await endpoint();
    const intact = await dial(ep.port);
    if (intact === "refused") throw new Error("refused");
    let back: Part[] = [];
    (ep.links[0] as DuplexLink).on.message = (_h, p) => void (back = p);
    intact.send(msg, parts);
    await until(() => back.length === 2);
    expect(same(back, parts)).toBe(true);

    // Where each frame lies in the client's stream: after the hello, the data message's fields, then the frames, 8-byte aligned.
    const frames = encodeBody(msg, parts);
    const helloBytes = 4 + 1 + 4 + 1 + "client-1".length + 16 + 16;
    const fixed = 13 + 4 * frames.length;
    let at = helloBytes + fixed + pad8(fixed);
    const targets = [helloBytes + 12]; // the frame count
    for (const f of frames) {
      targets.push(at + (f.length >> 1));
      at += f.length + pad8(f.length);
    }
    targets.push(at + 3); // the tag
    expect(targets).toHaveLength(frames.length + 2);
    for (const target of targets) {
      const tampered = await endpoint();
      let seen = 0;
      const port = await proxy(tampered.port, (c) => {
        const out = seen <= target && target < seen + c.length ? Buffer.from(c) : c;
        if (out !== c) out[target - seen] = (out[target - seen] as number) ^ 0x10;
        seen += c.length;
        return out;
      });
      const link = await dial(port);
      if (link === "refused") throw new Error("refused");
      link.send(msg, parts);
      await tampered.closed;
      expect(tampered.got).toEqual([]);
    }
  });

  it("reassembles messages split across many reads, byte by byte and in odd pieces, both ways", async () => {
    const ep = await endpoint();
    const port = await dribble(ep.port, [1, 1, 1, 2, 3, 5, 7, 11, 4093, 1, 65_537, 13]);
    const link = await dial(port);
    if (link === "refused") throw new Error("refused");
    const { msg, parts } = bulk();
    const got: Array<{ h: Message; parts: Part[] }> = [];
    const engine = ep.links[0] as DuplexLink;
    engine.on.message = (h, p) => void got.push({ h, parts: p });
    link.send(submit(1), [part(10)]);
    link.send(msg, parts);
    link.send(submit(3), [part(3000)]);
    await until(() => got.length === 3);
    expect(got.map((g) => (g.h as DirectSubmitMsg).tasks[0]?.id)).toEqual([1, 1, 3]);
    expect(same(got[1]?.parts, parts)).toBe(true);
    expect(got[2]?.parts[0]?.frames[0]).toEqual(Buffer.alloc(3000, 9));
    const back: Part[][] = [];
    link.on = { message: (_h, p) => void back.push(p), closed: () => undefined };
    const reply: DirectResultsMsg = { type: "dresults", results: [], pf: parts.map((p) => p.frames.length) };
    engine.send(reply, parts);
    engine.send({ ...reply, pf: [1] }, [part(1)]);
    await until(() => back.length === 2);
    expect(same(back[0], parts)).toBe(true);
    expect(back[1]?.[0]?.frames[0]).toEqual(Buffer.alloc(1, 9));
    expect(link.closed || engine.closed).toBe(false);
  });
});

describe("a link's writes of one turn", () => {
  it("go in one write at the end of the turn, or at once with flushPendingWrites (an executor about to run a task), not twice", async () => {
    const server: Server = createServer();
    const got: Buffer[] = [];
    server.on("connection", (s) => s.on("data", (d: Buffer) => got.push(d)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const sock: Socket = connect((server.address() as { port: number }).port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    try {
      const write = writer(sock);
      write(Buffer.from("a"));
      write(Buffer.from("b"));
      expect(sock.bytesWritten).toBe(0); // held for the end of the turn
      flushPendingWrites();
      expect(sock.bytesWritten).toBe(2);
      await new Promise((r) => setImmediate(r)); // the turn's own flush finds nothing left
      expect(sock.bytesWritten).toBe(2);
      write(Buffer.from("c"));
      await new Promise((r) => setImmediate(r));
      expect(sock.bytesWritten).toBe(3);
      await waitUntil(() => Buffer.concat(got).toString() === "abc");
    } finally {
      sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setImmediate(r));
}
