import { randomBytes } from "node:crypto";
import * as zmq from "zeromq";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger, type CommAbortMsg, type CommMsg, type Part } from "@ptcluster/protocol";
import { DirectTransport, SeenLinks } from "../../packages/engine/src/supervisor/direct-transport.js";
import { PeerEndpoint } from "../../packages/engine/src/supervisor/peer-endpoint.js";
import type { CommOutMsg } from "../../packages/engine/src/supervisor/comm-transport.js";
import { waitFor } from "../helpers/wait.js";

/**
 * The supervisor's direct `engine.comm` path on real ZeroMQ sockets in one process: a peer's
 * endpoint (ROUTER + authenticated channel) and the transport that dials it, with the relay and
 * the controller's lookup played by the test.
 */
const key = randomBytes(32);
const logger = createLogger({ name: "test", level: "silent" });
const msg = (i: number, to = 2): CommMsg => ({ type: "comm", g: "g", to, from: 0, ch: `u:${i}`, pf: [1] });
const part = (i: number): Part => ({ body: Buffer.from([0xc0]), frames: [Buffer.from([i & 0xff, i >> 8])] });
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** A peer engine's endpoint; `deliver` is what its supervisor does with a message from either path. */
async function peer(id: number, curve = false) {
  const got: Array<CommMsg | CommAbortMsg> = [];
  const frames: number[] = [];
  const seen = new SeenLinks();
  const deliver = (m: CommMsg | CommAbortMsg, p: Part[]) => {
    if (!seen.fresh(m)) return;
    got.push(m);
    const f = p[0]?.frames[0];
    if (f) frames.push(f[0]! + (f[1]! << 8));
  };
  const ep = new PeerEndpoint({ ip: "127.0.0.1", key, id: () => id, onComm: deliver, curve, logger });
  await ep.start();
  closers.push(() => ep.close());
  return { ep, got, frames, deliver };
}

function sender(
  address: () => string | undefined,
  helloTimeoutMs = 2_000,
  relayTo?: (m: CommMsg | CommAbortMsg, p: Part[]) => void,
  curve?: { keys: { publicKey: string; secretKey: string }; server: () => string | undefined },
) {
  const relayed: CommOutMsg[] = [];
  const t: DirectTransport = new DirectTransport({
    key,
    uuid: randomBytes(16).toString("hex"),
    relay: (m, p) => {
      relayed.push(m);
      relayTo?.(m, p);
    },
    // The controller answers a lookup after a turn of the event loop, as over the network.
    lookup: (id) => setImmediate(() => t.endpointOf(id, address(), curve?.server())),
    curve: curve?.keys,
    helloTimeoutMs,
    logger,
  });
  closers.push(() => t.close());
  return { t, relayed };
}

