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
 * The two algorithms of `allreduce`.
 *
 * Recursive doubling, for small values and function operators: ⌈log2 p⌉ rounds in which each
 * rank swaps its partial result with the rank whose index differs in one bit; each rank sends
 * log2 p whole values. When p is not a power of two the first 2·rem ranks (rem = p − 2^⌊log2 p⌋)
 * fold in pairs first (odd ones take the part of the even one below) and the even ones get the
 * result back at the end: two rounds and 2·rem messages more.
 *
 * Ring reduce-scatter + allgather, for large typed arrays under a built-in operator: the array is
 * cut in p chunks; in p − 1 steps each rank passes one chunk to the next rank and combines the one
 * from the previous rank, after which each rank holds one fully reduced chunk; p − 1 more steps
 * pass the reduced chunks round. Each rank sends 2·(p − 1)/p of the array, the bandwidth bound,
 * whatever p. Chunks are views of the one result array (`subarray`), never copies, and the
 * caller's array is only read.
 */

/** From this size on (bytes), typed arrays under a built-in operator go round the ring. */
export const RING_MIN_BYTES = 64 * 1024;

export function useRing(value: unknown, op: ReduceOp, size: number): value is TypedArray {
  return (
    typeof op === "string" &&
    isTypedArray(value) &&
    value.byteLength >= RING_MIN_BYTES &&
    value.length >= size &&
    size > 1
  );
}

export async function recursiveDoubling(call: CollectiveCall, value: unknown, op: ReduceOp): Promise<unknown> {
  const p = call.size;
  const r = call.rank;
  let pof2 = 1;
  while (pof2 * 2 <= p) pof2 *= 2;
  const rem = p - pof2;
  const acc = new Accumulator(call, op, value);
  let newrank = r - rem;
  if (r < 2 * rem) {
    if (r % 2 === 0) {
      await call.send(r + 1, acc.value);
      newrank = -1; // sits out, gets the result from r + 1
    } else {
      acc.add(await call.recv(r - 1), true);
      newrank = r >> 1;
    }
  }
  if (newrank >= 0) {
    for (let mask = 1; mask < pof2; mask <<= 1) {
      const newpartner = newrank ^ mask;
      const partner = newpartner < rem ? newpartner * 2 + 1 : newpartner + rem;
      acc.add(await call.exchange(partner, acc.value, partner), partner < r);
    }
  }
  if (r < 2 * rem) {
    if (r % 2 === 1) await call.send(r - 1, acc.value);
    else return call.recv(r + 1);
  }
  return acc.value;
}

export async function ringAllreduce(
  call: CollectiveCall,
  value: TypedArray,
  op: ReduceOpName,
  out?: TypedArray,
): Promise<TypedArray> {
  const p = call.size;
  const r = call.rank;
  const n = value.length;
  // The result, `out` or the one array allocated, neither zeroed nor a copy of `value`: each chunk
  // is written once, by its combination (step s of the reduce-scatter writes chunk r − s − 1 from
  // `value`'s and the part received) or, for chunk r, by the allgather. Fresh pages fault in as
  // they are written. So `out` may be `value` itself: a chunk of `value` is read (or sent, which
  // copies it into its message) before it is written, never after.
  const acc = out ?? sameKind(value, n);
  const start = (i: number): number => Math.floor((i * n) / p);
  const chunkOf = (a: TypedArray, i: number): TypedArray => a.subarray(start(i), start(i + 1)) as TypedArray;
  const chunk = (i: number): TypedArray => chunkOf(acc, i);
  const mod = (i: number): number => ((i % p) + p) % p;
  const next = mod(r + 1);
  const prev = mod(r - 1);
  for (let s = 0; s < p - 1; s++) {
    // Step 0 passes on this rank's own chunk, straight from `value`; later steps what the one before combined.
    const part = await call.exchange(next, s === 0 ? chunkOf(value, r) : chunk(mod(r - s)), prev);
    const at = mod(r - s - 1);
    const dst = chunk(at);
    checkSameArrays(dst, part, call.name);
    combineInto(op, dst, part as TypedArray, chunkOf(value, at));
    call.release(part);
  }
  for (let s = 0; s < p - 1; s++) {
    const part = await call.exchange(next, chunk(mod(r + 1 - s)), prev);
    const at = mod(r - s);
    checkSameArrays(chunk(at), part, call.name);
    acc.set(part as TypedArray & ArrayLike<number> & ArrayLike<bigint>, start(at));
    call.release(part);
  }
  return acc;
}

/**
 * A new array of `value`'s kind, NOT zeroed (the ring writes every element; zeroing 8 MiB took
 * 2-3 ms a call), on an ArrayBuffer of its own (offset 0: aligned).
 */
function sameKind(value: TypedArray, n: number): TypedArray {
  const bytes = Buffer.allocUnsafeSlow(n * value.BYTES_PER_ELEMENT);
  if (Buffer.isBuffer(value)) return bytes;
  return new (value.constructor as new (b: ArrayBufferLike, at: number, n: number) => TypedArray)(bytes.buffer, 0, n);
}

/**
 * A partial result. Under a built-in operator a typed array is copied once, at the first
 * combination (the caller's array is never written), and combined in place after that.
 */
class Accumulator {
  private owned = false;
  constructor(
    private readonly call: CollectiveCall,
    private readonly op: ReduceOp,
    public value: unknown,
  ) {}

  /** Adds `part`, which holds lower ranks than this partial result when `lower`. */
  add(part: unknown, lower: boolean): void {
    const op = this.op;
    if (this.owned && typeof op === "string" && isTypedArray(this.value)) {
      // Built-in operators are commutative: the order does not change the result's bits.
      checkSameArrays(this.value, part, this.call.name);
      combineInto(op, this.value, part as TypedArray);
      return;
    }
    this.value = lower ? combine(op, part, this.value, this.call.name) : combine(op, this.value, part, this.call.name);
    this.owned = typeof op === "string" && isTypedArray(this.value);
  }
}
