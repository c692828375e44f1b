/**
 * A 1-D heat equation, the SPMD pattern users actually write: the rod is split among the engines,
 * and at each step every rank swaps its edge cells (halos) with its neighbours by `send`/`recv`,
 * then updates its cells. Rank 0 gathers the rod; the client checks it against the same
 * computation done serially.
 *
 *   npx tsx examples/heat-diffusion.ts      (against a running cluster: ptcluster start -n 4)
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
const cells = 4_000;
const steps = 1_000;
const alpha = 0.25;

/** The starting rod: cold, with a hot stretch in the middle. */
const initial = (n: number) => Float64Array.from({ length: n }, (_, i) => (i > n * 0.4 && i < n * 0.6 ? 100 : 0));

/** One explicit step on `u` (ends held at 0); `left` and `right` are the cells beyond its edges. */
const step = (u: Float64Array, left: number, right: number, a: number): Float64Array => {
  const next = new Float64Array(u.length);
  for (let i = 0; i < u.length; i++) {
    const l = i === 0 ? left : (u[i - 1] as number);
    const r = i === u.length - 1 ? right : (u[i + 1] as number);
    next[i] = (u[i] as number) + a * (l - 2 * (u[i] as number) + r);
  }
  return next;
};

// Serially, in the client: the reference.
let serial: Float64Array = initial(cells);
for (let t = 0; t < steps; t++) serial = step(serial, 0, 0, alpha);

const results = await rc
  .view()
  .with({ scope: { step, initial } })
  .applySync(
    async (n: number, total: number, a: number) => {
      const { comm } = engine;
      const { rank, size } = comm;
      const lo = Math.floor((rank * n) / size);
      const hi = Math.floor(((rank + 1) * n) / size);
      let u: Float64Array = initial(n).slice(lo, hi);
      for (let t = 0; t < total; t++) {
        // Halo exchange: my first cell to the left neighbour, my last to the right, and theirs back.
        if (rank > 0) await comm.send(rank - 1, u[0], { tag: 1 });
        if (rank < size - 1) await comm.send(rank + 1, u[u.length - 1], { tag: 2 });
        const left = rank > 0 ? ((await comm.recv({ source: rank - 1, tag: 2 })) as number) : 0;
        const right = rank < size - 1 ? ((await comm.recv({ source: rank + 1, tag: 1 })) as number) : 0;
        u = step(u, left, right, a);
      }
      const parts = await comm.gather(u, { root: 0 });
      if (rank !== 0) return undefined;
      const rod = new Float64Array(n);
      let at = 0;
      for (const p of parts as Float64Array[]) {
        rod.set(p, at);
        at += p.length;
      }
      return rod;
    },
    cells,
    steps,
    alpha,
  );
const rod = results[0] as Float64Array;
let maxDiff = 0;
for (let i = 0; i < cells; i++) maxDiff = Math.max(maxDiff, Math.abs((rod[i] as number) - (serial[i] as number)));
console.log(`${cells} cells, ${steps} steps on ${results.length} ranks, halo exchange by send/recv`);
console.log(`peak temperature ${Math.max(...rod).toFixed(3)}; serial ${Math.max(...serial).toFixed(3)}`);
console.log(`largest difference from the serial result: ${maxDiff.toExponential(1)}`);
