/**
 * CPU-bound scaling, as in the tutorials' `Pool(processes=k).map(busy_wait, [n] * 8)` table: the
 * same count-down loop, run 8 times serially in this process, then load-balanced over clusters of
 * 1, 2 and 4 engines that this script starts and stops itself (each engine is its own process, so
 * each can have a core of its own). A last row runs 4 tasks at once inside ONE engine
 * (`concurrency: 4`): like Python threads under the GIL, concurrency within one engine overlaps
 * waiting, not computing, so CPU-bound work gains nothing from it.
 *
 *   npx tsx examples/busy-wait.ts            # needs no running cluster
 *
 * `BUSY_N` sets the loop count (default 1e8, about 50 ms per item on a 2020s x86 core).
 */
import { availableParallelism } from "node:os";
import { startCluster } from "@ptcluster/client";

const N = Number(process.env["BUSY_N"] ?? 1e8);
const ITEMS = 8;

/** Counts down from n: pure CPU, no allocation, nothing to wait for. */
function busy(n: number): number {
  let x = n;
  while (x > 0) x--;
  return n;
}

const items = Array<number>(ITEMS).fill(N);
const check = (results: number[]) => {
  if (results.length !== ITEMS || results.some((r) => r !== N)) throw new Error("wrong results");
};

/** Best of `runs` timings, in seconds: shared machines are noisy, and noise only ever adds time. */
async function best(runs: number, work: () => Promise<unknown> | unknown): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await work();
    min = Math.min(min, (performance.now() - t) / 1000);
  }
  return min;
}

// Serial, in the client: the same function, no change ("test with plain map first").
busy(N); // let the JIT optimise the loop, as it will on each engine
const serial = await best(3, () => check(items.map(busy)));
console.log(
  `serial: ${ITEMS} × busy(${N.toExponential(0)}) in ${serial.toFixed(2)} s (${((serial / ITEMS) * 1000).toFixed(0)} ms per item)`,
);

const rows: Array<{ label: string; engines: number; seconds: number }> = [];
for (const [engines, concurrency] of [
  [1, 1],
  [2, 1],
  [4, 1],
  [1, 4],
] as const) {
  await using cluster = await startCluster({ n: engines, concurrency });
  const rc = await cluster.connect();
  const lb = rc.loadBalancedView();
  await lb.map(busy, Array<number>(engines * concurrency).fill(N), { chunkSize: 1 }); // ship and warm up `busy` on every engine
  const seconds = await best(2, async () => check(await lb.map(busy, items)));
  rows.push({
    label: concurrency === 1 ? String(engines) : `${engines} (concurrency ${concurrency})`,
    engines,
    seconds,
  });
  console.log(`${engines} engine(s), concurrency ${concurrency}: ${seconds.toFixed(2)} s`);
}

console.log(`\nbusy(${N.toExponential(0)}) × ${ITEMS}, this machine has ${availableParallelism()} cores available`);
console.log("| engines | seconds | speedup | efficiency |");
console.log("|---|---|---|---|");
console.log(`| serial (client) | ${serial.toFixed(2)} | 1.00 | – |`);
for (const r of rows) {
  const speedup = serial / r.seconds;
  console.log(`| ${r.label} | ${r.seconds.toFixed(2)} | ${speedup.toFixed(2)} | ${(speedup / r.engines).toFixed(2)} |`);
}
console.log(
  "\nAmdahl's law: if a fraction p of the work can run in parallel on k workers, the speedup is at most " +
    "1 / ((1 - p) + p / k). Here p is close to 1, so speedup follows the engine count — but only up to the " +
    `physical cores (${availableParallelism()} available here): beyond them engines share cores and nothing improves.`,
);
