import type { CollectiveCall } from "./collective-call.js";

/**
 * The collectives without a root, where every rank both sends and receives in every round.
 */

/**
 * Every rank's value, in rank order, on every rank. Ring: in p − 1 steps each rank passes the
 * value it got last to the next rank; each rank sends p − 1 values, so every value crosses each
 * link once (the bandwidth bound), at the cost of p − 1 rounds of latency.
 */
export async function ringAllgather(call: CollectiveCall, value: unknown): Promise<unknown[]> {
  const p = call.size;
  const r = call.rank;
  const mod = (i: number): number => ((i % p) + p) % p;
  const out = new Array<unknown>(p);
  out[r] = value;
  for (let s = 0; s < p - 1; s++) {
    out[mod(r - s - 1)] = await call.exchange(mod(r + 1), out[mod(r - s)], mod(r - 1));
  }
  return out;
}

/**
 * `values[j]` of rank i goes to rank j, which gets one value from each rank in rank order.
 * Pairwise exchange: in step s each rank sends to rank + s and receives from rank − s, so no
 * rank is the target of two senders in one step; p − 1 steps, p − 1 messages per rank.
 */
export async function pairwiseAlltoall(call: CollectiveCall, values: readonly unknown[]): Promise<unknown[]> {
  const p = call.size;
  const r = call.rank;
  const out = new Array<unknown>(p);
  out[r] = values[r];
  for (let s = 1; s < p; s++) {
    const dest = (r + s) % p;
    const source = (r - s + p) % p;
    out[source] = await call.exchange(dest, values[dest], source);
  }
  return out;
}

/**
 * Resolves once every rank has called it. Dissemination: in round k each rank signals
 * rank + 2^k and waits for rank − 2^k; after ⌈log2 p⌉ rounds each rank has heard, directly or
 * not, from every other. p·⌈log2 p⌉ empty messages, ⌈log2 p⌉ per rank.
 */
export async function disseminationBarrier(call: CollectiveCall): Promise<void> {
  const p = call.size;
  const r = call.rank;
  for (let d = 1; d < p; d *= 2) {
    await call.exchange((r + d) % p, null, (r - d + p) % p);
  }
}
