import { Deque, PtclusterError } from "@ptcluster/protocol";
import type { TaskMetadata } from "../results/async-result.js";
import { InputOrder } from "../results/input-order.js";
import { noteResult } from "../results/result-scope.js";
import { MapFeed, type CallSource, type MapContext } from "./map-feed.js";
import type { ResolvedMapOptions } from "./lb-options.js";

/** Raised when an `imap` stream, which can be iterated once, is iterated again. */
export class StreamConsumedError extends PtclusterError {
  constructor() {
    super(
      "ERR_PTC_STREAM_CONSUMED",
      "This `imap` stream was iterated already: it yields each result once and keeps none. Iterate `lb.imap(...)` again to run the map again, or use `lb.map(...)`, whose result can be awaited and iterated as often as wanted.",
    );
  }
}

/**
 * The stream of `lb.imap(...)`: one pass, bounded memory. It reads the input as results are
 * consumed, keeps at most `maxInFlight` items submitted and not yet yielded, and yields results in
 * input order, or as they complete with `{ ordered: false }`. Breaking out of the loop, an abort
 * signal or `abort()` cancels what is left.
 */
export class MapRun<R> implements AsyncIterable<R> {
  private readonly feed: MapFeed;
  /** Finished chunks not yet fully yielded, and the position in the first. */
  private readonly blocks = new Deque<unknown[]>();
  private at = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private iterated = false;
  private readonly count: number | undefined;

  /** @internal How `lb.imap` makes one (stripped from the public types). */
  static create<R>(ctx: MapContext, source: CallSource, opts: ResolvedMapOptions): MapRun<R> {
    return new MapRun<R>(ctx, source, opts);
  }

  // Private: the public types offer no constructor (streams come from `lb.imap()`).
  private constructor(ctx: MapContext, source: CallSource, opts: ResolvedMapOptions) {
    this.count = source.length;
    const push = (_start: number, values: unknown[]): void => {
      this.blocks.push(values);
      this.wake?.();
    };
    const order = opts.ordered ? new InputOrder<unknown>(push) : undefined;
    this.feed = new MapFeed(ctx, source, opts, {
      deliver: (start, values) => (order ? order.add(start, values) : push(start, values)),
      finish: (err) => {
        this.ended = true;
        this.error = err;
        this.wake?.();
      },
    });
    // Tools such as the REPL cancel what a line of user code started (results/result-scope.ts).
    noteResult(this);
  }

  /** Items finished so far. */
  get progress(): number {
    return this.feed.done;
  }

  /** Number of items, when the input's length is known. */
  get length(): number | undefined {
    return this.count;
  }

  /** A stream keeps no per-chunk metadata (a `map` result does). */
  get metadata(): readonly TaskMetadata[] {
    return [];
  }

  /** Cancels what has not finished: queued chunks are dropped, running ones signalled, then stopped. */
  abort(reason?: unknown): void {
    this.feed.abort(reason);
  }

  [Symbol.asyncIterator](): AsyncIterator<R> {
    if (this.iterated) throw new StreamConsumedError();
    this.iterated = true;
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<R, void, undefined> {
    let complete = false;
    try {
      while (true) {
        const block = this.blocks.peek();
        if (block !== undefined) {
          if (this.at < block.length) {
            const value = block[this.at++];
            this.feed.consumed();
            yield value as R;
          } else {
            this.blocks.shift();
            this.at = 0;
          }
          continue;
        }
        if (this.ended) break;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
      if (this.error) throw this.error;
      complete = true;
    } finally {
      // Left early (break, return, throw): cancel the rest.
      if (!complete) this.feed.abort();
    }
  }
}
