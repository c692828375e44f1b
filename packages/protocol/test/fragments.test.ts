import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import * as zmq from "zeromq";
import {
  MalformedMessageError,
  newClusterKey,
  silentLogger,
  type FaultSpec,
  type Message,
  type Part,
} from "../src/index.js";
import { Channel } from "../src/transport/channel.js";
import { Assembly, FRAGMENT_BYTES, fragmentMinFromEnv, splitFragments } from "../src/transport/fragments.js";

// Large messages in fragments (transport/fragments.ts): the split and the assembly on their own,
// then channels over real sockets on loopback, with the fault shim dropping, copying, delaying and
// corrupting fragments.

describe("fragments", () => {
  it("split into pieces of at most the fragment size, never across frames, and put back byte for byte", () => {
    const frames = [Buffer.from("head"), Buffer.alloc(0), randomBytes(2500), randomBytes(1000), Buffer.from("x")];
    const runs = splitFragments(frames, 1000);
    for (const r of runs) {
      expect(r[0]?.[0]).toBe(0xc1);
      expect(r.slice(1).reduce((n, p) => n + p.length, 0)).toBeLessThanOrEqual(1000);
    }
    const a = new Assembly(runs[0]![0]!, 1 << 20);
    for (const r of runs) {
      expect(a.done).toBe(false);
      a.add(r.slice(1));
    }
    expect(a.done).toBe(true);
    expect(a.frames.map((f) => f.toString("hex"))).toEqual(frames.map((f) => f.toString("hex")));
  });

  it("PTCLUSTER_FRAGMENT_KB gives the threshold in KiB; anything but a whole number is refused with the variable named", () => {
    expect(fragmentMinFromEnv({})).toBeUndefined();
    expect(fragmentMinFromEnv({ PTCLUSTER_FRAGMENT_KB: "" })).toBeUndefined();
    expect(fragmentMinFromEnv({ PTCLUSTER_FRAGMENT_KB: "1024" })).toBe(1 << 20);
    for (const bad of ["0", "-1", "1.5", "1k", " 2"])
      expect(() => fragmentMinFromEnv({ PTCLUSTER_FRAGMENT_KB: bad }), bad).toThrow(/PTCLUSTER_FRAGMENT_KB/);
  });

  it("refuses pieces that do not match the announced frames, and a message over the limit", () => {
    const runs = splitFragments([randomBytes(3000)], 1000);
    expect(() => new Assembly(runs[1]![0]!, 1 << 20)).toThrow(MalformedMessageError);
    expect(() => new Assembly(runs[0]![0]!, 2999)).toThrow(/over the limit/);
    const a = new Assembly(runs[0]![0]!, 1 << 20);
    a.add(runs[0]!.slice(1));
    expect(() => a.add([randomBytes(2001)])).toThrow(MalformedMessageError);
  });
});

const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

interface Got {
  rid: number;
  frames: Buffer[];
}
type ReqWithParts = Message & { rid: number };
const header = (rid: number, frames: number): Message =>
  ({ type: "request", rid, req: { what: "status" }, pf: [frames] }) as unknown as Message;

async function pair(faults: FaultSpec | null) {
  const key = newClusterKey();
  const socket = new zmq.Router({ linger: 0, mandatory: true });
  await socket.bind("tcp://127.0.0.1:*");
  const routerGot: Got[] = [];
  const common = { clusterKey: key, logger: silentLogger(), faults, fragmentMin: 2 * FRAGMENT_BYTES };
  const router = new Channel({
    ...common,
    socket,
    sendLabel: "h2c",
    recvLabel: "c2h",
    router: true,
    onMessage: (m) => routerGot.push({ rid: (m.header as ReqWithParts).rid, frames: m.parts[0]?.frames ?? [] }),
  }).start();
  open.push(router);
  const id = Buffer.from(`dealer-${Math.random().toString(16).slice(2)}`);
  const dealerSocket = new zmq.Dealer({ routingId: id.toString(), linger: 0 });
  dealerSocket.connect(socket.lastEndpoint as string);
  const dealerGot: Got[] = [];
  const dealer = new Channel({
    ...common,
    socket: dealerSocket,
    sendLabel: "c2h",
    recvLabel: "h2c",
    selfId: id,
    onMessage: (m) => dealerGot.push({ rid: (m.header as ReqWithParts).rid, frames: m.parts[0]?.frames ?? [] }),
  }).start();
  open.push(dealer);
  return { router, dealer, id, routerGot, dealerGot };
}

async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("Channel: large messages in fragments", () => {
  it("delivers each large message once, whole and in order among small ones, both ways, through drops, copies, delays and corrupted fragments", async () => {
    const faults: FaultSpec = { drop: 0.1, dup: 0.1, corrupt: 0.2, delay: [0, 3], seed: 11 };
    const { router, dealer, id, routerGot, dealerGot } = await pair(faults);
    // Sizes around the fragment size, odd ones included; every third message small (not fragmented).
    const sizes = [
      3 * FRAGMENT_BYTES + 17,
      100,
      2 * FRAGMENT_BYTES,
      5 * FRAGMENT_BYTES - 1,
      10,
      4 * FRAGMENT_BYTES + 1,
    ];
    const values = sizes.map((n) => [randomBytes(n), randomBytes(1500)]);
    const part = (i: number): Part => ({ body: Buffer.from([i]), frames: values[i]! });
    values.forEach((_, i) => dealer.send(header(i, 2), [part(i)]));
    await until("the router to get every message", () => routerGot.length === sizes.length);
    values.forEach((_, i) => router.send(header(i, 2), [part(i)], id));
    await until("the dealer to get every message", () => dealerGot.length === sizes.length);
    for (const got of [routerGot, dealerGot]) {
      expect(got.map((g) => g.rid)).toEqual(sizes.map((_, i) => i));
      for (const g of got)
        expect(g.frames.map((f) => f.equals(values[g.rid]![g.frames.indexOf(f)]!))).toEqual([true, true]);
    }
    // Fragments were lost, copied and tampered with on the way, refused by their tags and sent again;
    // each channel counts messages, not fragments.
    for (const ch of [router, dealer]) {
      expect(ch.stats.dropped.badMac).toBeGreaterThan(0);
      expect(ch.stats.retransmitted).toBeGreaterThan(0);
      expect(ch.stats.received).toBe(sizes.length);
    }
    await until("acknowledgements", () => router.inFlight === 0 && dealer.inFlight === 0);
  }, 60_000);

  it("a peer forgotten before the last fragment was acknowledged gives the whole message back, once", async () => {
    const { router, dealer, id, routerGot } = await pair(null);
    dealer.send(header(0, 0), [{ body: Buffer.from([0]), frames: [] }]);
    await until("the router to know the dealer", () => routerGot.length === 1);
    await dealer.close(0);
    const big = randomBytes(3 * FRAGMENT_BYTES);
    router.send(header(1, 1), [{ body: Buffer.from([1]), frames: [big] }], id);
    const back = router.forget(id);
    expect(back).toHaveLength(1);
    expect((back[0]?.header as ReqWithParts).rid).toBe(1);
    expect(back[0]?.parts[0]?.frames[0]?.equals(big)).toBe(true);
  });
});
