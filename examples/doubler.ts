/**
 * `Process(target=doubler, args=(n,))` for five numbers, each printing its pid, from the
 * multiprocessing tutorials. Here each call's printed output comes back with its result instead of
 * interleaving on one terminal.
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
const numbers = [5, 10, 15, 20, 25];

function doubler(n: number): number {
  const result = n * 2;
  console.log(`${n} doubled to ${result} by engine ${engine.id} (pid ${engine.pid})`);
  return result;
}

// One task per number, spread over the engines round-robin, all in flight at once.
const ids = rc.ids;
const results = numbers.map((n, i) => rc.engine(ids[i % ids.length]!).apply(doubler, n));
for (const r of results) {
  const value = await r;
  process.stdout.write(`result ${value}; engine said: ${r.metadata[0]!.stdout}`);
}
