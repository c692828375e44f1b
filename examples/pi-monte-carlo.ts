/**
 * π by Monte Carlo, the SPMD way: every engine throws its own darts, `allreduce` adds up the hits,
 * and rank 0 reports. (With mpi4py: `comm.allreduce(hits, op=MPI.SUM)`.)
 *
 *   npx tsx examples/pi-monte-carlo.ts      (against a running cluster: ptcluster start -n 4)
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
const perEngine = Number(process.env["PI_SAMPLES"] ?? 2_000_000);

const answers = await rc.view().applySync(async (samples: number) => {
  const { comm } = engine;
  // A small generator seeded by rank (xorshift32), so each engine throws different darts.
  let s = (comm.rank + 1) * 0x9e3779b9;
  const rand = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  let hits = 0;
  for (let i = 0; i < samples; i++) {
    const x = rand();
    const y = rand();
    if (x * x + y * y <= 1) hits++;
  }
  const total = await comm.allreduce(hits, "sum");
  return { rank: comm.rank, hits, pi: (4 * total) / (samples * comm.size) };
}, perEngine);
for (const a of answers) console.log(`rank ${a.rank}: ${a.hits} of ${perEngine} darts inside`);
const pis = new Set(answers.map((a) => a.pi));
console.log(
  `pi ≈ ${answers[0]!.pi.toFixed(5)} from ${perEngine * answers.length} darts (the same on ${answers.length} ranks: ${pis.size === 1})`,
);
