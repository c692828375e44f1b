import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import * as zmq from "zeromq";
import { pino } from "pino";
import {
  Channel,
  Link,
  Signer,
  TAG,
  encodeBody,
  newClusterKey,
  outgoing,
  parseFaults,
  silentLogger,
  transferAllowance,
  type ChannelLabel,
  type FaultSpec,
  type Incoming,
  type Message,
  type Outgoing,
  type RequestMsg,
} from "../src/index.js";
import { PROBE_MS, RetransmitClock } from "../src/transport/retransmit-clock.js";

// Reliable delivery: the per-peer logic on its own (Link), then channels over real sockets on
// loopback with the fault shim on both sides. Nothing here waits on a timer: every wait is for a
// message, a counter or a promise.

const limits = { maxMessages: 4, maxBytes: 1000 };
const msg = (seq: number, bytes = 10): Outgoing => outgoing([Buffer.alloc(bytes)], seq, bytes);

describe("Link", () => {
  it("holds messages beyond the window (count or bytes) and releases them, in order, as acknowledgements come", () => {
    const link = new Link(undefined, limits);
    const sent = [1, 2, 3, 4, 5, 6].map((s) => msg(s));
    expect(sent.map((m) => link.admit(m))).toEqual([true, true, true, true, false, false]);
    expect(link.hasRoom()).toBe(false);
    // Behind held messages nothing jumps the queue, even when there is room again.
    expect(link.acknowledge(1, Date.now())?.map((m) => m.seq)).toEqual([5]);
    expect(sent[0]?.done).toBe(true);
    expect(link.admit(msg(7))).toBe(false);
    expect(link.acknowledge(4, Date.now())?.map((m) => m.seq)).toEqual([6, 7]);
    expect(link.unacked.length).toBe(3);
    // A cumulative acknowledgement of something already acknowledged changes nothing.
    expect(link.acknowledge(3, Date.now())).toBeUndefined();

    const bytes = new Link(undefined, limits);
    expect(bytes.admit(msg(1, 600))).toBe(true);
    expect(bytes.admit(msg(2, 600))).toBe(true); // under the cap before it
    expect(bytes.admit(msg(3, 1))).toBe(false);
    // One message larger than the whole window still goes when nothing is in flight.
    const big = new Link(undefined, limits);
    expect(big.admit(msg(1, 5000))).toBe(true);
    expect(big.admit(msg(2, 1))).toBe(false);
  });

  it("times out only the oldest unacknowledged message, backs off, and in recovery sends each next one as acknowledgements advance", () => {
    const link = new Link(undefined, { maxMessages: 100, maxBytes: 1e9 });
    const t0 = 1_000_000;
    const sent = [1, 2, 3, 4].map((s) => msg(s));
    for (const m of sent) {
      link.admit(m);
      m.sentAt = m.firstSentAt = t0;
    }
    expect(link.timedOut(t0 + 249)).toBeUndefined();
    const first = link.timedOut(t0 + 251);
    expect(first?.seq).toBe(1);
    expect(first?.retransmits).toBe(1);
    // While it waits in the write queue it is not timed out again; after sending, the timeout has doubled.
    first!.queued = true;
    expect(link.timedOut(t0 + 5000)).toBeUndefined();
    first!.queued = false;
    first!.sentAt = t0 + 251;
    expect(link.timedOut(t0 + 251 + 499)).toBeUndefined();
    expect(link.timedOut(t0 + 251 + 501)?.seq).toBe(1);
    // A partial acknowledgement (1 arrived, 2 did not): 2 goes at once, without waiting for a timeout.
    expect(link.acknowledge(1, t0 + 800)?.map((m) => [m.seq, m.retransmits])).toEqual([[2, 1]]);
    // Acknowledgements that reach the end of what was in flight end recovery; progress ends the back-off.
    expect(link.acknowledge(4, t0 + 801)).toBeUndefined();
    expect(link.unacked.length).toBe(0);
    const next = msg(5);
    link.admit(next);
    next.sentAt = t0 + 900;
    expect(link.timedOut(t0 + 900 + 251)?.seq).toBe(5);
  });

  it("probes the peer of a message that was sent again and is still unacknowledged, once per period between back-off resends", () => {
    const link = new Link(undefined, { maxMessages: 100, maxBytes: 1e9 });
    const t0 = 1_000_000;
    const m = msg(1);
    link.admit(m);
    m.sentAt = m.firstSentAt = t0;
    // Late but never sent again: that is the resend timer's case, not a probe's.
    expect(link.probeDue(t0 + 240, PROBE_MS)).toBe(false);
    expect(link.timedOut(t0 + 251)?.seq).toBe(1);
    m.sentAt = t0 + 251;
    // The resend had the period to be answered; then one probe per period, until the next resend.
    expect(link.probeDue(m.sentAt + PROBE_MS - 1, PROBE_MS)).toBe(false);
    expect(link.probeDue(m.sentAt + PROBE_MS + 1, PROBE_MS)).toBe(true);
    expect(link.probeDue(m.sentAt + PROBE_MS + 2, PROBE_MS)).toBe(false);
    expect(link.probeDue(m.sentAt + 2 * PROBE_MS + 1, PROBE_MS)).toBe(true);
    m.queued = true; // waiting in the write queue: sent again already
    expect(link.probeDue(m.sentAt + 4 * PROBE_MS, PROBE_MS)).toBe(false);
    m.queued = false;
    link.acknowledge(1, m.sentAt + 5 * PROBE_MS);
    expect(link.probeDue(m.sentAt + 10 * PROBE_MS, PROBE_MS)).toBe(false);

    // The clock asks its owner for the probes (and only owners that gave a probe are asked).
    const resent: number[] = [];
    const probed: Array<Link> = [];
    const late = new Link(undefined, { maxMessages: 100, maxBytes: 1e9 });
    const clock = new RetransmitClock(
      () => [late],
      (out) => resent.push(out.seq),
      silentLogger(),
      "c2h",
      (w) => probed.push(w),
    );
    const first = msg(1);
    late.admit(first);
    first.sentAt = first.firstSentAt = Date.now() - 10_000;
    clock.start();
    clock.tick();
    expect(resent).toEqual([1]);
    expect(probed).toEqual([]);
    first.sentAt = Date.now() - PROBE_MS - 1; // sent again, unanswered for a period (the timeout has doubled)
    clock.tick();
    expect(resent).toEqual([1]);
    expect(probed).toEqual([late]);
    clock.stop();
  });

  it("gives large messages time to cross before they count as late or overdue", () => {
    const link = new Link(undefined, { maxMessages: 100, maxBytes: 1e12 });
    const big = msg(1, 50 * 1024 * 1024);
    link.admit(big);
    big.sentAt = big.firstSentAt = 0;
    const allowance = transferAllowance(big.bytes);
    expect(allowance).toBeGreaterThan(1000);
    expect(link.timedOut(1000)).toBeUndefined();
    expect(link.timedOut(Math.ceil(allowance) + 1000)?.seq).toBe(1);
    expect(link.overdue(allowance + 500)).toBeCloseTo(500);
  });

  it("keeps messages that came after a gap until their predecessor is delivered, within limits; drops what can never be delivered", () => {
    const link = new Link(undefined, limits);
    const e = (seq: number, bytes = 10) => ({ seq, frames: [], bytes });
    expect(link.keepEarly(5, e(7))).toBe("kept");
    expect(link.keepEarly(5, e(7))).toBe("copy");
    expect(link.keepEarly(7, e(9))).toBe("kept");
    expect(link.gapHigh).toBe(9);
    expect(link.takeEarly(3)).toBeUndefined();
    expect(link.takeEarly(5)?.seq).toBe(7);
    expect(link.takeEarly(7)?.seq).toBe(9);
    expect(link.earlyCount).toBe(0);
    expect(link.gapHigh).toBe(0);
    // Limits: count and bytes.
    for (const p of [10, 11, 12, 13]) expect(link.keepEarly(p, e(p + 1))).toBe("kept");
    expect(link.keepEarly(14, e(15))).toBe("full");
    // Once delivery has moved past them, kept messages whose predecessor is older are dropped.
    expect(link.takeEarly(100)).toBeUndefined();
    expect(link.earlyCount).toBe(0);
    expect(link.keepEarly(200, e(201, 600))).toBe("kept");
    expect(link.keepEarly(201, e(202, 600))).toBe("full");
  });

  it("abandons everything in flight, held or kept when its peer is forgotten", () => {
    const link = new Link(undefined, limits);
    const all = [1, 2, 3, 4, 5].map((s) => msg(s));
    for (const m of all) link.admit(m);
    link.prev = 5;
    link.keepEarly(9, { seq: 10, frames: [], bytes: 1 });
    expect(link.abandon()).toHaveLength(5);
    expect(all.every((m) => m.done)).toBe(true);
    expect([link.unacked.length, link.held.length, link.earlyCount, link.prev, link.unackedBytes]).toEqual([
      0, 0, 0, 0, 0,
    ]);
  });
});