describe("DirectTransport and PeerEndpoint (engine.comm direct paths)", () => {
  it("sends to a peer that answers its hello directly, in order, including what was sent before the answer", async () => {
    const b = await peer(2);
    const a = sender(() => b.ep.address);
    for (let i = 0; i < 300; i++) a.t.send(msg(i), [part(i)]);
    a.t.send({ type: "comm_abort", g: "g", to: [2, 5], error: { code: "X", message: "m" } }, []);
    await waitFor(() => b.got.length === 301, { what: "301 messages at the peer" });
    expect(b.got.slice(0, 300).map((m) => (m as CommMsg).ch)).toEqual(Array.from({ length: 300 }, (_, i) => `u:${i}`));
    expect(b.frames).toEqual(Array.from({ length: 300 }, (_, i) => i));
    // The abort's share for engine 2 came behind its messages; engine 5's went to its own path.
    expect(b.got[300]).toMatchObject({ type: "comm_abort", to: [2] });
    expect(a.t.counts).toEqual({ direct: 301, relayed: 1 });
    expect(a.relayed).toEqual([{ type: "comm_abort", g: "g", to: [5], error: { code: "X", message: "m" } }]);
  });

  it("takes the relay when the endpoint belongs to another engine (a stale address), and when nobody answers", async () => {
    const other = await peer(3);
    const stale = sender(() => other.ep.address);
    for (let i = 0; i < 5; i++) stale.t.send(msg(i), [part(i)]);
    await waitFor(() => stale.relayed.length === 5, { what: "the relay to be chosen" });
    expect(stale.relayed.map((m) => (m as CommMsg).ch)).toEqual(["u:0", "u:1", "u:2", "u:3", "u:4"]);
    expect(other.got).toEqual([]);
    // No endpoint known, and an endpoint where nothing listens (the hello times out).
    const none = sender(() => undefined);
    none.t.send(msg(0), [part(0)]);
    await waitFor(() => none.relayed.length === 1, { what: "the relay with no endpoint" });
    const deaf = sender(() => "127.0.0.1:1", 50);
    deaf.t.send(msg(0), [part(0)]);
    deaf.t.send(msg(1), [part(1)]);
    await waitFor(() => deaf.relayed.length === 2, { what: "the relay after the hello timed out" });
    expect(deaf.t.counts).toEqual({ direct: 0, relayed: 2 });
  });

  it("a direct link that stops delivering: what it did not acknowledge, and what follows, goes by relay, each message once and in order", async () => {
    const b = await peer(2);
    // The relay delivers to the same engine (its supervisor drops copies it already had).
    const a = sender(() => b.ep.address, 2_000, b.deliver);
    for (let i = 0; i < 200; i++) a.t.send(msg(i), [part(i)]);
    await waitFor(() => b.got.length >= 100, { what: "messages at the peer directly" });
    // The endpoint goes (a peer unreachable on its direct address): some were delivered but not
    // yet acknowledged, some not delivered.
    await b.ep.close();
    for (let i = 200; i < 250; i++) a.t.send(msg(i), [part(i)]);
    await waitFor(
      () => {
        a.t.checkLinks(20);
        return a.relayed.length > 0;
      },
      { what: "the link to be given up" },
    );
    for (let i = 250; i < 260; i++) a.t.send(msg(i), [part(i)]);
    expect(b.frames).toEqual(Array.from({ length: 260 }, (_, i) => i));
    expect(b.got.map((m) => (m as CommMsg).ch)).toEqual(Array.from({ length: 260 }, (_, i) => `u:${i}`));
    expect(a.relayed.at(-1)).toMatchObject({ ch: "u:259" });
    expect(a.t.counts.direct).toBe(250);
  });

  it("with CURVE: direct when the peer's server key is the one advertised; the relay with a wrong key or none", async () => {
    const b = await peer(2, true);
    const keys = zmq.curveKeyPair();
    const good = sender(() => b.ep.address, 2_000, undefined, { keys, server: () => b.ep.publicKey });
    good.t.send(msg(0), [part(0)]);
    await waitFor(() => b.got.length === 1, { what: "a message over CURVE" });
    expect(good.t.counts).toEqual({ direct: 1, relayed: 0 });
    const wrongKey = zmq.curveKeyPair().publicKey;
    const wrong = sender(() => b.ep.address, 100, undefined, { keys, server: () => wrongKey });
    wrong.t.send(msg(1), [part(1)]);
    const none = sender(() => b.ep.address, 2_000, undefined, { keys, server: () => undefined });
    none.t.send(msg(2), [part(2)]);
    await waitFor(() => wrong.relayed.length === 1 && none.relayed.length === 1, { what: "the relay" });
    expect(b.got).toHaveLength(1);
  });

  it("SeenLinks delivers each numbered message once per link and leaves unnumbered ones alone", () => {
    const s = new SeenLinks(2);
    const m = (lid: string, n: number): CommMsg => ({ ...msg(0), ps: [lid, n] });
    expect([1, 2, 2, 1, 3].map((n) => s.fresh(m("x", n)))).toEqual([true, true, false, false, true]);
    expect(s.fresh(msg(0))).toBe(true);
    expect(s.fresh(msg(0))).toBe(true);
    // Bounded: past `max` links the oldest is forgotten.
    expect([s.fresh(m("y", 1)), s.fresh(m("z", 1)), s.fresh(m("x", 1))]).toEqual([true, true, true]);
  });
});
