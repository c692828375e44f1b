/**
 * `shared_dict_50MB`: a 50 MiB Float64Array set into a shared dict by the client, read back by the
 * client, read by an engine (its length returned) and set by an engine, on one host: what shared state's large
 * values cost over the network to the controller (issue 16 asked whether they should go through
 * shared-memory files; see docs/architecture.md, "Same-host data").
 *
 *   npx tsx bench/shared-big.ts [rounds]
 */
import type { Client } from "@ptcluster/client";

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function sharedDictBig(
  rc: Client,
  out: (workload: string, fields: Record<string, unknown>) => void,
  rounds = 5,
): Promise<void> {
  const d = rc.shared.dict<Float64Array>("bench_big");
  const value = new Float64Array((50 * 1024 * 1024) / 8).map((_, i) => i);
  const set: number[] = [];
  const get: number[] = [];
  const engineGet: number[] = [];
  const engineSet: number[] = [];
  const e = rc.engine(rc.ids[0] as number);
  for (let i = 0; i < rounds; i++) {
    let s = performance.now();
    await d.set("v", value);
    set.push(performance.now() - s);
    s = performance.now();
    const back = await d.get("v");
    get.push(performance.now() - s);
    if (back?.length !== value.length || back[12345] !== 12345) throw new Error("shared dict value corrupted");
    s = performance.now();
    await e.apply(async () => ((await engine.shared.dict<Float64Array>("bench_big").get("v")) as Float64Array).length);
    engineGet.push(performance.now() - s);
    // An engine's set, timed in the engine (the value made there first).
    engineSet.push(
      await e.apply(async (n: number) => {
        const v = new Float64Array(n).fill(1);
        const t = performance.now();
        await engine.shared.dict<Float64Array>("bench_big").set("w", v);
        return performance.now() - t;
      }, value.length),
    );
  }
  await d.delete("v");
  await d.delete("w");
  out("shared_dict_50MB", {
    mb: 50,
    set_ms: Math.round(med(set)),
    get_ms: Math.round(med(get)),
    engine_get_ms: Math.round(med(engineGet)),
    engine_set_ms: Math.round(med(engineSet)),
    mb_per_s_set_get: Math.round(100 / ((med(set) + med(get)) / 1000)),
  });
}

declare const engine: { shared: Client["shared"] };

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop() as string)) {
  const { startCluster } = await import("@ptcluster/client");
  const cluster = await startCluster({ n: 1 });
  try {
    const rc = await cluster.connect();
    await rc.waitForEngines(1);
    await sharedDictBig(rc, (w, f) => console.log(JSON.stringify({ workload: w, ...f })), Number(process.argv[2] ?? 5));
    await rc.close();
  } finally {
    await cluster.stop();
  }
}