describe("parseFaults", () => {
  it("reads every key, and refuses anything it does not understand, loudly", () => {
    expect(parseFaults("drop=0.05,dup=0.05,corrupt=0.02,delay=0-20,seed=42")).toEqual({
      drop: 0.05,
      dup: 0.05,
      corrupt: 0.02,
      delay: [0, 20],
      seed: 42,
    });
    expect(parseFaults("delay=7")).toMatchObject({ drop: 0, delay: [7, 7] });
    for (const bad of [
      "drop=2",
      "drop=",
      "dup=x",
      "delay=5-1",
      "delay=-1",
      "seed=1.5",
      "loss=0.1",
      "drop",
      "drop=0.1=2",
    ]) {
      expect(() => parseFaults(bad), bad).toThrow(/PTCLUSTER_TEST_FAULTS/);
    }
  });
});

// ---- channels over real sockets ------------------------------------------------------------------

const faults: FaultSpec = { drop: 0.05, dup: 0.05, corrupt: 0.03, delay: [0, 5], seed: 7 };
const req = (rid: number): RequestMsg => ({ type: "request", rid, req: { what: "status" } });

interface Peer {
  channel: Channel<Message, Message>;
  got: number[];
  id: Buffer;
}

const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

/** A ROUTER channel (controller side) and DEALER channels (client side) on loopback; both log nothing. */
async function network(options: {
  dealers: number;
  key?: Buffer;
  dealerKey?: Buffer;
  routerFaults?: FaultSpec;
  dealerFaults?: FaultSpec;
  logger?: ReturnType<typeof silentLogger>;
  onAuthFailed?: () => void;
  handover?: boolean;
}) {
  const key = options.key ?? newClusterKey();
  const socket = new zmq.Router({ linger: 0, mandatory: true, handover: options.handover ?? false });
  await socket.bind("tcp://127.0.0.1:*");
  const endpoint = socket.lastEndpoint as string;
  const routerGot = new Map<string, number[]>();
  const routerCh = new Channel<Message, Message>({
    socket,
    clusterKey: key,
    sendLabel: "h2c",
    recvLabel: "c2h",
    router: true,
    logger: silentLogger(),
    faults: options.routerFaults ?? null,
    onMessage: (m: Incoming<Message>) => {
      const k = (m.from as Buffer).toString();
      if (!routerGot.has(k)) routerGot.set(k, []);
      if (m.header.type === "request") routerGot.get(k)?.push(m.header.rid);
    },
  }).start();
  open.push(routerCh);
  const peers: Peer[] = [];
  for (let i = 0; i < options.dealers; i++) {
    const id = Buffer.from(`dealer-${i}-${Math.random().toString(16).slice(2)}`);
    const dealer = new zmq.Dealer({ routingId: id.toString(), linger: 0 });
    dealer.connect(endpoint);
    const got: number[] = [];
    const peer: Peer = {
      id,
      got,
      channel: new Channel<Message, Message>({
        socket: dealer,
        clusterKey: options.dealerKey ?? key,
        sendLabel: "c2h",
        recvLabel: "h2c",
        selfId: id,
        logger: options.logger ?? silentLogger(),
        faults: options.dealerFaults ?? null,
        ...(options.onAuthFailed ? { onAuthFailed: options.onAuthFailed } : {}),
        onMessage: (m) => {
          if (m.header.type === "request") got.push(m.header.rid);
        },
      }).start(),
    };
    open.push(peer.channel);
    peers.push(peer);
  }
  return { key, routerCh, routerGot, peers, endpoint };
}

