import { CommUsageError } from "@ptcluster/protocol";
import { recursiveDoubling, ringAllreduce, useRing } from "./allreduce.js";
import { CallChecker } from "./call-checker.js";
import { CollectiveCall, describeMeta } from "./collective-call.js";
import { disseminationBarrier, pairwiseAlltoall, ringAllgather } from "./exchange.js";
import { describe, isTypedArray, shapeOf, validateOp, type ReduceOp, type TypedArray } from "./reduce-ops.js";
import { binomialBcast, binomialReduce, linearGather, linearScatter } from "./rooted.js";
import type { CallOptions, Wire } from "./wire.js";

export type { ReduceOp, ReduceOpName } from "./reduce-ops.js";

/** Options of `allreduce`. */
export interface AllreduceOptions extends CallOptions {
  /** Receives the result, and is returned: a typed array of the value's kind and length (it may be the value). */
  out?: ArrayBufferView | undefined;
}

/** Options of the collectives with a root. */
export interface RootedOptions extends CallOptions {
  /** The rank that sends (`bcast`, `scatter`) or receives (`reduce`, `gather`); 0 by default, as in MPI. */
  root?: number | undefined;
}

/**
 * The collectives of `engine.comm`, over one rank's `Wire`. Pure: no sockets, only the wire's
 * point-to-point messages.
 *
 * Every rank of the group must make the same collective calls in the same order (with the same
 * root), as in MPI: the n-th call on each rank is collective #n, its messages travel on channel
 * `c:<n>` with `{ op, root }`, and a difference aborts the group with `CommMismatchError`
 * rather than a hang: every call still waiting fails, and so does every later call (a call that
 * waited for nobody, as a bcast's root, may have returned before the difference was seen).
 * `timeout` covers the whole call.
 *
 * @example
 * const coll = new Collectives(wire);
 * const total = await coll.allreduce(local, "sum");              // the same on every rank
 * const parts = await coll.gather(local, { root: 0 });           // rank order on rank 0
 */
export class Collectives {
  private seq = 0;
  private readonly checker: CallChecker;

  constructor(private readonly wire: Wire) {
    this.checker = new CallChecker(wire);
  }

  get rank(): number {
    return this.wire.rank;
  }

  get size(): number {
    return this.wire.size;
  }

  /** The root's `value` on every rank (others pass anything, usually `undefined`). */
  async bcast<T>(value: T, options: RootedOptions = {}): Promise<T> {
    const root = options.root ?? 0;
    const call = this.begin("bcast", root, options);
    return (await this.run(call, () => binomialBcast(call, value, root))) as T;
  }

  /** The reduction of every rank's `value` on the root, in rank order; `undefined` on the others. */
  async reduce<T>(value: T, op: ReduceOp, options: RootedOptions = {}): Promise<T | undefined> {
    const root = options.root ?? 0;
    const call = this.begin("reduce", root, options, value, op);
    const result = await this.run(call, () => binomialReduce(call, value, op, root));
    return (call.rank === root ? ownCopy(result, value) : undefined) as T | undefined;
  }

  /** The reduction of every rank's `value`, the same (to the bit) on every rank. */
  async allreduce<T>(value: T, op: ReduceOp, options: AllreduceOptions = {}): Promise<T> {
    const call = this.begin("allreduce", undefined, options, value, op);
    const out = options.out;
    if (out !== undefined && !(isTypedArray(value) && isTypedArray(out) && sameShape(value, out)))
      call.fail(
        new CommUsageError(
          `${call.name}: expected \`out\` to be a typed array of the value's kind and length, got ${describe(out)} for ${describe(value)}. Pass an array like the value (or the value itself), or no \`out\`.`,
        ),
      );
    const result = await this.run(call, () =>
      useRing(value, op, call.size) && typeof op === "string"
        ? ringAllreduce(call, value, op, out as TypedArray | undefined)
        : recursiveDoubling(call, value, op),
    );
    if (out === undefined) return ownCopy(result, value) as T;
    if (result !== out) (out as TypedArray).set(result as TypedArray & ArrayLike<number> & ArrayLike<bigint>);
    return out as T;
  }

  /** Every rank's `value` in rank order on the root; `undefined` on the others. */
  async gather<T>(value: T, options: RootedOptions = {}): Promise<T[] | undefined> {
    const root = options.root ?? 0;
    const call = this.begin("gather", root, options);
    return (await this.run(call, () => linearGather(call, value, root))) as T[] | undefined;
  }

  /** Every rank's `value` in rank order, on every rank. */
  async allgather<T>(value: T, options: CallOptions = {}): Promise<T[]> {
    const call = this.begin("allgather", undefined, options);
    return (await this.run(call, () => ringAllgather(call, value))) as T[];
  }

