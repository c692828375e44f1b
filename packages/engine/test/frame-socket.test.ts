import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FrameDealer, FrameRouter } from "../src/peer-net/frame-socket.js";

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function pair(): Promise<{ router: FrameRouter; dealer: FrameDealer; id: Buffer }> {
  const router = new FrameRouter(64 << 20);
  const port = await router.listen("127.0.0.1");
  const id = Buffer.from("peer-1");
  const dealer = new FrameDealer("127.0.0.1", port, id, 64 << 20);
  open.push(router, dealer);
  return { router, dealer, id };
}

describe("multipart messages over TCP for executor links", () => {
  it("keep frames whole and in order, large ones 8-byte aligned, and route answers by the dialler's id", async () => {
    const { router, dealer, id } = await pair();
    const big = new Float64Array(1 << 17).map((_, i) => i); // 1 MiB: many TCP reads
    const frames = [Buffer.from("ptc1"), Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.from(big.buffer)];
    for (let i = 0; i < 3; i++) await dealer.send([...frames, Buffer.from([i])]);
    for (let i = 0; i < 3; i++) {
      const [from, ...got] = await router.receive();
      expect(from).toEqual(id);
      expect(got.map((f) => f.length)).toEqual([4, 0, 3, 1 << 20, 1]);
      expect(got[4]).toEqual(Buffer.from([i]));
      const f = got[3] as Buffer;
      expect(f.byteOffset % 8).toBe(0);
      const back = new Float64Array(f.buffer, f.byteOffset, f.length / 8);
      expect(back[12345]).toBe(12345);
    }
    await router.send([id, Buffer.from("ack")]);
    expect(await dealer.receive()).toEqual([Buffer.from("ack")]);
  });

  it("a send to a routing id with no connection fails as unroutable (the channel resends later)", async () => {
    const { router } = await pair();
    await expect(router.send([Buffer.from("nobody"), Buffer.from("x")])).rejects.toMatchObject({
      code: "EHOSTUNREACH",
    });
  });

  it("closes a connection whose bytes break the framing", async () => {
    const { router } = await pair();
    const sock = connect(router.port, "127.0.0.1");
    const closed = new Promise<void>((resolve) => sock.on("close", () => resolve()));
    sock.on("error", () => undefined);
    sock.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1])); // a length over the limit
    await closed;
    expect(router.readable).toBe(false);
  });
});

describe("multipart messages over TCP, as the bytes come", () => {
  it("a large message split at any point, with small ones around it in the same reads, arrives whole and aligned", async () => {
    const router = new FrameRouter(64 << 20);
    const port = await router.listen("127.0.0.1");
    open.push(router);
    // The wire format by hand: u32 rest | u32 count | (u32 len | u32 0 | bytes | pad to 8)*.
    const message = (frames: Buffer[]): Buffer => {
      const parts: Buffer[] = [];
      for (const f of frames) {
        const len = Buffer.alloc(8);
        len.writeUInt32BE(f.length, 0);
        parts.push(len, f, Buffer.alloc((8 - (f.length % 8)) % 8));
      }
      const body = Buffer.concat(parts);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(body.length + 4, 0);
      head.writeUInt32BE(frames.length, 4);
      return Buffer.concat([head, body]);
    };
    const big = Buffer.from(new Uint8Array(300_000).map((_, i) => i % 251));
    const bytes = Buffer.concat([
      message([Buffer.from("peer-2")]),
      message([Buffer.from("a")]),
      message([Buffer.from("bb"), big]),
      message([Buffer.from("c")]),
    ]);
    const sock = connect(port, "127.0.0.1");
    sock.setNoDelay(true);
    await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
    // Odd cuts: inside a length, inside the large frame, across message boundaries.
    for (const [from, to] of [
      [0, 3],
      [3, 37],
      [37, 1001],
      [1001, 200_003],
      [200_003, bytes.length],
    ] as const) {
      sock.write(bytes.subarray(from, to));
      await new Promise((r) => setTimeout(r, 5));
    }
    const got = [await router.receive(), await router.receive(), await router.receive()];
    sock.destroy();
    expect(got.map((m) => m.slice(1).map((f) => f.length))).toEqual([[1], [2, 300_000], [1]]);
    const f = got[1]?.[2] as Buffer;
    expect(f.equals(big)).toBe(true);
    expect(f.byteOffset % 8).toBe(0);
    expect(got[2]?.[1]).toEqual(Buffer.from("c"));
  });
});
