import {
  EMPTY_PART,
  Deque,
  MessageTooLargeError,
  TaskCancelledError,
  assertCloneable,
  decodeValue,
  encodeValue,
  encodedSize,
  type Part,
  type PipeFailedMsg,
  type PipeOutMsg,
  type PipeStage,
  type StageKind,
  type StageStats,
} from "@ptcluster/protocol";
import { shipValueFunction, type ShippedFunction } from "../functions/ship.js";
import { pipeFailure } from "./failure.js";
import type { ResolvedPipelineOptions, StageOptions } from "./options.js";
import type { PipeHandle, PipePort, PipeSink } from "./pipe-port.js";
import { StageBars } from "./progress.js";

/** A stage as the builder describes it. */
export interface StageSpec {
  kind: StageKind;
  fn: ShippedFunction;
  opts: StageOptions;
}

/** Items per `pipe_items` message at most (a batch is also flushed at the end of each turn). */
export const ITEMS_PER_BATCH = 256;
/** Functions inside items travel as source, as in a map's arguments. */
const SEND = { shipFunction: shipValueFunction };

type Input = { sync: true; it: Iterator<unknown> } | { sync: false; it: AsyncIterator<unknown> };

/**
 * One run of a pipeline: reads the input lazily into a window, sends items to the controller in
 * batches, takes finished items back (reordering them in input order unless `ordered: false`),
 * and hands outputs to one consumer, its iterator.
 *
 * The window: item `k` is sent only when `k < consumed + maxInFlight`, where `consumed` counts the
 * items whose outputs were all handed to the consumer. Ordered, those are items `0…consumed-1`,
 * so the window bounds the reordering buffer and the read-ahead; unordered, it bounds items sent
 * and not yet yielded. A consumer that stops pulling stops the reading of the input.
 */
export class PipeRun implements PipeSink {
  #handle: PipeHandle | undefined;
  #input: Input | undefined;
  /** Items read and sent: the index of the next one. */
  #next = 0;
  /** Items the controller reported finished. */
  #finished = 0;
  /** Items whose outputs were all handed to the consumer. */
  #consumed = 0;
  #inputDone = false;
  #endSent = false;
  /** The controller's last message came (`end`): the final stats are in. */
  #endSeen = false;
  #reading = false;
  /** Over: finished, failed or cancelled. */
  #over = false;
  #error: Error | undefined;
  /** Finished items in yield order, each its outputs; `#at` is the position in the first. */
  readonly #ready = new Deque<unknown[]>();
  #at = 0;
  /** Ordered: finished items waiting for an earlier one, and the next item due. */
  readonly #early = new Map<number, unknown[]>();
  #due = 0;
  #batch: Part[] = [];
  #batchFirst = 0;
  #batchBytes = 0;
  #flushTimer: NodeJS.Immediate | undefined;
  #stats: StageStats[];
  #bars: StageBars | undefined;
  #wake: (() => void) | undefined;
  readonly #onSignal: (() => void) | undefined;

