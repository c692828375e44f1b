/**
 * What `multiprocessing.Manager()` gives the tutorials, for a whole cluster: a dict, a counter, a
 * lock and an array that every engine changes in place, held by the controller and reached with
 * the cluster's key from any host.
 *
 *   npx tsx examples/manager.ts        (against a running cluster: ptcluster start -n 4)
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
const sh = rc.shared;

// Python: arr = manager.Array('d', [5, 10, 15, 20, 25]); each process doubles one element.
const arr = sh.array("doubled", Float64Array.from([5, 10, 15, 20, 25]));
await rc.view().map(async (i: number) => engine.shared.array("doubled").update(i, "mul", 2), [0, 1, 2, 3, 4]);
console.log("array doubled in place:", Array.from(await arr.read()));

// A dict every engine writes to, and an atomic count (Python's `d[k] += 1` is two calls and loses updates).
const seen = sh.dict<number>("seen-by");
const hits = sh.counter("hits");
await rc.view().apply(async () => {
  const seen = engine.shared.dict<number>("seen-by");
  const hits = engine.shared.counter("hits");
  await seen.set(`engine ${engine.id}`, engine.pid);
  for (let i = 0; i < 100; i++) await hits.add(1);
});
console.log(`dict: ${(await seen.keys()).sort().join(", ")}`);
console.log(`counter: ${await hits.get()} (${rc.ids.length} engines × 100 atomic adds)`);

// A lock: one engine at a time in the critical section (the log shows no overlap).
const log = sh.queue<string>("critical");
await rc.view().apply(async () => {
  const log = engine.shared.queue<string>("critical");
  await using held = await engine.shared.lock("section").acquire({ timeout: 10_000 });
  void held;
  await log.put(`enter ${engine.id}`);
  await new Promise((r) => setTimeout(r, 20));
  await log.put(`leave ${engine.id}`);
});
const entries = await log.getMany(100, { timeout: 1_000 });
const overlapping = entries.some((e, i) => i % 2 === 1 && e.split(" ")[1] !== entries[i - 1]?.split(" ")[1]);
console.log(`lock: ${entries.length / 2} critical sections, ${overlapping ? "OVERLAPPING" : "never overlapping"}`);

// What the controller holds, then cleaned up.
const status = await rc.status();
console.log(
  "shared objects:",
  status.shared.objects
    .map((o) => `${o.name} (${o.kind}, ${o.size})`)
    .sort()
    .join(", "),
);
for (const o of status.shared.objects) await sh.delete(o.name);
