import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  decodeValue,
  encodeValue,
  profilePaths,
  sourceHash,
  type Message,
  type Part,
  type PipeStage,
  type StageStats,
} from "@ptcluster/protocol";
import { RawPeer } from "./helpers/raw-peer.js";
import { ptcluster, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// The controller's and engines' side of pipelines, spoken to through the wire protocol by hand (the
// client's `rc.pipeline` has tests of its own): what the stages do with items, what reaches the
// client, and how failures end.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());
const ctx = useCluster({ n: 2, dir: tmp.dir });

const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };
const enc = (v: unknown): Part => {
  const { body, frames } = encodeValue(v);
  return { body: Buffer.from(body), frames };
};
/** A stage as a client sends it; without its source (`src`) once its hash went out before. */
const withoutSource = ({ src: _src, ...rest }: PipeStage): PipeStage => rest;
const stage = (kind: PipeStage["kind"], src: string, extra: Partial<PipeStage> = {}): PipeStage => ({
  kind,
  fn: sourceHash(src),
  src,
  name: `${kind}-${sourceHash(src).slice(0, 6)}`,
  ...extra,
});

let peers: RawPeer[] = [];
afterEach(async () => {
  for (const p of peers) await p.close(true);
  peers = [];
});

interface Outcome {
  outputs: Map<number, unknown[]>;
  failed?: Extract<Message, { type: "pipe_failed" }>;
  failure?: unknown;
  stats?: StageStats[] | undefined;
  /** Bytes of every message the client received for the pipeline. */
  bytes: number;
}

/** Runs `items` through `stages` as a client that sends everything at once; resolves when every item is reported or the pipeline failed. */
async function run(stages: PipeStage[], items: unknown[], onError: "fail" | "skip" = "fail"): Promise<Outcome> {
  process.env.PTCLUSTER_DIR = tmp.dir;
  const peer = RawPeer.forClientFile(profilePaths("default").clientFile);
  peer.dealer.receiveTimeout = 20_000;
  peers.push(peer);
  await peer.connect();
  await peer.send(
    { type: "pipe_open", pipe: 7, stages, onError, pf: stages.map(() => 0) },
    stages.map(() => EMPTY),
  );
  const parts = items.map(enc);
  await peer.send({ type: "pipe_items", pipe: 7, first: 0, pf: parts.map((p) => p.frames.length) }, parts);
  await peer.send({ type: "pipe_end", pipe: 7, total: items.length });
  const out: Outcome = { outputs: new Map(), bytes: 0 };
  while (out.outputs.size < items.length) {
    const m = await peer.receive();
    if (m.kind !== "message") throw new Error("the controller refused this client's signatures");
    for (const p of m.parts) out.bytes += p.body.length + p.frames.reduce((n, f) => n + f.length, 0);
    if (m.header.type === "pipe_failed") {
      out.failed = m.header;
      if (m.parts[0]) out.failure = decodeValue(m.parts[0].body, m.parts[0].frames);
      out.stats = m.header.stats;
      return out;
    }
    if (m.header.type !== "pipe_out") continue;
    let k = 0;
    for (const [i, n] of m.header.done) {
      out.outputs.set(
        i,
        m.parts.slice(k, k + n).map((p) => decodeValue(p.body, p.frames)),
      );
      k += n;
    }
    if (m.header.stats) out.stats = m.header.stats;
  }
  return out;
}