async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe("Channel: reliable delivery over a faulty link", () => {
  it("delivers every message exactly once and in order, both ways, with drops, copies, delays and corruption on every send", async () => {
    const { routerCh, routerGot, peers } = await network({
      dealers: 2,
      routerFaults: faults,
      dealerFaults: { ...faults, seed: 8 },
    });
    const N = 200;
    // Dealers speak first (a ROUTER can only route to peers it has heard from), then both ways at once.
    for (const p of peers) for (const i of range(N)) p.channel.send(req(i));
    await until("the router to receive every message", () =>
      peers.every((p) => routerGot.get(p.id.toString())?.length === N),
    );
    for (const p of peers) for (const i of range(N)) routerCh.send(req(i), undefined, p.id);
    for (const p of peers) for (const i of range(N, N)) p.channel.send(req(i));
    await until("everything to arrive", () =>
      peers.every((p) => p.got.length === N && routerGot.get(p.id.toString())?.length === 2 * N),
    );
    for (const p of peers) {
      expect(p.got).toEqual(range(N));
      expect(routerGot.get(p.id.toString())).toEqual(range(2 * N));
    }
    // Faults were injected on both sides and the receivers refused what they had to.
    for (const ch of [routerCh, ...peers.map((p) => p.channel)]) {
      const f = ch.stats.faults!;
      expect(f.dropped, "dropped").toBeGreaterThan(0);
      expect(f.duplicated, "duplicated").toBeGreaterThan(0);
      expect(f.corrupted, "corrupted").toBeGreaterThan(0);
      expect(f.delayed, "delayed").toBeGreaterThan(0);
      expect(ch.stats.retransmitted).toBeGreaterThan(0);
      expect(ch.stats.dropped.badMac).toBeGreaterThan(0);
      expect(ch.stats.dropped.replay).toBeGreaterThan(0);
    }
    // Everything is acknowledged in the end: nothing left in flight.
    await Promise.all(
      [routerCh, ...peers.map((p) => p.channel)].map((ch) => until("acknowledgements", () => ch.inFlight === 0)),
    );
  }, 60_000);

  it("says whether a peer acknowledged a message (by its seq), and nothing for a peer it forgot", async () => {
    const { routerCh, peers } = await network({ dealers: 1 });
    const p = peers[0] as Peer;
    p.channel.send(req(-1));
    await until("the router to know the dealer", () => routerCh.linkCount === 1);
    expect(routerCh.lastSeq(p.id)).toBe(0);
    routerCh.send(req(1), undefined, p.id);
    const seq = routerCh.lastSeq(p.id);
    expect(seq).toBeGreaterThan(0);
    expect(routerCh.acknowledged(p.id, seq)).toBe(false);
    await until("the dealer to get it", () => p.got.includes(1));
    // The dealer's acknowledgement rides on its next message.
    p.channel.send(req(-2));
    await until("the acknowledgement", () => routerCh.acknowledged(p.id, seq) === true);
    routerCh.send(req(2), undefined, p.id);
    expect(routerCh.acknowledged(p.id, routerCh.lastSeq(p.id))).toBe(false);
    expect(routerCh.acknowledged(p.id, seq)).toBe(true);
    routerCh.forget(p.id);
    expect(routerCh.acknowledged(p.id, seq)).toBeUndefined();
  });

  it("a channel that does not hold the process still reads every message, in order, and acknowledges it, while its hold switches on and off", async () => {
    const { routerCh, routerGot, peers } = await network({ dealers: 1 });
    const p = peers[0] as Peer;
    p.channel.hold(false);
    p.channel.send(req(-1));
    await until("the router to hear the dealer", () => routerGot.get(p.id.toString())?.length === 1);
    // Switches between holding (a receive in flight) and polling, at random, while messages arrive.
    const flip = setInterval(() => p.channel.hold(Math.random() < 0.5), 1);
    const N = 3000;
    try {
      for (let i = 0; i < N; i += 100) {
        for (const j of range(100, i)) routerCh.send(req(j), undefined, p.id);
        await until("a batch to arrive", () => p.got.length === i + 100);
      }
    } finally {
      clearInterval(flip);
    }
    p.channel.hold(false);
    expect(p.got).toEqual(range(N));
    // Acknowledged while not holding too: nothing is left for the router to send again.
    await until("acknowledgements", () => routerCh.inFlight === 0);
  });

  it("refuses copies and replays of delivered messages, also after the peer was forgotten, and takes a restarted stream", async () => {
    const { key, routerCh, routerGot, endpoint } = await network({ dealers: 0 });
    const id = Buffer.from("raw-peer");
    const dealer = new zmq.Dealer({ routingId: id.toString(), linger: 0 });
    dealer.connect(endpoint);
    open.push(dealer);
    const signer = new Signer(key);
    // A well-behaved stream by hand: each message names the previous one.
    let prev = 0;
    const frame = (rid: number, label: ChannelLabel = "c2h", after = prev) => {
      const body = encodeBody(req(rid), undefined);
      const auth = signer.sign(label, undefined, body, after);
      prev = signer.seq;
      return [TAG, auth, ...body];
    };
    const got = () => routerGot.get("raw-peer") ?? [];
    const refused = () => routerCh.stats.dropped.replay;
    const first = frame(1);
    const second = frame(2);
    const third = frame(3);
    // Out of order: 3 and 2 wait for 1; a copy of 3 while it waits is ignored.
    await dealer.send(third);
    await dealer.send(third);
    await dealer.send(second);
    await dealer.send(first);
    await until("1, 2, 3", () => got().length === 3);
    expect(got()).toEqual([1, 2, 3]);
    expect(refused()).toBe(1); // the copy of 3
    // Copies of delivered messages (a retransmission or a replay, all the same) are refused.
    for (const f of [first, second, third]) await dealer.send(f);
    await until("three refusals", () => refused() === 4);
    // The controller forgets the peer (declared it dead): its old messages are still refused.
    routerCh.forget(id);
    await dealer.send(first);
    await dealer.send(third);
    await until("two more refusals", () => refused() === 6);
    // The peer's stream goes on after the gap in the controller's memory of the link.
    await dealer.send(frame(4));
    await until("4", () => got().length === 4);
    // A stream that starts again (prev 0) is taken, as it is newer than anything delivered...
    const restart = frame(5, "c2h", 0);
    await dealer.send(restart);
    await until("5", () => got().length === 5);
    // ...once: replaying the restart, or an old message made to look like a stream start, does nothing.
    const asStart = (frames: Buffer[]) => {
      const auth = Buffer.from(frames[1] as Buffer);
      auth.writeUInt32BE(0, 24 + 4); // prev := 0 (prev is bytes 24..31 of the auth frame)
      return [frames[0] as Buffer, auth, ...frames.slice(2)];
    };
    await dealer.send(restart);
    await dealer.send(asStart(first)); // its number is old: refused before any crypto
    await until("two more refusals", () => refused() === 8);
    // A new message made to look like a stream start fails its tag: prev is signed.
    const sixth = frame(6);
    await dealer.send(asStart(sixth));
    await until("a bad tag", () => routerCh.stats.dropped.badMac === 1);
    await dealer.send(sixth);
    await until("6", () => got().length === 6);
    expect(got()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(refused()).toBe(8);
  });

  it("a peer that restarts behind the same routing id (a new session) starts over: what was in flight for the old process is dropped", async () => {
    // As the controller's engine socket: a routing id that comes back takes over its old connection.
    const { key, routerCh, routerGot, endpoint } = await network({ dealers: 0, handover: true });
    const id = "restarting-peer";
    // The old process: speaks, then never acknowledges what the controller sends it, and goes away.
    const old = new zmq.Dealer({ routingId: id, linger: 0 });
    old.connect(endpoint);
    const body = encodeBody(req(1), undefined);
    await old.send([TAG, new Signer(key).sign("c2h", undefined, body), ...body]);
    await until("the first process to be heard", () => routerGot.get(id)?.length === 1);
    for (const i of [101, 102, 103]) routerCh.send(req(i), undefined, Buffer.from(id));
    await until("three messages in flight", () => routerCh.inFlight === 3);
    old.close();
    // The new process, same routing id, new session.
    const dealer = new zmq.Dealer({ routingId: id, linger: 0 });
    dealer.connect(endpoint);
    const got: number[] = [];
    const fresh = new Channel<Message, Message>({
      socket: dealer,
      clusterKey: key,
      sendLabel: "c2h",
      recvLabel: "h2c",
      selfId: Buffer.from(id),
      logger: silentLogger(),
      faults: null,
      onMessage: (m) => m.header.type === "request" && got.push(m.header.rid),
    }).start();
    open.push(fresh);
    fresh.send(req(2));
    await until("the new process to be heard", () => routerGot.get(id)?.length === 2);
    expect(routerCh.inFlight).toBe(0);
    routerCh.send(req(201), undefined, Buffer.from(id));
    await until("the new process to get its message", () => got.length === 1);
    expect(got).toEqual([201]);
    await until("its acknowledgement", () => routerCh.inFlight === 0);
  });

  it("holds sends beyond the window of a peer that does not acknowledge (send() is false, drained() waits) until the peer is forgotten", async () => {
    const key = newClusterKey();
    // A controller that never acknowledges: a bare ROUTER.
    const mute = new zmq.Router({ linger: 0 });
    await mute.bind("tcp://127.0.0.1:*");
    open.push(mute);
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(mute.lastEndpoint as string);
    const ch = new Channel<Message, Message>({
      socket: dealer,
      clusterKey: key,
      sendLabel: "c2h",
      recvLabel: "h2c",
      logger: silentLogger(),
      faults: null,
      window: { maxMessages: 3, maxBytes: 1e6 },
    }).start();
    open.push(ch);
    expect([1, 2, 3, 4, 5].map((i) => ch.send(req(i)))).toEqual([true, true, false, false, false]);
    let drained = false;
    void ch.drained().then(() => (drained = true));
    // What is in the window goes out; what is held does not.
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const frames = (await mute.receive()) as Buffer[];
      seen.push(frames.length);
    }
    expect(seen).toEqual([4, 4, 4]); // routing id, marker, auth, header
    expect(drained).toBe(false);
    // Its owner's liveness check sees the peer overdue; it is forgotten, and the backlog goes with it.
    await until("the peer to be overdue", () => ch.overdue(100).length === 1);
    ch.forget();
    await ch.drained();
    expect(drained).toBe(true);
    expect(ch.overdue(0)).toEqual([]);
    expect(ch.send(req(6))).toBe(true);
  });

  it("takes a controller's auth-failure notice as a wrong key only when the controller received exactly what was signed", async () => {
    const key = newClusterKey();
    // Wrong key: the notice echoes our own message, untouched.
    let failed!: () => void;
    const keyRefused = new Promise<void>((resolve) => (failed = resolve));
    const wrong = await network({ dealers: 1, key, dealerKey: newClusterKey(), onAuthFailed: () => failed() });
    wrong.peers[0]?.channel.send(req(1));
    await keyRefused;
    expect(wrong.routerCh.stats.dropped.badMac).toBe(1);

    // Right key, every message corrupted on the way: refused, noticed, and not taken for a wrong key.
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    let wrongKey = false;
    const corrupt = await network({
      dealers: 1,
      key,
      dealerFaults: { drop: 0, dup: 0, corrupt: 1, delay: [0, 0], seed: 3 },
      logger,
      onAuthFailed: () => (wrongKey = true),
    });
    corrupt.peers[0]?.channel.send(req(1));
    await until("the notice to be weighed", () => lines.some((l) => l.includes("altered on the way")));
    expect(wrongKey).toBe(false);
    expect(corrupt.routerCh.stats.dropped.badMac + corrupt.routerCh.stats.dropped.malformed).toBeGreaterThan(0);
  });
});
