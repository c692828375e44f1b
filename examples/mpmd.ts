/**
 * MPMD: different programs on different engines at the same time. Engine 0 estimates pi while the
 * others sum a range; both are in flight together.
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
const [first, ...rest] = rc.ids;
if (first === undefined || rest.length === 0) throw new Error("this example needs at least 2 engines");

const pi = rc.engine(first).apply((samples: number) => {
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = Math.random();
    const y = Math.random();
    if (x * x + y * y <= 1) inside++;
  }
  return (4 * inside) / samples;
}, 2_000_000);

const sums = rc.view(rest).apply((n: number) => {
  let s = 0;
  for (let i = 1; i <= n; i++) s += i;
  return s;
}, 1_000_000);

const [estimate, totals] = await Promise.all([pi, sums]);
console.log(`engine ${first}: pi ≈ ${estimate.toFixed(3)}`);
console.log(`engines ${rest.join(", ")}: sums`, totals);
