import type { CollectiveCall } from "./collective-call.js";
import {
  checkSameArrays,
  combine,
  combineInto,
  isTypedArray,
  type ReduceOp,
  type ReduceOpName,
  type TypedArray,
} from "./reduce-ops.js";

/**
 * The rooted collectives. `bcast` and `reduce` run on a binomial tree over the ranks renumbered
 * from the root (`vrank`): ⌈log2 p⌉ rounds, p − 1 messages in all, at most ⌈log2 p⌉ sent or
 * received by any rank. `gather` and `scatter` are linear (p − 1 messages, all to or from the
 * root): every part must cross the root's link once whatever the algorithm.
 */

/** The root's value on every rank. */
export async function binomialBcast(call: CollectiveCall, value: unknown, root: number): Promise<unknown> {
  const p = call.size;
  const vrank = (call.rank - root + p) % p;
  let mask = 1;
  while (mask < p) {
    if (vrank & mask) {
      value = await call.recv(toRank(vrank - mask, root, p));
      break;
    }
    mask <<= 1;
  }
  // Children are vrank + 2^k below this rank's lowest set bit; the farthest first, as its subtree is the largest.
  const sends: Promise<void>[] = [];
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (vrank + mask < p) sends.push(call.send(toRank(vrank + mask, root, p), value));
  }
  await Promise.all(sends);
  return value;
}

/**
 * `v_0 op v_1 op … op v_{p−1}` on the root, `undefined` elsewhere. Each rank combines its
 * children's parts after its own (`op(lower, higher)`), so a function operator sees the values in
 * rank order when the tree is rooted at rank 0; for another root a function operator's result
 * is reduced on rank 0's tree then sent to the root (one message more), to keep that order.
 */
export async function binomialReduce(
  call: CollectiveCall,
  value: unknown,
  op: ReduceOp,
  root: number,
): Promise<unknown> {
  const treeRoot = typeof op === "function" ? 0 : root;
  const p = call.size;
  const vrank = (call.rank - treeRoot + p) % p;
  let acc = value;
  let owned = false; // whether `acc` is a typed array of ours, combined in place from then on
  for (let mask = 1; mask < p; mask <<= 1) {
    if (vrank & mask) {
      await call.send(toRank(vrank - mask, treeRoot, p), acc);
      acc = undefined;
      break;
    }
    if (vrank + mask < p) {
      const part = await call.recv(toRank(vrank + mask, treeRoot, p));
      if (owned && typeof op === "string" && isTypedArray(acc)) {
        combineIntoChecked(call, op, acc, part);
      } else {
        acc = combine(op, acc, part, call.name);
        owned = isTypedArray(acc) && typeof op === "string";
      }
    }
  }
  if (treeRoot === root) return call.rank === root ? acc : undefined;
  if (call.rank === treeRoot) await call.send(root, acc);
  if (call.rank === root) return call.recv(treeRoot);
  return undefined;
}

/** Every rank's value, in rank order, on the root; `undefined` elsewhere. */
export async function linearGather(call: CollectiveCall, value: unknown, root: number): Promise<unknown[] | undefined> {
  if (call.rank !== root) {
    await call.send(root, value);
    return undefined;
  }
  const parts: Promise<unknown>[] = [];
  for (let r = 0; r < call.size; r++) parts.push(r === root ? Promise.resolve(value) : call.recv(r));
  return Promise.all(parts);
}

/** `values[rank]` of the root's array on every rank. */
export async function linearScatter(
  call: CollectiveCall,
  values: readonly unknown[] | undefined,
  root: number,
): Promise<unknown> {
  if (call.rank !== root) return call.recv(root);
  const sends: Promise<void>[] = [];
  for (let r = 0; r < call.size; r++) if (r !== root) sends.push(call.send(r, values?.[r]));
  await Promise.all(sends);
  return values?.[root];
}

function toRank(vrank: number, root: number, p: number): number {
  return (vrank + root) % p;
}

function combineIntoChecked(call: CollectiveCall, op: ReduceOpName, acc: TypedArray, part: unknown): void {
  checkSameArrays(acc, part, call.name);
  combineInto(op, acc, part as TypedArray);
}
