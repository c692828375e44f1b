/**
 * Workers draining one queue, and more workers joining while it drains.
 *
 * Python's version: a `BaseManager` server with an `authkey` holds a queue; a driver puts 1000
 * numbers in it; workers on each machine connect with the key, take numbers and test them for
 * primality. Here the controller is the queue and the key is the cluster's: a load-balanced map
 * hands numbers to whichever engine is free, on whatever host it runs, and engines that join in
 * the middle start taking numbers at once.
 *
 *   npx tsx examples/primes-queue.ts
 *
 * On several machines, the same program against a running cluster (see docs/remote.md):
 *   ptcluster start --engines ssh --hosts b:4,c:4 --ip 10.0.0.1 --curve
 *   ptcluster engines -n 4 --engines ssh --hosts d:4      # while it runs: d joins the queue
 */
import { hostname } from "node:os";
import { startCluster } from "@ptcluster/client";

await using cluster = await startCluster({ n: 2 });
const rc = await cluster.connect();

// 1000 numbers around 4e12: each costs about a million trial divisions.
const numbers = Array.from({ length: 1000 }, (_, i) => 4_000_000_000_000 + 2 * i + 1);
const isPrime = (n: number): [number, boolean, number] => {
  if (n % 2 === 0) return [n, n === 2, engine.id];
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return [n, false, engine.id];
  return [n, true, engine.id];
};

console.log(`driver on ${hostname()}: ${numbers.length} numbers, engines ${JSON.stringify(rc.ids)}`);
const first = new Set(rc.ids);
const primes: number[] = [];
const byEngine = new Map<number, number>();
let joined: Promise<{ ids: number[] }> | undefined;
let done = 0;
// Unordered: each answer as soon as it is ready, whichever engine computed it.
for await (const [n, prime, id] of rc.loadBalancedView().imap(isPrime, numbers, { ordered: false, chunkSize: 5 })) {
  if (prime) primes.push(n);
  byEngine.set(id, (byEngine.get(id) ?? 0) + 1);
  // A tenth of the way in, two more workers join (`ptcluster engines -n 2` from a shell).
  if (++done === numbers.length / 10) joined = rc.addEngines(2);
}
const added = await joined;

primes.sort((a, b) => a - b);
console.log(`${primes.length} primes; the smallest ${primes.slice(0, 3).join(", ")}; the largest ${primes.at(-1)}`);
for (const [id, count] of [...byEngine].sort((a, b) => a[0] - b[0])) {
  console.log(`engine ${id}${first.has(id) ? "" : " (joined)"}: ${count} numbers`);
}
const late = (added?.ids ?? []).reduce((a, id) => a + (byEngine.get(id) ?? 0), 0);
console.log(`engines that joined during the run took ${late} of ${numbers.length} numbers`);
