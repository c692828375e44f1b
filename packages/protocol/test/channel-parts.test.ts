import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type * as zmq from "zeromq";
import {
  AckScheduler,
  ACK_DELAY_MS,
  ACK_EVERY_BYTES,
  ACK_EVERY_MESSAGES,
  type AckDebt,
} from "../src/transport/ack-scheduler.js";
import { AuthFailureNotices, digest, noticeProvesWrongKey } from "../src/transport/auth-notice.js";
import { GapBuffer } from "../src/transport/gap-buffer.js";
import { RetransmitClock, TICK_MS } from "../src/transport/retransmit-clock.js";
import { SendWindow, outgoing, type Outgoing } from "../src/transport/send-window.js";
import { IDLE_POLL_MS, SocketOwner } from "../src/transport/socket-owner.js";
import { AUTH_FAILED, TAG, silentLogger } from "../src/index.js";

// The parts of a channel, each on its own: no sockets (a scripted stand-in where one is needed),
// fake timers where timing is the rule under test.

const msg = (seq: number, bytes = 10): Outgoing => outgoing([Buffer.alloc(bytes)], seq, bytes);

describe("SendWindow", () => {
  it("reports backpressure once the window is full and releases held messages in order, only as room comes back", () => {
    const w = new SendWindow({ maxMessages: 2, maxBytes: 100 });
    expect([1, 2, 3, 4].map((s) => w.admit(msg(s)))).toEqual([true, true, false, false]);
    expect([w.unacked.length, w.held.length, w.hasRoom()]).toEqual([2, 2, false]);
    // An acknowledgement of nothing new releases nothing.
    expect(w.acknowledge(0, 0)).toBeUndefined();
    // One acknowledged: one room, the oldest held goes first.
    expect(w.acknowledge(1, 0)?.map((m) => m.seq)).toEqual([3]);
    expect(w.acknowledge(3, 0)?.map((m) => m.seq)).toEqual([4]);
    expect([w.unacked.length, w.held.length, w.unackedBytes]).toEqual([1, 0, 10]);
  });

  it("counts bytes too, yet lets one message larger than the window go when nothing is in flight", () => {
    const w = new SendWindow({ maxMessages: 100, maxBytes: 100 });
    expect(w.admit(msg(1, 500))).toBe(true);
    expect(w.admit(msg(2, 1))).toBe(false);
    expect(w.acknowledge(1, 0)?.map((m) => m.seq)).toEqual([2]);
    expect(w.admit(msg(3, 98))).toBe(true); // 1 byte in flight, under the cap before it
    expect(w.admit(msg(4, 1))).toBe(true); // 99 bytes: still under
    expect(w.admit(msg(5, 1))).toBe(false); // 100: full
  });

  it("resends on a reported gap only what is older than the gap and not just sent", () => {
    const w = new SendWindow({ maxMessages: 100, maxBytes: 1e9 });
    const sent = [1, 2, 3].map((s) => msg(s));
    for (const m of sent) {
      w.admit(m);
      m.sentAt = m.firstSentAt = 1000;
    }
    expect(w.gapReported(3, 1005)).toBeUndefined(); // sent 5 ms ago: perhaps still on its way
    expect(w.gapReported(1, 1100)).toBeUndefined(); // the peer keeps nothing newer than the head
    expect(w.gapReported(3, 1100)?.seq).toBe(1);
    expect(sent[0]?.retransmits).toBe(1);
  });
});

describe("GapBuffer", () => {
  const e = (seq: number, bytes = 10) => ({ seq, frames: [], bytes });

  it("keeps what came after a gap and releases it in order once the missing message is delivered", () => {
    const g = new GapBuffer({ maxMessages: 10, maxBytes: 1000 });
    // Stream 1 → 2 → 3 → 4; 1 is missing, 4 and 3 arrive first (out of order), then a copy of 3.
    expect(g.keep(3, e(4))).toBe("kept");
    expect(g.keep(2, e(3))).toBe("kept");
    expect(g.keep(2, e(3))).toBe("copy");
    expect([g.size, g.high]).toEqual([2, 4]);
    // 1 arrives and is delivered elsewhere; 2 is still missing: nothing follows 1 here.
    expect(g.take(1)).toBeUndefined();
    expect(g.size).toBe(2);
    // 2 is delivered: 3 then 4 come out, in order, and the gap is closed.
    const released: number[] = [];
    for (let next = g.take(2); next; next = g.take(next.seq)) released.push(next.seq);
    expect(released).toEqual([3, 4]);
    expect([g.size, g.high]).toEqual([0, 0]);
  });

  it("refuses beyond its limits (one message always fits), and drops what can never be delivered", () => {
    const g = new GapBuffer({ maxMessages: 2, maxBytes: 100 });
    expect(g.keep(10, e(11, 500))).toBe("kept"); // larger than the cap, but alone
    expect(g.keep(11, e(12, 1))).toBe("full"); // bytes
    g.clear();
    expect([g.keep(10, e(11)), g.keep(20, e(21)), g.keep(30, e(31))]).toEqual(["kept", "kept", "full"]); // count
    // Delivery moved past 10 and 20 by another way (the sender gave up that stream): both go.
    expect(g.take(25)).toBeUndefined();
    expect([g.size, g.high]).toEqual([0, 0]);
  });
});

