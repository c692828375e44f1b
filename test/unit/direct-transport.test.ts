import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger, type CommAbortMsg, type CommMsg, type Part } from "@ptcluster/protocol";
import { DirectTransport } from "../../packages/engine/src/supervisor/direct-transport.js";
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

async function peer(id: number) {
  const got: Array<CommMsg | CommAbortMsg> = [];
  const frames: number[] = [];
  const ep = new PeerEndpoint({
    ip: "127.0.0.1",
    key,
    id: () => id,
    onComm: (m, p) => {
      got.push(m);
      const f = p[0]?.frames[0];
      if (f) frames.push(f[0]! + (f[1]! << 8));
    },
    logger,
  });
  await ep.start();
  closers.push(() => ep.close());
  return { ep, got, frames };
}

function sender(address: () => string | undefined, helloTimeoutMs = 2_000) {
  const relayed: CommOutMsg[] = [];
  const lost: number[] = [];
  const t: DirectTransport = new DirectTransport({
    key,
    uuid: randomBytes(16).toString("hex"),
    relay: (m) => relayed.push(m),
    // The controller answers a lookup after a turn of the event loop, as over the network.
    lookup: (id) => setImmediate(() => t.endpointOf(id, address())),
    linkLost: (id) => lost.push(id),
    helloTimeoutMs,
    logger,
  });
  closers.push(() => t.close());
  return { t, relayed, lost };
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

  it("a direct link that stops delivering fails the peer's groups here, and later messages take the relay", async () => {
    const b = await peer(2);
    const a = sender(() => b.ep.address);
    a.t.send(msg(0), [part(0)]);
    await waitFor(() => b.got.length === 1, { what: "the first message direct" });
    await b.ep.close();
    a.t.send(msg(1), [part(1)]);
    await waitFor(
      () => {
        a.t.checkLinks(20);
        return a.lost.length > 0;
      },
      { what: "the link to be declared lost" },
    );
    expect(a.lost).toEqual([2]);
    a.t.send(msg(2), [part(2)]);
    expect(a.relayed.map((m) => (m as CommMsg).ch)).toEqual(["u:2"]);
    expect(a.t.counts).toEqual({ direct: 2, relayed: 1 });
  });
});
