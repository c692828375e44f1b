import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticationError, connect, type Client, type ClusterStatus } from "@ptcluster/client";
import {
  AUTH_FRAME_BYTES,
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  Signer,
  TAG,
  encodeBody,
  encodeValue,
  newClusterKey,
  profilePaths,
  readConnectionFile,
  type ConnectionInfo,
  type RegisterMsg,
} from "@ptcluster/protocol";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { RawPeer, applySubmit, resultOf, signedFrames } from "./helpers/raw-peer.js";

// Frame authentication end to end: what a peer without the key, or with a copy of someone else's
// signed traffic, can make a real cluster do. Nothing here waits on a timer: "was not executed" is
// shown by a later message on the same connection (ZeroMQ keeps per-connection order, the hub
// handles one connection's messages in order, and a concurrency-1 engine runs its queue in order),
// and "was processed" by the hub's AUTH_FAILED notice to the offending peer.
//
// Each test also checks the refused-message counters of the hub's `status` reply, read after the
// hub has provably handled the messages in question (same causal chain as above).
describe("security", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  let rc: Client;
  let engineId: number;
  let clientInfo: ConnectionInfo;
  let engineInfo: ConnectionInfo;
  let key: Buffer;
  const peers: Array<{ peer: RawPeer; bye: boolean }> = [];

  /** A raw DEALER on the client port, connected (signed `connect`) unless `connected` is false. */
  async function clientPeer(connected = true): Promise<RawPeer> {
    const peer = new RawPeer(key, clientInfo.host, clientInfo.port);
    peers.push({ peer, bye: connected });
    if (connected) await peer.connect();
    return peer;
  }
  function enginePeer(): RawPeer {
    const peer = new RawPeer(key, engineInfo.host, engineInfo.port);
    peers.push({ peer, bye: false });
    return peer;
  }
  /** The hub's refused-message counters, per socket. */
  const dropped = async (): Promise<ClusterStatus["dropped"]> => (await rc.status()).dropped;
  /** What the counters grew by since `before`. */
  const grew = (before: ClusterStatus["dropped"], after: ClusterStatus["dropped"]) => ({
    client: {
      malformed: after.client.malformed - before.client.malformed,
      badMac: after.client.badMac - before.client.badMac,
      replay: after.client.replay - before.client.replay,
    },
    engine: {
      malformed: after.engine.malformed - before.engine.malformed,
      badMac: after.engine.badMac - before.engine.badMac,
      replay: after.engine.replay - before.engine.replay,
    },
  });
  const none = { malformed: 0, badMac: 0, replay: 0 };
  /** Reads a global of the engine namespace through a normal client. */
  const engineGlobal = (name: string) =>
    rc.engine(engineId).applySync((n: string) => (globalThis as Record<string, unknown>)[n], name);

  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 1 });
    rc = await cluster.connect();
    engineId = cluster.ids[0] as number;
    const paths = profilePaths(cluster.profile, cluster.clusterId);
    clientInfo = readConnectionFile(paths.clientFile, "client");
    engineInfo = readConnectionFile(paths.engineFile, "engine");
    key = Buffer.from(clientInfo.key, "hex");
  });

  afterAll(async () => {
    for (const { peer, bye } of peers) await peer.close(bye);
    await rc?.close();
    await cluster?.stop();
    tmp.cleanup();
  });

  it("a client whose connection file has another key gets AuthenticationError within 3 s", async () => {
    const file = join(tmp.dir, "wrong-key.json");
    const info = JSON.parse(
      readFileSync(profilePaths(cluster.profile, cluster.clusterId).clientFile, "utf8"),
    ) as ConnectionInfo;
    writeFileSync(file, JSON.stringify({ ...info, key: randomBytes(32).toString("hex") }), { mode: 0o600 });
    chmodSync(file, 0o600);
    const before = await dropped();
    const started = Date.now();
    // A longer timeout than the bound: the error must come from the refusal, not from the timeout.
    const err = await connect({ file, timeout: 10_000 }).then(
      async (c) => {
        await c.close();
        return new Error("connected with the wrong key");
      },
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).code).toBe("ERR_PTC_AUTH");
    expect(await rc.engine(engineId).applySync(() => "still serving")).toBe("still serving");
    expect(grew(before, await dropped())).toEqual({ client: { ...none, badMac: 1 }, engine: none });
  });

  it("a submit whose frames were tampered after signing is not executed", async () => {
    const peer = await clientPeer();
    const src = "(n, bytes) => { globalThis.hit = (globalThis.hit ?? 0) + n + bytes[0]; return globalThis.hit; }";
    // Body: the argument 1 becomes 50 (same length, one byte differs).
    const inline = applySubmit(1, engineId, src, [1, new Uint8Array(4)]);
    const evilBody = encodeValue([[50, new Uint8Array(4)]]).body;
    const goodBody = inline.parts[0]?.body as Buffer;
    expect(evilBody.length).toBe(goodBody.length);
    expect([...evilBody].filter((b, i) => b !== goodBody[i])).toHaveLength(1);
    const tamperedBody = peer.sign(inline.header, inline.parts);
    tamperedBody[3] = Buffer.from(evilBody);
    // A binary frame (>= 1 KiB travels on its own): its first byte 0 becomes 50.
    const binary = applySubmit(2, engineId, src, [0, new Uint8Array(2048)]);
    expect(binary.header.pf).toEqual([1]);
    const tamperedBinary = peer.sign(binary.header, binary.parts);
    const frame = Buffer.from(tamperedBinary[4] as Buffer);
    frame[0] = 50;
    tamperedBinary[4] = frame;
    // The header: the function source shipped in it adds 9 instead of 0.
    const zeroSrc = "() => { globalThis.hit = (globalThis.hit ?? 0) + 0; return 0; }";
    const viaHeader = applySubmit(3, engineId, zeroSrc, []);
    const tamperedHeader = peer.sign(viaHeader.header, viaHeader.parts);
    const header = Buffer.from(tamperedHeader[2] as Buffer);
    const at = header.indexOf("+ 0;");
    expect(at).toBeGreaterThan(0);
    header[at + 2] = "9".charCodeAt(0);
    tamperedHeader[2] = header;

    const before = await dropped();
    for (const frames of [tamperedBody, tamperedBinary, tamperedHeader]) await peer.sendRaw(frames);
    const probe = applySubmit(4, engineId, "() => globalThis.hit ?? 0", []);
    await peer.send(probe.header, probe.parts);
    expect(await peer.result(4)).toEqual({ ok: true, value: 0 });
    expect(peer.authFailedNotices).toBeGreaterThanOrEqual(1); // the hub told the peer its signatures fail
    expect(await engineGlobal("hit")).toBeUndefined();
    expect(grew(before, await dropped())).toEqual({ client: { ...none, badMac: 3 }, engine: none });

    // Control: the same submit, correctly signed, does run.
    const control = applySubmit(5, engineId, src, [1, new Uint8Array(2048)]);
    await peer.send(control.header, control.parts);
    expect(await peer.result(5)).toEqual({ ok: true, value: 1 });
    expect(await engineGlobal("hit")).toBe(1);
  });

  it("a signed submit replayed on the same connection or from a new one executes exactly once", async () => {
    const a = await clientPeer();
    const src = "() => { globalThis.replayHit = (globalThis.replayHit ?? 0) + 1; return globalThis.replayHit; }";
    const submit = applySubmit(1, engineId, src, []);
    const before = await dropped();
    const frames = await a.send(submit.header, submit.parts);
    expect(await a.result(1)).toEqual({ ok: true, value: 1 });

    await a.sendRaw(frames); // replay on the same connection
    const probeA = applySubmit(2, engineId, "() => globalThis.replayHit", []);
    await a.send(probeA.header, probeA.parts);
    const afterA = await a.receiveType("results");
    expect(afterA.header.results.map((r) => r.id)).toEqual([2]);
    expect(resultOf(afterA, 2)).toEqual({ ok: true, value: 1 });

    // A second, properly connected peer replays A's frames: only the session/sequence check stops it.
    const b = await clientPeer();
    await b.sendRaw(frames);
    const probeB = applySubmit(2, engineId, "() => globalThis.replayHit", []);
    await b.send(probeB.header, probeB.parts);
    const afterB = await b.receiveType("results");
    expect(afterB.header.results.map((r) => r.id)).toEqual([2]);
    expect(resultOf(afterB, 2)).toEqual({ ok: true, value: 1 });
    expect(a.authFailedNotices + b.authFailedNotices).toBe(0); // replays are dropped silently, not as bad MACs

    expect(await engineGlobal("replayHit")).toBe(1);
    expect(grew(before, await dropped())).toEqual({ client: { ...none, replay: 2 }, engine: none });
  });

  it("random bytes and unsigned frames on the client and engine ports are dropped, and the cluster keeps serving", async () => {
    const idsBefore = rc.ids;
    const garbage: Buffer[][] = [
      [randomBytes(1)],
      [randomBytes(100)],
      [randomBytes(40), randomBytes(40), randomBytes(40)],
      [Buffer.alloc(0)],
      [randomBytes(1024 * 1024)],
      [TAG],
      [TAG, randomBytes(40)],
      [TAG, Buffer.alloc(0), Buffer.alloc(0)],
    ];
    const src = "() => { globalThis.garbageHit = (globalThis.garbageHit ?? 0) + 1; return 1; }";
    const submit = applySubmit(1, engineId, src, []);
    const unsignedSubmit = encodeBody(submit.header, submit.parts);
    const register: RegisterMsg = {
      type: "register",
      v: PROTOCOL_VERSION,
      pkg: PACKAGE_VERSION,
      uuid: "intruder",
      host: "intruder",
      pid: 1,
      node: process.version,
      concurrency: 1,
    };

    const before = await dropped();
    // Client port: a connected peer sends garbage, then unsigned submits (no auth frame, a short one,
    // then a well-sized random one: a bad MAC, which the hub answers with AUTH_FAILED).
    const c = await clientPeer();
    for (const frames of [
      ...garbage,
      [TAG, ...unsignedSubmit],
      [TAG, randomBytes(AUTH_FRAME_BYTES - 1), ...unsignedSubmit],
      [TAG, randomBytes(AUTH_FRAME_BYTES), ...unsignedSubmit],
    ]) {
      await c.sendRaw(frames);
    }
    expect((await c.receive()).kind).toBe("auth-failed");
    const probe = applySubmit(2, engineId, "() => globalThis.garbageHit ?? 0", []);
    await c.send(probe.header, probe.parts);
    expect(await c.result(2)).toEqual({ ok: true, value: 0 });

    // A peer that never connected, signing with a key of its own.
    const stranger = await clientPeer(false);
    await stranger.sendRaw(signedFrames(new Signer(newClusterKey()), "c2h", submit.header, submit.parts));
    expect((await stranger.receive()).kind).toBe("auth-failed");

    // Engine port: garbage and an unsigned registration; then a registration signed with the right
    // key for the wrong channel (a client's label), on a second peer since notices are rate-limited.
    const e1 = enginePeer();
    const unsignedRegister = encodeBody(register, undefined);
    for (const frames of [
      ...garbage,
      [TAG, ...unsignedRegister],
      [TAG, randomBytes(AUTH_FRAME_BYTES), ...unsignedRegister],
    ])
      await e1.sendRaw(frames);
    expect((await e1.receive()).kind).toBe("auth-failed");
    const e2 = enginePeer();
    await e2.sendRaw(signedFrames(new Signer(key), "c2h", register));
    expect((await e2.receive()).kind).toBe("auth-failed");

    // Every garbage message and the unsigned ones without a well-sized auth frame are malformed; the
    // rest fail authentication.
    expect(grew(before, await dropped())).toEqual({
      client: { malformed: garbage.length + 2, badMac: 2, replay: 0 },
      engine: { malformed: garbage.length + 1, badMac: 2, replay: 0 },
    });

    // Raw TCP bytes that are not a ZMTP 3 greeting: one stream libzmq takes for a ZMTP 3 peer (0xFF
    // first), one it takes for a ZMTP 1.0 peer, whose random length-prefixed frames become messages.
    for (const port of [clientInfo.port, engineInfo.port]) {
      for (const first of [0xff, 0x05]) await rawTcpGarbage(clientInfo.host, port, first);
    }

    const status = await rc.status();
    expect(status.engines.map((e) => e.id)).toEqual(idsBefore);
    expect(status.engines.map((e) => e.host)).not.toContain("intruder");
    expect(rc.ids).toEqual(idsBefore);
    expect(await rc.view().applySync((x: number) => x * 2, 21)).toEqual(idsBefore.map(() => 42));
    expect(await engineGlobal("garbageHit")).toBeUndefined();
  });
});

/** Writes `first` then random bytes to a TCP port and waits for the connection to close (bounded). */
async function rawTcpGarbage(host: string, port: number, first: number): Promise<void> {
  const bytes = randomBytes(64 * 1024);
  bytes[0] = first;
  await new Promise<void>((resolve, reject) => {
    const sock = tcpConnect({ host, port });
    const deadline = setTimeout(() => {
      sock.destroy();
      reject(new Error(`port ${port} kept a garbage connection open for 5 s`));
    }, 5_000);
    sock.on("error", () => undefined); // a reset by the peer is a fine way to end
    sock.on("close", () => {
      clearTimeout(deadline);
      resolve();
    });
    sock.on("data", () => undefined);
    sock.on("connect", () => sock.end(bytes));
  });
}