  constructor(
    private readonly port: PipePort,
    source: Iterable<unknown> | AsyncIterable<unknown>,
    private readonly stages: readonly StageSpec[],
    private readonly opts: ResolvedPipelineOptions,
    private readonly length: number | undefined,
  ) {
    this.#stats = stages.map((s, i) => zeroStats(i, s));
    const signal = opts.signal;
    if (signal?.aborted) {
      this.#fail(
        new TaskCancelledError("The pipeline was cancelled before it started.", { cause: signal.reason }),
        false,
      );
      return;
    }
    this.#input =
      Symbol.asyncIterator in source
        ? { sync: false, it: source[Symbol.asyncIterator]() }
        : { sync: true, it: source[Symbol.iterator]() };
    const scopes = stages.map((s) =>
      s.opts.scope ? encodeValue(s.opts.scope, "scope", assertCloneable(s.opts.scope, "scope", SEND)) : EMPTY_PART,
    );
    const wire = stages.map((s) => wireStage(s));
    const bytes = scopes.reduce((n, p) => n + encodedSize(p), 0) + wire.reduce((n, s) => n + (s.src?.length ?? 0), 0);
    if (bytes > port.maxMessageBytes)
      throw new MessageTooLargeError("This pipeline's functions and scopes", bytes, port.maxMessageBytes);
    this.#handle = port.openPipe(wire, scopes, opts.onError, this);
    if (signal) {
      this.#onSignal = () => this.abort(signal.reason);
      signal.addEventListener("abort", this.#onSignal, { once: true });
    }
    if (opts.progress) {
      let flat = false;
      const known = stages.map((s) => {
        const k = flat ? undefined : this.length;
        if (s.kind === "flatMap" || s.kind === "filter") flat = true;
        return k;
      });
      this.#bars = new StageBars(
        stages.map((s) => s.fn.name),
        (i) => known[i],
      );
    }
    void this.#pump();
  }

  /** The latest figures per stage (zeros until the controller sends some). */
  stats(): StageStats[] {
    return this.#stats.map((s) => ({ ...s }));
  }

  /** Items read from the input so far. */
  get itemsRead(): number {
    return this.#next;
  }

  get over(): boolean {
    return this.#over;
  }

  /** Cancels the run: the iteration rejects with `TaskCancelledError` (after what is already here). */
  abort(reason?: unknown): void {
    if (this.#over) return;
    this.#fail(
      new TaskCancelledError("The pipeline was cancelled.", reason === undefined ? undefined : { cause: reason }),
      true,
    );
  }

  /** The consumer is gone (it broke out of its loop): cancel everything, keep nothing. */
  stop(reason: string): void {
    this.#ready.removeWhere(() => true);
    this.#early.clear();
    if (this.#over) return;
    this.#end(undefined, reason);
  }

  /** The consumer's side: outputs in order, then the run's error if it failed. */
  async *outputs(): AsyncGenerator<unknown, void, undefined> {
    let complete = false;
    try {
      while (true) {
        const block = this.#ready.peek();
        if (block !== undefined) {
          if (this.#at < block.length) {
            const value = block[this.#at++];
            if (this.#at === block.length) this.#taken();
            yield value;
          } else this.#taken();
          continue;
        }
        if (this.#over) break;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
      if (this.#error) throw this.#error;
      complete = true;
    } finally {
      if (!complete) this.stop("the consumer stopped iterating");
    }
  }

  // ---- the input side --------------------------------------------------------------------------

  /** Reads and sends items while the window has room and the input has items. */
  async #pump(): Promise<void> {
    if (this.#reading || this.#over || this.#inputDone) return;
    this.#reading = true;
    const input = this.#input as Input;
    try {
      while (!this.#over && this.#next < this.#consumed + this.opts.maxInFlight) {
        const r = input.sync ? input.it.next() : await input.it.next();
        if (this.#over) return;
        if (r.done) {
          this.#inputDone = true;
          break;
        }
        this.#send(r.value);
      }
    } catch (err) {
      this.#fail(err as Error, true);
      return;
    } finally {
      this.#reading = false;
    }
    if (this.#inputDone && !this.#endSent) {
      this.#flush();
      this.#endSent = true;
      this.#handle?.end(this.#next);
      // The controller's `end` is awaited: the process stays up for it.
      if (!this.#endSeen) this.#handle?.busy(true);
      this.#checkDone();
    }
  }

  #send(value: unknown): void {
    const k = this.#next;
    const root = `items[${k}]`;
    const part = encodeValue(value, root, assertCloneable(value, root, SEND));
    const bytes = encodedSize(part);
    const max = this.port.maxMessageBytes;
    if (bytes > max) throw new MessageTooLargeError(`Pipeline input item ${k}`, bytes, max);
    if (this.#batch.length >= ITEMS_PER_BATCH || this.#batchBytes + bytes > max) this.#flush();
    if (this.#batch.length === 0) this.#batchFirst = k;
    this.#batch.push(part);
    this.#batchBytes += bytes;
    this.#next++;
    if (this.#next - this.#finished === 1) this.#handle?.busy(true);
    // The rest of this turn's items join the batch.
    this.#flushTimer ??= setImmediate(() => this.#flush());
  }

  #flush(): void {
    if (this.#flushTimer) clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#batch.length === 0 || this.#over) return;
    const parts = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#handle?.items(this.#batchFirst, parts);
  }

  // ---- the consumer side -----------------------------------------------------------------------

  /** The first ready item was all handed out: it leaves the window, which may let the input move. */
  #taken(): void {
    this.#ready.shift();
    this.#at = 0;
    this.#consumed++;
    this.#skipEmpty();
    if (!this.#reading && !this.#inputDone && !this.#over) void this.#pump();
  }

  /** Items with no output at the front (filtered out, skipped) count as yielded at once. */
  #skipEmpty(): void {
    while (this.#at === 0 && this.#ready.peek()?.length === 0) {
      this.#ready.shift();
      this.#consumed++;
    }
  }

  // ---- what the controller says ------------------------------------------------------------------

  onOut(msg: PipeOutMsg, parts: Part[]): void {
    if (this.#over) return;
    let p = 0;
    try {
      for (const [item, n] of msg.done) {
        const values = new Array<unknown>(n);
        for (let j = 0; j < n; j++) {
          const part = parts[p++] ?? EMPTY_PART;
          values[j] = decodeValue(part.body, part.frames);
        }
        this.#finished++;
        if (!this.opts.ordered) {
          if (n > 0) this.#ready.push(values);
          else this.#consumed++;
        } else if (item !== this.#due) this.#early.set(item, values);
        else {
          this.#ready.push(values);
          this.#due++;
          for (let v = this.#early.get(this.#due); v !== undefined; v = this.#early.get(this.#due)) {
            this.#early.delete(this.#due++);
            this.#ready.push(v);
          }
        }
      }
    } catch (err) {
      this.#fail(err as Error, true);
      return;
    }
    if (msg.stats) this.#setStats(msg.stats);
    if (msg.end) this.#endSeen = true;
    if (this.#finished === this.#next && (!this.#endSent || this.#endSeen)) this.#handle?.busy(false);
    this.#skipEmpty();
    this.#checkDone();
    this.#wake?.();
    if (!this.#reading && !this.#inputDone && !this.#over) void this.#pump();
  }

  onFailed(msg: PipeFailedMsg, parts: Part[]): void {
    if (this.#over) return;
    if (msg.stats) this.#setStats(msg.stats);
    this.#fail(
      pipeFailure(
        msg,
        parts,
        this.stages.map((s) => ({ name: s.fn.name, timeout: s.opts.timeout })),
      ),
      false,
    );
  }

  onFailure(err: Error): void {
    this.#fail(err, false);
  }

  #setStats(stats: StageStats[]): void {
    this.#stats = stats;
    this.#bars?.update(stats);
  }

  #checkDone(): void {
    // The controller's `end` comes once it has the input's end and every item finished: the run
    // is over with it, so `stats()` is final (it may come a round trip after the last item).
    if (this.#endSent && this.#endSeen && this.#finished === this.#next) this.#end(undefined, undefined);
  }

  /** Fails the run with `err`; `cancel` tells the controller to drop what it has in flight. */
  #fail(err: Error, cancel: boolean): void {
    if (this.#over) return;
    this.#end(err, cancel ? err.message : undefined);
  }

  #end(err: Error | undefined, cancelReason: string | undefined): void {
    this.#over = true;
    this.#error = err;
    if (this.#flushTimer) clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#batch = [];
    if (cancelReason !== undefined) this.#handle?.cancel(cancelReason);
    this.#handle?.close();
    this.#bars?.stop();
    if (this.#onSignal) this.opts.signal?.removeEventListener("abort", this.#onSignal);
    // An input left unfinished is closed, so a generator's `finally` runs.
    if (!this.#inputDone) {
      const it = this.#input?.it;
      void Promise.resolve()
        .then(() => it?.return?.())
        .catch(() => undefined);
    }
    this.#wake?.();
  }
}

function wireStage(s: StageSpec): PipeStage {
  const w: PipeStage = { kind: s.kind, fn: s.fn.hash, src: s.fn.src, name: s.fn.name };
  const o = s.opts;
  if (o.scope) w.scope = Object.keys(o.scope);
  if (o.engines) w.targets = [...o.engines];
  if (o.concurrency !== undefined) w.concurrency = o.concurrency;
  if (o.timeout !== undefined) w.timeout = o.timeout;
  if (o.retries) w.retries = o.retries;
  return w;
}

/** A stage's figures before the controller reported any. */
export function zeroStats(stage: number, s: StageSpec): StageStats {
  return {
    stage,
    kind: s.kind,
    name: s.fn.name,
    inFlight: 0,
    done: 0,
    failed: 0,
    retried: 0,
    itemsPerSec: 0,
    p50Ms: 0,
    p95Ms: 0,
  };
}
