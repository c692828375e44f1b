/**
 * Large messages in fragments on real processes (`PTCLUSTER_FRAGMENT_KB`, transport/fragments.ts):
 * a cluster whose every channel sends messages of 1 MiB or more as fragments, over links that drop,
 * copy, delay and corrupt them (`PTCLUSTER_TEST_FAULTS`), shared memory off. Large values of every
 * binary kind cross every hop in fragments, arrive whole and correct, and each task runs once: a
 * tampered fragment is refused by its tag and sent again, never delivered, never executed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULTS_ENV, FRAGMENT_ENV } from "@ptcluster/protocol";
import { digest, kinds } from "./helpers/binary-kinds.js";
import { tempClusterDir, useCluster } from "./helpers/cluster.js";

const KB = 1024;
const MB = 1024 * KB;

describe("a cluster whose channels send large values in fragments over faulty links", () => {
  const tmp = tempClusterDir();
  afterAll(() => tmp.cleanup());
  // Set while the cluster starts (its processes inherit them) and the client connects, then unset.
  beforeAll(() => {
    process.env[FRAGMENT_ENV] = "1024";
    process.env[FAULTS_ENV] = "drop=0.03,dup=0.03,corrupt=0.2,delay=0-2,seed=5";
  });
  const ctx = useCluster({ n: 2, dir: tmp.dir, extra: ["--shm-threshold-kb", "0"] });
  beforeAll(() => {
    delete process.env[FRAGMENT_ENV];
    delete process.env[FAULTS_ENV];
  });

  it("values of every kind go in fragments, through the controller and straight to engines, arrive whole, and each task runs once", async () => {
    const { rc } = ctx;
    // Every kind at 256 KiB (about 3 MiB together) and one 4 MiB value: several fragments per message.
    const value = { ...kinds(9, 256 * KB), large: new Float64Array((4 * MB) / 8).map((_, i) => i / 7) };
    const want = digest(value);
    const before = rc.connectionStats();
    const echo = (v: unknown) => {
      const g = globalThis as { __echoes?: number };
      g.__echoes = (g.__echoes ?? 0) + 1;
      return v;
    };
    const lb = rc.loadBalancedView();
    const echoed = await Promise.all([lb.apply(echo, value), lb.apply(echo, value), lb.apply(echo, value)]);
    for (const e of echoed) expect(digest(e)).toEqual(want);
    const after = rc.connectionStats();
    // Three tasks of ~7 MiB each went to the controller as 1 MiB fragments, not as three messages.
    expect(after.sent - before.sent).toBeGreaterThanOrEqual(3 * 7);
    const dv = rc.view();
    await dv.push({ value });
    for (const pulled of await dv.pull("value")) expect(digest(pulled)).toEqual(want);
    expect(digest(await rc.engine(0).apply(echo, value))).toEqual(want);
    // Each task ran once, on whichever engine: three load-balanced echoes and one direct.
    const runs = await dv.apply(() => (globalThis as { __echoes?: number }).__echoes ?? 0);
    expect(runs.reduce((a, b) => a + b, 0)).toBe(4);
    // Fragments were corrupted on the way and refused by their tags, on both sides of the controller.
    const status = await rc.status();
    expect(status.faults?.client.corrupted).toBeGreaterThan(0);
    expect(status.dropped.client.badMac + status.dropped.engine.badMac).toBeGreaterThan(0);
    expect(rc.connectionStats().dropped.badMac).toBeGreaterThan(0);
  }, 60_000);

  it("a lone large task and its result pass through the controller as their fragments arrive; tampered fragments are refused on each hop", async () => {
    const { rc } = ctx;
    const before = await rc.status();
    const clientBefore = rc.connectionStats().dropped.badMac;
    const value = new Float64Array((4 * MB) / 8).map((_, i) => i / 3);
    const want = digest(value);
    const count = (v: unknown) => {
      const g = globalThis as { __lone?: number };
      g.__lone = (g.__lone ?? 0) + 1;
      return v;
    };
    // One task in its own submit: the controller places it on its first fragment (cut-through).
    expect(digest(await rc.loadBalancedView().apply(count, value))).toEqual(want);
    const after = await rc.status();
    const ct = after.cutThrough!;
    expect(ct.streams - before.cutThrough!.streams).toBe(2);
    expect(ct.forwardedEarly - before.cutThrough!.forwardedEarly).toBeGreaterThanOrEqual(2 * 2);
    expect(ct).toMatchObject({ open: 0, heldBytes: 0 });
    // Corrupted fragments were refused by their tags, coming in to the controller and going out of it, and sent again.
    expect(after.dropped.client.badMac - before.dropped.client.badMac).toBeGreaterThan(0);
    expect(rc.connectionStats().dropped.badMac - clientBefore).toBeGreaterThan(0);
    const runs = await rc.view().apply(() => (globalThis as { __lone?: number }).__lone ?? 0);
    expect(runs.reduce((a, b) => a + b, 0)).toBe(1);
  }, 60_000);
});
