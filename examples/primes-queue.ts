/**
 * Workers draining one queue, and more workers joining while it drains.
 *
 * Python's version: a `BaseManager` server with an `authkey` holds a task queue and a done queue;
 * a driver puts 1000 numbers in the first; workers on each machine connect with the key, take
 * numbers, test them for primality and put the answers in the second. Here the controller holds
 * the queues (`rc.shared`, `engine.shared`) and the key is the cluster's: every engine, on whatever
 * host it runs, drains the same queue, and engines that join in the middle start taking numbers
 * at once.
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
const tasks = rc.shared.queue<number>("tasks");
const done = rc.shared.queue<[number, boolean, number]>("done");
await tasks.putMany(numbers);
// Closed: each worker's loop ends once the queue is empty.
await tasks.close();

/** A worker: takes numbers until the queue is closed and empty; answers on the done queue. */
const worker = async (): Promise<number> => {
  const tasks = engine.shared.queue<number>("tasks");
  const done = engine.shared.queue<[number, boolean, number]>("done");
  let taken = 0;
  for await (const n of tasks) {
    let prime = n % 2 !== 0;
    for (let d = 3; prime && d * d <= n; d += 2) if (n % d === 0) prime = false;
    await done.put([n, prime, engine.id]);
    taken++;
  }
  return taken;
};

console.log(`driver on ${hostname()}: ${numbers.length} numbers, engines ${JSON.stringify(rc.ids)}`);
const first = new Set(rc.ids);
const workers: Array<PromiseLike<number[]>> = [rc.view().apply(worker)];
// Meanwhile two more workers join (`ptcluster engines -n 2` from a shell) and drain the same queue.
const joined = rc.addEngines(2);
workers.push(joined.then(({ ids }) => rc.view(ids).apply(worker)));
const primes: number[] = [];
const byEngine = new Map<number, number>();
for (let answered = 0; answered < numbers.length; answered++) {
  const [n, prime, id] = await done.get();
  if (prime) primes.push(n);
  byEngine.set(id, (byEngine.get(id) ?? 0) + 1);
}
const added = await joined;
await Promise.all(workers);
await Promise.all([tasks.destroy(), done.destroy()]);

primes.sort((a, b) => a - b);
console.log(`${primes.length} primes; the smallest ${primes.slice(0, 3).join(", ")}; the largest ${primes.at(-1)}`);
for (const [id, count] of [...byEngine].sort((a, b) => a[0] - b[0])) {
  console.log(`engine ${id}${first.has(id) ? "" : " (joined)"}: ${count} numbers`);
}
const late = added.ids.reduce((a, id) => a + (byEngine.get(id) ?? 0), 0);
console.log(`engines that joined during the run took ${late} of ${numbers.length} numbers`);