describe("pipelines at the controller and engines", () => {
  it("runs map, filter and flatMap (async functions, generators, async generators) and sends back only the last stage's outputs", async () => {
    const big = stage("map", "async (n) => ({ n, text: 'x'.repeat(200_000) + n })");
    const len = stage("map", "(d) => d.text.length + d.n");
    const odd = stage("filter", "async (v) => v % 2 === 1");
    const twice = stage("flatMap", "function* (v) { yield v; yield -v; }");
    const tagged = stage("flatMap", "async function* (v) { yield `${v}@${engine.id}`; }");
    const r = await run([big, len, odd, twice, tagged], [0, 1, 2, 3, 4, 5]);
    expect(r.failed).toBeUndefined();
    for (let i = 0; i < 6; i++) {
      const v = 200_001 + i;
      const want = v % 2 === 1 ? [v, -v].map(String) : [];
      expect((r.outputs.get(i) as string[]).map((s) => s.split("@")[0])).toEqual(want);
    }
    // Six items of 200 kB each went through stage 0: none of them came back to the client.
    expect(r.bytes).toBeLessThan(20_000);
    expect(r.stats?.map((s) => [s.kind, s.done, s.failed, s.inFlight])).toEqual([
      ["map", 6, 0, 0],
      ["map", 6, 0, 0],
      ["filter", 6, 0, 0],
      ["flatMap", 3, 0, 0],
      ["flatMap", 6, 0, 0],
    ]);
  });

  it("a flatMap function that returns a string fails its item with a TypeError that says what to return", async () => {
    const r = await run([stage("flatMap", "(s) => s")], ["abc"]);
    expect(r.failed).toMatchObject({ stage: 0, item: 0, remote: true });
    expect(r.failure).toMatchObject({ name: "TypeError", message: expect.stringMatching(/returned a string/) });
  });

  it("an item that ends its executor (process.exit) fails alone; the other items of its task come through, and the engine keeps its id", async () => {
    const exiting = stage("map", "(n) => { if (n === 13) process.exit(3); return n * 2; }");
    const items = Array.from({ length: 40 }, (_, i) => i);
    const r = await run([exiting], items, "skip");
    expect(r.failed).toBeUndefined();
    for (const i of items) expect(r.outputs.get(i)).toEqual(i === 13 ? [] : [i * 2]);
    expect(r.stats?.[0]).toMatchObject({ done: 39, failed: 1 });
    expect(ctx.rc.ids).toEqual([0, 1]);
    // A finished pipeline leaves nothing at the controller.
    expect((await ctx.rc.status()).pipelines).toEqual([]);
  });

  it("an item past its stage's timeout fails the pipeline with the timeout, naming stage and item", async () => {
    const slow = stage(
      "map",
      "(n) => { if (n === 2) { const end = Date.now() + 30_000; while (Date.now() < end); } return n; }",
      {
        timeout: 300,
      },
    );
    const r = await run([stage("map", "(n) => n"), slow], [0, 1, 2, 3]);
    expect(r.failed).toMatchObject({ stage: 1, item: 2, sysError: { code: "ERR_PTC_TASK_TIMEOUT" } });
  });

  it("a stage whose source the controller never got fails the pipeline, and the controller lives on", async () => {
    const unknown = withoutSource(stage("map", "(n) => n + 1"));
    const items = Array.from({ length: 3_000 }, (_, i) => i);
    const r = await run([stage("map", "(n) => n"), unknown], items);
    expect(r.failed).toMatchObject({ stage: 1, sysError: { code: "ERR_PTC_PROTOCOL" } });
    expect(await ctx.rc.view().applySync(() => "still here")).toEqual(["still here", "still here"]);
  });

  it("a refused pipeline keeps the sources it brought: the client sends each only once", async () => {
    const f = stage("map", "(n) => n * 3");
    const refused = await run([f, { ...f, targets: [99] }], [1]);
    expect(refused.failed).toMatchObject({ stage: 1, sysError: { code: "ERR_PTC_UNKNOWN_ENGINE" } });
    // The same connection opens another pipeline with that function, its source not sent again.
    const peer = peers.at(-1) as RawPeer;
    await peer.send({ type: "pipe_open", pipe: 8, stages: [withoutSource(f)], onError: "fail", pf: [0] }, [EMPTY]);
    await peer.send({ type: "pipe_items", pipe: 8, first: 0, pf: [0] }, [enc(5)]);
    await peer.send({ type: "pipe_end", pipe: 8, total: 1 });
    for (;;) {
      const m = await peer.receive();
      if (m.kind !== "message" || (m.header.type !== "pipe_out" && m.header.type !== "pipe_failed")) continue;
      // Figures alone (the stats tick, on a busy machine before the item is done): not the answer.
      if (m.header.type === "pipe_out" && m.header.done.length === 0 && !m.header.end) continue;
      expect(m.header).toMatchObject({ type: "pipe_out", pipe: 8, done: [[0, 1]] });
      expect(decodeValue(m.parts[0]!.body, m.parts[0]!.frames)).toBe(15);
      break;
    }
  });

  it("a client that leaves has its pipeline's running stage tasks cancelled", async () => {
    process.env.PTCLUSTER_DIR = tmp.dir;
    const peer = RawPeer.forClientFile(profilePaths("default").clientFile);
    await peer.connect();
    const spin = stage(
      "map",
      "async (n) => { while (!engine.signal.aborted) await new Promise((r) => setTimeout(r, 5)); return n; }",
      {
        timeout: 60_000,
      },
    );
    await peer.send({ type: "pipe_open", pipe: 1, stages: [spin], onError: "fail", pf: [0] }, [EMPTY]);
    await peer.send({ type: "pipe_items", pipe: 1, first: 0, pf: [0, 0] }, [enc(1), enc(2)]);
    await waitFor(async () => (await ctx.rc.status()).engines.every((e) => e.running === 1), {
      what: "both engines running a stage task",
    });
    // Seen by any client, and by `ptcluster status`.
    const seen = (await ctx.rc.status()).pipelines;
    expect(seen).toEqual([
      { client: peer.routingId.toString(), pipe: 1, stages: [expect.objectContaining({ kind: "map", inFlight: 2 })] },
    ]);
    const text = await ptcluster(tmp.dir, ["status"]);
    expect(text.stdout).toMatch(/^Pipelines: 1 running$/m);
    expect(text.stdout).toMatch(
      new RegExp(`^${peer.routingId.toString().slice(0, 8)}:1 +0 +map +${spin.name} +2 +0 +0 `, "m"),
    );
    await peer.close(true);
    await waitFor(async () => (await ctx.rc.status()).tasksInFlight === 0, {
      what: "the stage tasks to be cancelled",
      timeout: 5_000,
    });
  });
});
