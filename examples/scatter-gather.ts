/**
 * Partitioned data with per-engine state (like a Dask dataframe made of many pandas frames):
 * scatter a Float64Array, transform each block where it lives, reduce, gather it back.
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
const dv = rc.view();

const data = Float64Array.from({ length: 1_000_000 }, (_, i) => i / 1_000);
await dv.scatter("block", data);

// Work on each engine's block in place; only the small partial sums travel back.
const partials = await dv.applySync(() => {
  let s = 0;
  for (let i = 0; i < block.length; i++) {
    block[i] = Math.sqrt(block[i]!);
    s += block[i]!;
  }
  return s;
});
console.log("sum of square roots:", partials.reduce((a, b) => a + b, 0).toFixed(2));

const back = (await dv.gather("block")) as Float64Array;
console.log("gathered", back.length, "values; back[1e6-1] =", back[999_999]!.toFixed(4));

declare const block: Float64Array;