  /** `values[rank]` of the root's `values` (an array of `size` values; the others pass anything). */
  async scatter<T>(values: readonly T[] | undefined, options: RootedOptions = {}): Promise<T> {
    const root = options.root ?? 0;
    const call = this.begin("scatter", root, options);
    if (call.rank === root) this.checkLength(call, values, "the root's `values`");
    return (await this.run(call, () => linearScatter(call, values, root))) as T;
  }

  /** Each rank passes `size` values, the j-th for rank j, and gets one from each rank in rank order. */
  async alltoall<T>(values: readonly T[], options: CallOptions = {}): Promise<T[]> {
    const call = this.begin("alltoall", undefined, options);
    this.checkLength(call, values, "`values`");
    return (await this.run(call, () => pairwiseAlltoall(call, values))) as T[];
  }

  /** Resolves once every rank has called it. */
  async barrier(options: CallOptions = {}): Promise<void> {
    const call = this.begin("barrier", undefined, options);
    await this.run(call, () => disseminationBarrier(call));
  }

  /** Stops the listening that checks calls on rank 0 (at the end of the task). */
  close(): void {
    this.checker.close();
  }

  /** Takes the next sequence number, tells rank 0 what this rank calls, and validates the call. */
  private begin(
    op: string,
    root: number | undefined,
    options: CallOptions,
    value?: unknown,
    reduceOp?: ReduceOp,
  ): CollectiveCall {
    const seq = this.seq++;
    const call = new CollectiveCall(this.wire, seq, op, root, options);
    const builtin = typeof reduceOp === "string";
    this.checker.announce({ seq, call: describeMeta(call.meta), shape: builtin ? shapeOf(value) : undefined });
    // A bad call ends the group's call on every rank: the others would wait for this one's part.
    const timeout = options.timeout;
    if (!(timeout === undefined || (typeof timeout === "number" && timeout >= 0 && Number.isFinite(timeout)))) {
      call.fail(
        new CommUsageError(
          `${call.name}: expected \`timeout\` to be a non-negative number of milliseconds, got ${describe(timeout)}.`,
        ),
      );
    }
    if (root !== undefined && !(Number.isInteger(root) && root >= 0 && root < this.size)) {
      call.fail(
        new CommUsageError(
          `${call.name}: expected \`root\` to be a rank from 0 to ${this.size - 1}, got ${describe(root)}.`,
        ),
      );
    }
    if (reduceOp !== undefined) {
      try {
        validateOp(reduceOp, call.name);
      } catch (error) {
        call.fail(error as CommUsageError);
      }
      if (builtin && !(typeof value === "number" || typeof value === "bigint" || isTypedArray(value))) {
        call.fail(
          new CommUsageError(
            `${call.name}: "${reduceOp}" combines numbers, bigints or typed arrays, got ${describe(value)} on rank ${this.rank}. ` +
              `Pass a function operator (a, b) => c to reduce other values.`,
          ),
        );
      }
    }
    return call;
  }

  private checkLength(call: CollectiveCall, values: unknown, what: string): void {
    if (Array.isArray(values) && values.length === this.size) return;
    call.fail(
      new CommUsageError(
        `${call.name}: expected ${what} on rank ${this.rank} to be an array of ${this.size} values (one per rank), got ${describe(values)}.`,
      ),
    );
  }

  /**
   * Runs an algorithm. A usage error found on the way (values that cannot combine) ends the call
   * on every rank; so does an error thrown by a function operator, which this rank rethrows as
   * it is while the others, who would wait for ever on this rank's part, get `CommPeerLostError`.
   */
  private async run<R>(call: CollectiveCall, algorithm: () => Promise<R>): Promise<R> {
    try {
      return await algorithm();
    } catch (error) {
      if (error instanceof CommUsageError) call.fail(error);
      if (!isCommError(error)) {
        const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        this.wire.abort({
          code: "ERR_PTC_COMM_PEER_LOST",
          message: `Rank ${this.rank} left ${call.name}: its reduction operator threw ${what}. Fix the operator; every rank's call was ended.`,
        });
      }
      throw error;
    }
  }
}

function isCommError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PTC_COMM_");
}

function sameShape(a: TypedArray, b: TypedArray): boolean {
  return a.constructor === b.constructor && a.length === b.length;
}

/** A reduction's result is never the caller's own typed array (one rank, or a reduce with no children). */
function ownCopy(result: unknown, input: unknown): unknown {
  return isTypedArray(result) && result === input ? result.slice() : result;
}
