/**
 * The parallel sum of ipyparallel's MPI docs (`psum`), without MPI: each engine sums its part of
 * 1..1,000,000 and `engine.comm.allreduce` combines the parts, so every engine ends with the total.
 *
 *   npx tsx examples/parallel-sum.ts        (against a running cluster: ptcluster start -n 4)
 */
import { connect } from "@ptcluster/client";

// Found on the engines, put there by `scatter`; declared for the type checker only.
declare const part: Array<[number, number]>;

await using rc = await connect();
const n = 1_000_000;
const size = rc.ids.length;
// One [lo, hi] range per engine; scatter gives each engine its own (as a one-element array).
const ranges = Array.from({ length: size }, (_, r): [number, number] => [
  Math.floor((r * n) / size) + 1,
  Math.floor(((r + 1) * n) / size),
]);
await rc.view().scatter("part", ranges);

const totals = await rc.view().applySync(async () => {
  const [lo, hi] = part[0] as [number, number];
  let local = 0;
  for (let i = lo; i <= hi; i++) local += i;
  // Rank = this engine's index in the view's targets; every rank gets the sum of all ranks' values.
  return [engine.comm.rank, local, await engine.comm.allreduce(local, "sum")];
});
for (const [rank, local] of totals) console.log(`rank ${rank}: local sum ${local}`);
console.log(`allreduce on every rank: ${JSON.stringify(totals.map(([, , total]) => total))}`);
console.log(`expected n(n+1)/2 = ${(n * (n + 1)) / 2}`);