describe("AckScheduler", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const debt = (): AckDebt => ({ ackOwed: 0, ackOwedBytes: 0, lastActive: 0, forgotten: false });
  function scheduler() {
    const sent: AckDebt[] = [];
    const acks = new AckScheduler<AckDebt>((link) => {
      link.ackOwed = 0;
      link.ackOwedBytes = 0;
      sent.push(link);
    });
    return { acks, sent };
  }

  it(`waits ${ACK_DELAY_MS} ms for a message to ride on, counted from the first message owed, per peer`, () => {
    const { acks, sent } = scheduler();
    const a = debt();
    const b = debt();
    acks.owe(a, 10);
    vi.advanceTimersByTime(10);
    acks.owe(a, 10); // a second message does not push a's deadline back
    acks.owe(b, 10);
    vi.advanceTimersByTime(ACK_DELAY_MS - 10 - 1);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([a]);
    // b began to be owed 10 ms later: its own deadline, not a's.
    vi.advanceTimersByTime(9);
    expect(sent).toEqual([a]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([a, b]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("sends nothing alone for a debt a message settled meanwhile (the acknowledgement rode on it), or for a forgotten peer", () => {
    const { acks, sent } = scheduler();
    const rode = debt();
    const gone = debt();
    acks.owe(rode, 10);
    acks.owe(gone, 10);
    rode.ackOwed = 0; // what the channel does when it sends this peer a message
    gone.forgotten = true;
    vi.advanceTimersByTime(ACK_DELAY_MS * 2);
    expect(sent).toEqual([]);
  });

  it(`acknowledges at once after ${ACK_EVERY_MESSAGES} messages or ${ACK_EVERY_BYTES / 1024} KiB, without waiting for the timer`, () => {
    const { acks, sent } = scheduler();
    const many = debt();
    for (let i = 0; i < ACK_EVERY_MESSAGES - 1; i++) acks.owe(many, 1);
    expect(sent).toEqual([]);
    acks.owe(many, 1);
    expect(sent).toEqual([many]);
    const big = debt();
    acks.owe(big, ACK_EVERY_BYTES - 1);
    expect(sent).toEqual([many]);
    acks.owe(big, 1);
    expect(sent).toEqual([many, big]);
  });

  it("flushAll sends every debt now (on close), and stop leaves no timer", () => {
    const { acks, sent } = scheduler();
    const a = debt();
    acks.owe(a, 1);
    acks.flushAll();
    expect(sent).toEqual([a]);
    acks.owe(debt(), 1);
    acks.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("RetransmitClock", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("resends the oldest late message of each window, backs off, and stops once nothing is in flight", () => {
    const w = new SendWindow({ maxMessages: 10, maxBytes: 1e9 });
    const resent: number[] = [];
    const clock = new RetransmitClock(
      () => [w],
      (out) => {
        resent.push(out.seq);
        out.sentAt = Date.now(); // as the writer stamps it
      },
      silentLogger(),
      "c2h",
    );
    const m = msg(1, 0); // no bytes: no transfer allowance on top of the timeout
    w.admit(m);
    m.sentAt = m.firstSentAt = Date.now();
    clock.start();
    vi.advanceTimersByTime(250 - TICK_MS); // the timeout is 250 ms before any round trip is known
    expect(resent).toEqual([]);
    vi.advanceTimersByTime(TICK_MS);
    expect(resent).toEqual([1]);
    vi.advanceTimersByTime(450); // the timeout doubled: 500 ms
    expect(resent).toEqual([1]);
    vi.advanceTimersByTime(TICK_MS);
    expect(resent).toEqual([1, 1]);
    w.acknowledge(1, Date.now());
    vi.advanceTimersByTime(TICK_MS);
    expect(clock.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("after a stall of the event loop, looks once more before resending (acknowledgements may wait unread)", () => {
    const w = new SendWindow({ maxMessages: 10, maxBytes: 1e9 });
    const resent: number[] = [];
    const clock = new RetransmitClock(
      () => [w],
      (out) => resent.push(out.seq),
      silentLogger(),
      "c2h",
    );
    const m = msg(1);
    w.admit(m);
    m.sentAt = Date.now();
    clock.start();
    vi.setSystemTime(Date.now() + 1000); // the event loop was blocked for a second
    clock.tick();
    expect(resent).toEqual([]);
    clock.tick(); // the next tick, on time, resends
    expect(resent).toEqual([1]);
    clock.stop();
  });
});

describe("AuthFailureNotices", () => {
  const peer = Buffer.from("peer");
  const frames = [peer, TAG, Buffer.from("auth-frame"), Buffer.from("header")];

  it("tells a peer at most once a second, with the auth frame it sent and a digest of what arrived", () => {
    const notices = new AuthFailureNotices();
    const n = notices.notice(peer, frames, 10_000);
    expect(n?.frames).toEqual([peer, TAG, AUTH_FAILED, frames[2], digest(frames, 2)]);
    expect(notices.notice(peer, frames, 10_999)).toBeUndefined();
    expect(notices.notice(Buffer.from("other"), frames, 10_999)).toBeDefined();
    expect(notices.notice(peer, frames, 11_001)).toBeDefined();
  });

  it("is believed only when it proves the controller received exactly what we sent", () => {
    // What the peer sent (a DEALER: no routing frame), and the notice the controller makes of it.
    const sent = outgoing([TAG, Buffer.from("auth-frame"), Buffer.from("header")], 1, 6);
    const received = [peer, ...sent.frames];
    const notice = new AuthFailureNotices().notice(peer, received, 10_000)?.frames as Buffer[];
    expect(noticeProvesWrongKey(notice[3], notice[4], [sent])).toBe(true);
    // Altered on the way: the digest does not match what was sent.
    const altered = [peer, TAG, Buffer.from("auth-frame"), Buffer.from("HEADER")];
    const n2 = new AuthFailureNotices().notice(peer, altered, 10_000)?.frames as Buffer[];
    expect(noticeProvesWrongKey(n2[3], n2[4], [sent])).toBe(false);
    // About a message we do not have (forged, or long acknowledged): not believed.
    expect(noticeProvesWrongKey(notice[3], notice[4], [])).toBe(false);
    expect(noticeProvesWrongKey(undefined, notice[4], [sent])).toBe(false);
  });
});

describe("SocketOwner", () => {
  /** A stand-in socket: sends complete when the test says so; receives what the test pushes. */
  function fakeSocket() {
    const sends: Array<{ frames: Buffer[]; done: (err?: Error) => void }> = [];
    const inbox: Buffer[][] = [];
    let receiving: ((frames: Buffer[]) => void) | undefined;
    let receives = 0;
    const socket = {
      closed: false,
      get readable() {
        return inbox.length > 0;
      },
      send: (frames: Buffer[]) =>
        new Promise<void>((resolve, reject) => sends.push({ frames, done: (err) => (err ? reject(err) : resolve()) })),
      receive: () => {
        receives++;
        const next = inbox.shift();
        return next ? Promise.resolve(next) : new Promise<Buffer[]>((resolve) => (receiving = resolve));
      },
      close() {
        this.closed = true;
      },
    };
    const push = (frames: Buffer[]) => {
      if (receiving) {
        const r = receiving;
        receiving = undefined;
        r(frames);
      } else inbox.push(frames);
    };
    return { socket, sends, push, receives: () => receives };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  it("writes one message at a time, in order, skips what is no longer to be sent, and says when it is idle", async () => {
    const { socket, sends } = fakeSocket();
    const stats = { sent: 0, dropped: { unroutable: 0 } };
    let idle = 0;
    const owner = new SocketOwner(socket as unknown as zmq.Socket, {
      logger: silentLogger(),
      stats,
      onFrames: () => {},
      take: (out) => !out.done,
      onIdle: () => idle++,
    });
    const [a, b, c] = [msg(1), msg(2), msg(3)];
    owner.enqueue(a);
    owner.enqueue(b);
    owner.enqueue(c);
    expect(a.queued).toBe(false); // taken by the writer at once
    b.done = true; // acknowledged while it waited
    await tick();
    expect(sends.length).toBe(1); // never two sends in flight
    expect(owner.idle).toBe(false);
    sends[0]?.done();
    await tick();
    expect(sends.map((s) => s.frames)).toEqual([a.frames, c.frames]);
    // A peer that is not connected: counted, and the writer goes on.
    sends[1]?.done(Object.assign(new Error("Host unreachable"), { code: "EHOSTUNREACH" }));
    await tick();
    expect([stats.sent, stats.dropped.unroutable, owner.idle, idle]).toEqual([1, 1, true, 1]);
    await owner.close();
  });

  it("while not holding, keeps no receive in flight on an empty socket, yet reads what arrives; holding again reads at once", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const { socket, push, receives } = fakeSocket();
      const got: string[] = [];
      const owner = new SocketOwner(socket as unknown as zmq.Socket, {
        logger: silentLogger(),
        stats: { sent: 0, dropped: { unroutable: 0 } },
        onFrames: (f) => got.push(String(f[0])),
        take: () => true,
        onIdle: () => {},
      });
      owner.hold(false);
      owner.start();
      await vi.advanceTimersByTimeAsync(IDLE_POLL_MS * 3);
      expect(receives()).toBe(0);
      push([Buffer.from("one")]);
      await vi.advanceTimersByTimeAsync(IDLE_POLL_MS);
      expect(got).toEqual(["one"]);
      expect(receives()).toBe(1); // only for what was there
      owner.hold(true);
      await vi.advanceTimersByTimeAsync(0);
      expect(receives()).toBe(2); // a receive in flight again, without waiting for the poll
      push([Buffer.from("two")]);
      await vi.advanceTimersByTimeAsync(0);
      expect(got).toEqual(["one", "two"]);
      const closing = owner.close();
      push([Buffer.from("after close")]);
      await closing;
      expect(socket.closed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
