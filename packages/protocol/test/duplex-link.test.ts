import { afterEach, describe, expect, it } from "vitest";
import { connect, createServer, type Server, type Socket } from "node:net";
import { DuplexLink } from "../src/lean/duplex-link.js";
import { hello } from "../src/lean/duplex-wire.js";
import { helloKey, nonce } from "../src/lean/link-auth.js";
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
});
