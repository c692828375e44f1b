import { AsyncResult, type TaskMetadata } from "./async-result.js";
import { InputOrder } from "./input-order.js";

/** @internal Where whatever runs a map hands its results: blocks of consecutive items, then the end. */
export interface MapOutput {
  /** Values of items `start…start + values.length - 1`, in any order of blocks. */
  deliver(start: number, values: unknown[]): void;
  /** Every item finished (no error), or the map failed or was cancelled (its error). */
  finish(error?: Error): void;
}

/** @internal What a map result is built from. */
export interface MapResultInit {
  /** Per-task metadata, filled in by the runner (one entry per engine block or per chunk). */
  metadata: TaskMetadata[];
  /** This client's task ids, filled in by the runner as it submits. */
  ids: number[];
  clientId: string;
  /** Number of items, when known up front. */
  length: number | undefined;
  /** Items read from the input so far (for an input of unknown length). */
  itemsRead?: () => number;
  /** Iterate in input order (true) or in order of completion. */
  ordered: boolean;
  /** Cancels what has not finished. */
  onAbort: (reason?: unknown) => void;
}

interface Arrival {
  start: number;
  count: number;
}

/**
 * The result of a map on any view: a promise of every value in input order (`await`, `then`,
 * `catch`, `finally`, with the `AsyncResult` methods) and an async iterable of the values as they
 * arrive, both, as often as wanted. It runs to completion whether or not anyone consumes it, and
 * keeps every value; each `for await` gets its own cursor over the values delivered so far (input
 * order, or completion order for `lb.map(…, { ordered: false })`). Breaking out of a loop before
 * the map has finished cancels what is left.
 *
 * ```ts
 * const squares = lb.map((x: number) => x * x, items);
 * for await (const s of squares) console.log(s);   // as they arrive
 * const all = await squares;                       // every value, in input order
 * ```
 *
 * The awaited array is the map's own record, the same one on every `await`: iterations read it too,
 * so copy it before changing it in place.
 */
export class MapResult<R> extends AsyncResult<R[]> implements AsyncIterable<R> {
  /** Values of the items delivered so far, in input order (a contiguous prefix). */
  private readonly values: R[] = [];
  private readonly order = new InputOrder<R>((_start, block) => {
    const values = this.values;
    for (let i = 0; i < block.length; i++) values.push(block[i] as R);
  });
  /** Blocks in order of arrival, for iterators in completion order. */
  private readonly arrivals: Arrival[] | undefined;
  private readonly count: number | undefined;
  private readonly itemsRead: (() => number) | undefined;
  private readonly settle: { resolve: (v: R[]) => void; reject: (e: unknown) => void };
  private ended = false;
  private failure: Error | undefined;
  /** Resolves the next time a block arrives or the map ends; shared by every waiting iterator. */
  private pulse: { promise: Promise<void>; resolve: () => void } | undefined;

  private constructor(init: MapResultInit) {
    let settle: { resolve: (v: R[]) => void; reject: (e: unknown) => void } | undefined;
    super((resolve, reject) => (settle = { resolve, reject }), init.metadata, init.onAbort, init.ids, init.clientId);
    this.settle = settle as unknown as { resolve: (v: R[]) => void; reject: (e: unknown) => void };
    this.count = init.length;
    this.itemsRead = init.itemsRead;
    this.arrivals = init.ordered ? undefined : [];
  }

  /** @internal A map result and the output its runner delivers into. */
  static open<R>(init: MapResultInit): { result: MapResult<R>; output: MapOutput } {
    const result = new MapResult<R>(init);
    return {
      result,
      output: { deliver: (start, values) => result.deliver(start, values as R[]), finish: (err) => result.finish(err) },
    };
  }

  /** Number of items, when the input's length is known. */
  get length(): number | undefined {
    return this.count;
  }

  /** How many items it is made of (for an input of unknown length: the items read from it so far). */
  override get total(): number {
    return this.count ?? this.itemsRead?.() ?? this.done;
  }

  /** Cancels what has not finished: queued tasks are dropped, running ones signalled, then stopped. */
  override abort(reason?: unknown): void {
    if (!this.ended) super.abort(reason);
  }

  [Symbol.asyncIterator](): AsyncIterator<R> {
    return this.arrivals ? this.inArrivalOrder(this.arrivals) : this.inInputOrder();
  }

  override get [Symbol.toStringTag](): string {
    return "MapResult";
  }

  private deliver(start: number, block: R[]): void {
    if (this.ended || block.length === 0) return;
    this.done += block.length;
    this.arrivals?.push({ start, count: block.length });
    this.order.add(start, block);
    this.wake();
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (error) this.settle.reject(error);
    else this.settle.resolve(this.values);
    this.wake();
  }

  private async *inInputOrder(): AsyncGenerator<R, void, undefined> {
    let complete = false;
    try {
      let i = 0;
      while (true) {
        if (i < this.values.length) yield this.values[i++] as R;
        else if (this.ended) break;
        else await this.changed();
      }
      if (this.failure) throw this.failure;
      complete = true;
    } finally {
      // Left early (break, return, a throw in the loop's body) while the map runs: cancel the rest.
      if (!complete) this.abort();
    }
  }

  private async *inArrivalOrder(arrivals: Arrival[]): AsyncGenerator<R, void, undefined> {
    let complete = false;
    try {
      let b = 0;
      let k = 0;
      while (true) {
        const block = arrivals[b];
        if (block === undefined) {
          if (this.ended) break;
          await this.changed();
        } else if (k < block.count) {
          // A block is either in the input-order record already or still waits for those before it.
          const index = block.start + k++;
          yield (
            block.start < this.values.length
              ? this.values[index]
              : this.order.waiting(block.start)?.[index - block.start]
          ) as R;
        } else {
          b++;
          k = 0;
        }
      }
      if (this.failure) throw this.failure;
      complete = true;
    } finally {
      if (!complete) this.abort();
    }
  }

  private changed(): Promise<void> {
    if (!this.pulse) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.pulse = { promise, resolve };
    }
    return this.pulse.promise;
  }

  private wake(): void {
    const pulse = this.pulse;
    this.pulse = undefined;
    pulse?.resolve();
  }
}
