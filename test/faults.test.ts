import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as zmq from "zeromq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineLostError, HubLostError, connect, type Client, type LinkReport } from "@ptcluster/client";
import {
  FAULTS_ENV,
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  Signer,
  TAG,
  decodeBody,
  encodeBody,
  profilePaths,
  readConnectionFile,
  type ConnectionInfo,
  type Message,
} from "@ptcluster/protocol";
import { BIN, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { failure } from "./helpers/lb.js";
import { standInController } from "./helpers/raw-peer.js";
import { CuttingProxy } from "./helpers/tcp-proxy.js";
import { waitExited, waitFor } from "./helpers/wait.js";

// Fault injection on real processes. Every message between client, controller and engines is
// dropped, copied, delayed or corrupted at random (the test-only shim of PTCLUSTER_TEST_FAULTS,
// in every process), or the TCP connections under ZeroMQ are cut; reliable delivery must still
// give each task exactly one execution and each caller exactly one result. Tasks record their own
// executions in the engines' namespaces, read back afterwards.

// One PTCLUSTER_DIR for the file, a profile per cluster.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const KINDS = ["dropped", "duplicated", "corrupted", "delayed"] as const;

/** Every item each engine ran (`globalThis.__ran`, appended to by the tasks below), over all engines, sorted. */
async function itemsRun(rc: Client, name: string): Promise<number[]> {
  const perEngine = await rc
    .view()
    .applySync((n: string) => ((globalThis as Record<string, unknown>)[n] as number[] | undefined) ?? [], name);
  return perEngine.flat().sort((a, b) => a - b);
}

describe("a cluster whose every link drops, copies, delays and corrupts messages", () => {
  // Set while the cluster starts (its processes inherit it) and the client connects, then unset.
  beforeAll(() => {
    process.env[FAULTS_ENV] = "drop=0.05,dup=0.05,corrupt=0.03,delay=0-5,seed=42";
  });
  const ctx = useCluster({ n: 2, profile: "faulty", dir: tmp.dir });
  beforeAll(() => {
    delete process.env[FAULTS_ENV];
  });

  it("a load-balanced map of 3,000 items: every result once, correct and in order; every item ran exactly once, at the first attempt", async () => {
    const N = 3_000;
    const m = ctx.rc.loadBalancedView().map(
      (i: number) => {
        const g = globalThis as { __mapped?: number[] };
        (g.__mapped ??= []).push(i);
        return i * 3 + 1;
      },
      range(N),
      { chunkSize: 10 },
    );
    expect(await m).toEqual(range(N).map((i) => i * 3 + 1));
    expect(await itemsRun(ctx.rc, "__mapped")).toEqual(range(N));
    expect(m.metadata.length).toBeGreaterThan(0);
    expect(m.metadata.every((x) => x.status === "ok" && x.attempts === 1)).toBe(true);
  });

  it("direct applies, 300 at once and 40 one after another: each returns its own result, and each ran exactly once on its engine", async () => {
    const ids = ctx.rc.ids;
    const task = (k: number) => {
      const g = globalThis as { __direct?: number[] };
      (g.__direct ??= []).push(k);
      return [engine.id, k];
    };
    const calls = range(300).map((k) => ctx.rc.engine(ids[k % ids.length] as number).apply(task, k));
    expect(await Promise.all(calls)).toEqual(range(300).map((k) => [ids[k % ids.length], k]));
    for (const k of range(40, 300))
      expect(await ctx.rc.engine(ids[k % ids.length] as number).apply(task, k)).toEqual([ids[k % ids.length], k]);
    const perEngine = await ctx.rc.view().applySync(() => (globalThis as { __direct?: number[] }).__direct ?? []);
    for (const [i, id] of ids.entries())
      expect(perEngine[i]?.sort((a, b) => a - b)).toEqual(range(340).filter((k) => k % ids.length === id));
  });

  it("the faults were injected in every process, and every receiver refused the corrupted copies and the duplicates", async () => {
    // Each corrupted copy is refused once: as a bad tag, or (a bit flipped in its number) as a
    // copy. Counters come from different processes (engines report theirs with their heartbeats),
    // and a message corrupted while they are read is counted by its receiver before its sender
    // reports it: wait until every sender's count covers its receiver's refusals.
    const corrupted = (l: LinkReport | undefined) => l?.faults?.corrupted ?? 0;
    const everyKind = (l: LinkReport | undefined) =>
      l?.faults !== undefined && KINDS.every((k) => (l.faults?.[k] ?? 0) > 0) && l.dropped.badMac > 0;
    // DirectView tasks go straight to the engines (on links without injected faults), so the
    // engines' links to the controller carry little: load-balanced tasks through the controller
    // until every engine's link has had each kind of fault, in both directions.
    await waitFor(
      async () => {
        const engines = (await ctx.rc.status()).engines.map((e) => e.link);
        if (engines.length === 2 && engines.every(everyKind)) return true;
        const m = ctx.rc.loadBalancedView().map((i: number) => i, range(40), { chunkSize: 1 });
        expect(await m).toEqual(range(40));
        return false;
      },
      { timeout: 60_000, what: "every kind of fault on both engines' links to the controller" },
    );
    const { status, mine, engines } = await waitFor(
      async () => {
        const status = await ctx.rc.status();
        const mine = ctx.rc.connectionStats();
        const engines = status.engines.map((e) => e.link);
        if (engines.length !== 2 || !engines.every(everyKind)) return undefined;
        const covered =
          status.dropped.client.badMac <= corrupted(mine) &&
          mine.dropped.badMac <= (status.faults?.client.corrupted ?? 0) &&
          status.dropped.engine.badMac <= engines.reduce((n, l) => n + corrupted(l), 0);
        return covered ? { status, mine, engines: engines as LinkReport[] } : undefined;
      },
      { what: "every process's fault counters to cover the refusals of its peers" },
    );
    for (const k of KINDS) {
      expect(status.faults?.client[k], `controller → client ${k}`).toBeGreaterThan(0);
      expect(status.faults?.engine[k], `controller → engines ${k}`).toBeGreaterThan(0);
      expect(mine.faults?.[k], `client → controller ${k}`).toBeGreaterThan(0);
    }
    const hubClient = status.dropped.client;
    const hubEngines = status.dropped.engine;
    expect(hubClient.badMac).toBeGreaterThan(0);
    expect(mine.dropped.badMac).toBeGreaterThan(0);
    expect(hubEngines.badMac).toBeGreaterThan(0);
    // Copies (injected, or resent after a drop) are refused as such.
    expect(hubClient.replay).toBeGreaterThan(0);
    expect(hubEngines.replay).toBeGreaterThan(0);
    expect(mine.dropped.replay).toBeGreaterThan(0);
    for (const l of engines) expect(l.dropped.replay).toBeGreaterThan(0);
    // Drops were made good by sending again, on every side.
    expect(mine.retransmitted).toBeGreaterThan(0);
    expect(status.messages.client.retransmitted).toBeGreaterThan(0);
    expect(status.messages.engine.retransmitted).toBeGreaterThan(0);
    for (const l of engines) expect(l.retransmitted).toBeGreaterThan(0);
    // Nothing else was refused, and no engine was lost on the way.
    expect([hubClient.malformed, hubEngines.malformed, hubClient.overflow, hubEngines.overflow]).toEqual([0, 0, 0, 0]);
    expect(ctx.rc.ids).toEqual([0, 1]);
    expect(status.engines.map((e) => e.tasksDone).reduce((a, b) => a + b, 0)).toBeGreaterThan(340);
  });
});

describe("links that are cut and reconnect", () => {
  // One engine connects directly; the one this test starts goes through a proxy, and gets all the work.
  const ctx = useCluster({ n: 1, profile: "cut", dir: tmp.dir });
  let proxies: CuttingProxy[] = [];
  let engineProc: ReturnType<typeof spawn> | undefined;
  let rc: Client;
  let proxied: number;

  beforeAll(async () => {
    // The client and one engine reach the controller through proxies that cut their connection
    // after every 24 KiB (ten times each); notifications go direct.
    const paths = profilePaths("cut");
    const clientInfo = readConnectionFile(paths.clientFile, "client");
    const engineInfo = readConnectionFile(paths.engineFile, "engine");
    proxies = [clientInfo, engineInfo].map(
      (i) => new CuttingProxy({ host: i.host, port: i.port }, { cutEveryBytes: 24 * 1024, maxCuts: 10 }),
    );
    const [clientPort, enginePort] = await Promise.all(proxies.map((p) => p.listen()));
    const clientFile = join(ctx.dir, "client-via-proxy.json");
    const engineFile = join(ctx.dir, "engine-via-proxy.json");
    writeFileSync(clientFile, JSON.stringify({ ...clientInfo, port: clientPort }), { mode: 0o600 });
    writeFileSync(engineFile, JSON.stringify({ ...engineInfo, port: enginePort }), { mode: 0o600 });
    engineProc = spawn(process.execPath, [BIN, "engine", "--file", engineFile], {
      env: { ...process.env, PTCLUSTER_DIR: ctx.dir },
      stdio: "ignore",
    });
    rc = await connect({ file: clientFile });
    await rc.waitForEngines(2, { timeout: 10_000 });
    proxied = rc.ids.find((id) => rc.engineInfo(id)?.pid === engineProc?.pid) as number;
    expect(proxied).toBe(1);
  });

  afterAll(async () => {
    await rc?.close();
    const pid = engineProc?.pid;
    if (pid !== undefined) {
      engineProc?.kill("SIGTERM");
      expect(await waitExited([pid], 5_000)).toEqual([]);
    }
    for (const p of proxies) await p.close();
  });

  it("a map of 2,000 items and 200 direct applies while both links are cut over and over: every result once, every item ran once", async () => {
    const N = 2_000;
    const blob = "x".repeat(200); // bulk, so the links carry enough to be cut several times
    const mapped = rc.loadBalancedView([proxied]).map(
      (i: number, pad: string) => {
        const g = globalThis as { __cut?: number[] };
        (g.__cut ??= []).push(i);
        return `${i}:${pad.length}`;
      },
      range(N),
      range(N).map(() => blob),
      { chunkSize: 20 },
    );
    const id = proxied;
    const direct = range(200).map((k) =>
      rc.engine(id).apply(
        (x: number, pad: string) => {
          const g = globalThis as { __cutDirect?: number };
          g.__cutDirect = (g.__cutDirect ?? 0) + 1;
          return x + pad.length;
        },
        k,
        blob,
      ),
    );
    expect(await mapped).toEqual(range(N).map((i) => `${i}:200`));
    expect(await Promise.all(direct)).toEqual(range(200).map((k) => k + 200));
    const ran = await rc.engine(id).apply(() => (globalThis as { __cut?: number[] }).__cut ?? []);
    expect(ran.sort((a, b) => a - b)).toEqual(range(N));
    expect(await rc.engine(id).apply(() => (globalThis as { __cutDirect?: number }).__cutDirect)).toBe(200);
    // The links were really cut, more than once each, and what they lost was sent again.
    for (const p of proxies) expect(p.cuts).toBeGreaterThanOrEqual(2);
    for (const p of proxies) expect(p.connections).toBeGreaterThan(p.cuts);
    const status = await rc.status();
    expect(rc.connectionStats().retransmitted + status.messages.client.retransmitted).toBeGreaterThan(0);
    expect(rc.ids).toEqual([0, id]);
  });
});

/** An engine by hand that registers and heartbeats but never acknowledges what the controller sends it. */
class MuteEngine {
  readonly uuid = randomBytes(16).toString("hex");
  readonly dealer: zmq.Dealer;
  /** Every message the controller sent, copies included. */
  readonly received: Message[] = [];
  private readonly signer: Signer;
  private prev = 0;
  private sending: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly reading: Promise<void>;

  constructor(key: Buffer, info: ConnectionInfo) {
    this.signer = new Signer(key);
    const dealer = new zmq.Dealer({ routingId: this.uuid, linger: 0 });
    dealer.connect(`tcp://${info.host}:${info.port}`);
    this.dealer = dealer;
    this.reading = (async () => {
      try {
        for await (const frames of dealer)
          if (frames.length > 2 && frames[0]?.equals(TAG)) this.received.push(decodeBody(frames as Buffer[], 2).header);
      } catch {
        /* closed */
      }
    })();
  }

  /** Signs the next message of its stream, acknowledging nothing (ack 0), and sends it. */
  send(header: Message): Promise<void> {
    const body = encodeBody(header, undefined);
    const auth = this.signer.sign("e2h", undefined, body, this.prev, 0);
    this.prev = this.signer.seq;
    this.sending = this.sending.then(() => this.dealer.send([TAG, auth, ...body]));
    return this.sending;
  }

  async register(): Promise<number> {
    await this.send({
      type: "register",
      v: PROTOCOL_VERSION,
      pkg: PACKAGE_VERSION,
      uuid: this.uuid,
      host: "mute",
      pid: process.pid,
      node: process.version,
      concurrency: 1,
    });
    const reply = await waitFor(() => this.received.find((m) => m.type === "register_reply"), {
      what: "register_reply",
    });
    this.timer = setInterval(() => void this.send({ type: "heartbeat", t: Date.now(), running: 0 }), 200);
    return (reply as Extract<Message, { type: "register_reply" }>).id;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sending.catch(() => undefined);
    this.dealer.close();
    await this.reading;
  }
}

// The two waits run side by side (each takes twice a heartbeat window).
describe.concurrent("a peer that never acknowledges", () => {
  const ctx = useCluster({ n: 1, profile: "mute", dir: tmp.dir });

  it("an engine that heartbeats but never acknowledges is declared dead within twice the heartbeat window: its task fails with EngineLostError", async ({
    expect,
  }) => {
    const info = readConnectionFile(profilePaths("mute").engineFile, "engine");
    const mute = new MuteEngine(Buffer.from(info.key, "hex"), info);
    try {
      const id = await mute.register();
      await waitFor(() => ctx.rc.ids.includes(id), { what: "the mute engine to register" });
      const downs: Array<{ id: number; reason: string }> = [];
      ctx.rc.on("engine_down", (d) => downs.push(d));
      const t0 = Date.now();
      const err = await failure(() => ctx.rc.engine(id).apply(() => "never runs"));
      const elapsed = Date.now() - t0;
      expect(err).toBeInstanceOf(EngineLostError);
      expect((err as EngineLostError).code).toBe("ERR_PTC_ENGINE_LOST");
      expect((err as EngineLostError).engineId).toBe(id);
      // 2 × 6 heartbeats of 500 ms from the moment the controller first sent it something.
      expect(elapsed).toBeLessThan(9_000);
      await waitFor(() => downs.find((d) => d.id === id), { what: "engine_down for the mute engine" });
      expect(downs.find((d) => d.id === id)?.reason).toMatch(/did not acknowledge messages for 6000 ms/);
      // The controller did send the task; and it kept sending its oldest unacknowledged message
      // (the registration reply) again, for want of an acknowledgement.
      expect(mute.received.filter((m) => m.type === "tasks").length).toBeGreaterThanOrEqual(1);
      expect(mute.received.filter((m) => m.type === "register_reply").length).toBeGreaterThan(2);
      // The real engine serves on.
      expect(ctx.rc.ids).toEqual([0]);
      expect(await ctx.rc.loadBalancedView().apply(() => engine.id)).toBe(0);
    } finally {
      await mute.close();
    }
  });

  it("a controller that answers but never acknowledges: the client's pending call rejects with HubLostError", async ({
    expect,
  }) => {
    // A stand-in controller: it accepts the connection and keeps publishing ticks (so it is not
    // silent), but acknowledges nothing.
    const { key, router, pub, file, close } = await standInController(ctx.dir, "deaf-controller", PROTOCOL_VERSION);
    const signer = new Signer(key);
    const pubSigner = new Signer(key);
    const serving = (async () => {
      const [from] = (await router.receive()) as Buffer[];
      const reply = encodeBody(
        {
          type: "connect_reply",
          ok: true,
          v: PROTOCOL_VERSION,
          pkg: PACKAGE_VERSION,
          clusterId: "",
          engines: [],
          heartbeatMs: 100,
        },
        undefined,
      );
      await router.send([from as Buffer, TAG, signer.sign("h2c", from, reply), ...reply]);
    })();
    const ticks = setInterval(() => {
      const body = encodeBody({ type: "tick", t: Date.now(), engines: 0 }, undefined);
      void pub.send([TAG, pubSigner.sign("pub", undefined, body), ...body]);
    }, 100);
    try {
      const rc = await connect({ file, timeout: 5_000 });
      await serving;
      const t0 = Date.now();
      const err = await failure(() => rc.engine(0).apply(() => 1));
      expect(err).toBeInstanceOf(HubLostError);
      expect((err as HubLostError).code).toBe("ERR_PTC_HUB_LOST");
      expect((err as Error).message).toMatch(/has not acknowledged this client's messages for 6000 ms/);
      expect(Date.now() - t0).toBeLessThan(9_000);
      expect(rc.state).toBe("hub-lost");
      await rc.close();
    } finally {
      clearInterval(ticks);
      close();
    }
  });
});
