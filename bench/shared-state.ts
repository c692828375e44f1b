/**
 * The shared-state workloads of `npm run bench` (issue 13), and Python's SyncManager measured the
 * same way in the same run (bench/anchors/python_manager.py), so the figures compare side by side.
 */
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import type { Client } from "@ptcluster/client";

const ANCHOR = fileURLToPath(new URL("./anchors/python_manager.py", import.meta.url));
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;

/** 2,000 sequential calls after 200 warm-up ones: median and p99 in µs. */
async function timed(
  call: (i: number) => Promise<unknown>,
): Promise<{ calls: number; median_us: number; p99_us: number }> {
  for (let i = 0; i < 200; i++) await call(i);
  const lat: number[] = [];
  for (let i = 0; i < 2_000; i++) {
    const s = performance.now();
    await call(i);
    lat.push((performance.now() - s) * 1000);
  }
  lat.sort((a, b) => a - b);
  return { calls: 2_000, median_us: Math.round(quantile(lat, 0.5)), p99_us: Math.round(quantile(lat, 0.99)) };
}

export async function sharedStateWorkloads(
  rc: Client,
  want: (name: string) => boolean,
  out: (workload: string, fields: Record<string, unknown>) => void,
): Promise<void> {
  const sh = rc.shared;
  if (want("shared_dict_set")) {
    const d = sh.dict<number>("bench-dict");
    out("shared_dict_set", await timed((i) => d.set("k", i)));
    if ((await d.get("k")) !== 1_999) throw new Error("shared_dict_set: wrong final value");
    await sh.delete("bench-dict");
  }
  if (want("shared_counter_add")) {
    const c = sh.counter("bench-counter");
    out("shared_counter_add", await timed(() => c.add(1)));
    if ((await c.get()) !== 2_200) throw new Error("shared_counter_add: lost updates");
    await sh.delete("bench-counter");
  }
  if (want("shared_queue_throughput")) {
    // A task on one engine produces 20,000 small items (in batches, as a producer with many items
    // would); the client consumes them with a for-await loop and checks their order.
    const items = 20_000;
    const q = sh.queue<number>("bench-queue");
    const s = performance.now();
    const producer = rc.engine(rc.ids[0] as number).apply(async (n: number) => {
      const q = engine.shared.queue<number>("bench-queue");
      for (let i = 0; i < n; i += 500) await q.putMany(Array.from({ length: Math.min(500, n - i) }, (_, k) => i + k));
      await q.close();
    }, items);
    let expected = 0;
    for await (const x of q) {
      if (x !== expected) throw new Error(`shared_queue_throughput: got ${x}, expected ${expected}`);
      expected++;
    }
    await producer;
    const dt = (performance.now() - s) / 1000;
    if (expected !== items) throw new Error(`shared_queue_throughput: ${expected} items`);
    await sh.delete("bench-queue");
    // For comparison with Python's one `put` per item: 2,000 items put one by one (each a round trip).
    const one = 2_000;
    const q1 = sh.queue<number>("bench-queue-1");
    const s1 = performance.now();
    const single = rc.engine(rc.ids[0] as number).apply(async (n: number) => {
      const q = engine.shared.queue<number>("bench-queue-1");
      for (let i = 0; i < n; i++) await q.put(i);
      await q.close();
    }, one);
    let got = 0;
    for await (const x of q1) if (x === got) got++;
    await single;
    const dt1 = (performance.now() - s1) / 1000;
    if (got !== one) throw new Error(`shared_queue_throughput: ${got} of ${one} items put one by one`);
    await sh.delete("bench-queue-1");
    out("shared_queue_throughput", {
      items,
      items_per_s: Math.round(items / dt),
      seconds: Math.round(dt * 1000) / 1000,
      producer: "putMany of 500",
      one_put_per_item_items_per_s: Math.round(one / dt1),
    });
  }
  if (["shared_dict_set", "shared_counter_add", "shared_queue_throughput"].some(want)) {
    // The anchor, where python3 exists: its lines go out as they are (their own `system`).
    const py = await execa("python3", [ANCHOR], { reject: false, timeout: 120_000 });
    if (py.exitCode === 0) process.stdout.write(`${py.stdout.trim()}\n`);
    else process.stderr.write(`python_manager anchor skipped: ${py.stderr.split("\n").at(-1) ?? py.shortMessage}\n`);
  }
}
