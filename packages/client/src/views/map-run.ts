import { Deque, TaskCancelledError, decodeValue, type ClientTask, type Part, type TaskResult } from "@ptcluster/protocol";
import type { Client } from "../client.js";
import { pendingMetadata, recordResult, type TaskMetadata } from "../results/async-result.js";
import { failureToError } from "../results/remote-errors.js";
import type { ShippedFunction } from "../functions/ship.js";
import type { ResolvedMapOptions } from "./lb-options.js";
import { ProgressReporter } from "./progress.js";

/** What a map needs from its view. */
export interface MapContext {
  client: Client;
  fn: ShippedFunction;
  /** Engines the view balances over (undefined: all). */
  targets: number[] | undefined;
  scope: string[] | undefined;
  retries: number | undefined;
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  /** Resolves when `after`/`follow` dependencies are met (to the engine `follow` pins the map to). */
  gate: Promise<number[] | undefined> | undefined;
  /** Encodes one chunk's argument lists, naming them from `offset` in errors. */
  encode(calls: unknown[][], offset: number): Part;
}

/**
 * The input of a map: columns of arguments held in memory (one array per parameter, zipped a
 * chunk at a time), or an iterator of argument lists read lazily.
 */
export type CallSource =
  | { kind: "array"; columns: unknown[][]; length: number }
  | { kind: "iter"; it: Iterator<unknown[]> | AsyncIterator<unknown[]>; length: number | undefined };

interface Chunk {
  start: number;
  count: number;
  meta: TaskMetadata;
}

/** Aim for chunks that take about this long on an engine, when items are fast. */
const TARGET_CHUNK_MS = 20;
const MAX_CHUNK = 4096;

/**
 * One running map: reads the input lazily, groups items into chunks (each a load-balanced task),
 * keeps at most `maxInFlight` items submitted and not yet consumed, and delivers results in input
 * order or as they complete. Consumed either whole (`await`, which keeps every result) or as a
 * stream (`for await`, which keeps only what is not yet yielded); breaking out of the loop, an
 * abort signal or `abort()` cancels what is left.
 */
export class MapRun<R> implements AsyncIterable<R> {
  private readonly pending = new Map<number, Chunk>();
  private nextIndex = 0;
  private inputDone = false;
  private reading = false;
  private inFlight = 0;
  private stopped = false;
  private error: Error | undefined;
  private chunkSize: number;
  private perItemMs: number | undefined;
  /** Ordered delivery: finished chunks waiting for their turn, by start index. */
  private readonly parked = new Map<number, { values: unknown[]; chunk: Chunk }>();
  private nextToYield = 0;
  /** Results ready to hand to the consumer. */
  private readonly ready = new Deque<{ index: number; value: unknown }>();
  private wake: (() => void) | undefined;
  private done = 0;
  private readonly all: unknown[] | undefined;
  private readonly metas: TaskMetadata[] | undefined;
  private readonly progressBar: ProgressReporter | undefined;
  private readonly total: number | undefined;
  private consumed = false;

  constructor(private readonly ctx: MapContext, private readonly source: CallSource, private readonly opts: ResolvedMapOptions, retain: boolean) {
    this.total = source.length;
    if (retain) {
      this.all = [];
      this.metas = [];
    }
    if (opts.chunkSize !== "auto") this.chunkSize = opts.chunkSize;
    else if (this.total !== undefined) this.chunkSize = Math.max(1, Math.min(64, Math.ceil(this.total / (4 * this.capacity()))));
    else this.chunkSize = 1;
    if (opts.progress) this.progressBar = new ProgressReporter(this.total);
    if (ctx.signal) {
      if (ctx.signal.aborted) this.fail(new TaskCancelledError("The map was cancelled before it started.", { cause: ctx.signal.reason }));
      else ctx.signal.addEventListener("abort", () => this.abort(ctx.signal?.reason), { once: true });
    }
    if (ctx.gate) {
      ctx.gate.then(
        (targets) => {
          if (targets) ctx.targets = targets;
          void this.fill();
        },
        (err: unknown) => this.fail(err as Error),
      );
    } else void this.fill();
  }

  /** Items finished so far. */
  get progress(): number {
    return this.done;
  }

  /** Number of items, when the input's length is known. */
  get length(): number | undefined {
    return this.total;
  }

  /** Per-chunk metadata (engine, times, captured output), for a map that keeps its results. */
  get metadata(): readonly TaskMetadata[] {
    return this.metas ?? [];
  }

  /** Cancels what has not finished: queued chunks are dropped, running ones signalled, then stopped. */
  abort(reason?: unknown): void {
    if (this.stopped) return;
    this.fail(new TaskCancelledError("The map was cancelled.", reason === undefined ? undefined : { cause: reason }));
  }

  /** Every result, in input order. */
  async collect(): Promise<R[]> {
    for await (const _ of this.iterate()) {
      /* results land in `all` */
    }
    return this.all as R[];
  }

  [Symbol.asyncIterator](): AsyncIterator<R> {
    return this.iterate()[Symbol.asyncIterator]();
  }

  private async *iterate(): AsyncGenerator<R> {
    if (this.consumed) throw new Error("A map's results can be consumed once: await it, or iterate it, not both.");
    this.consumed = true;
    let finished = false;
    try {
      while (true) {
        const item = this.ready.shift();
        if (item) {
          this.inFlight--;
          if (this.all) this.all[item.index] = item.value;
          if (!this.inputDone && (this.pending.size === 0 || this.opts.maxInFlight - this.inFlight >= this.chunkSize)) void this.fill();
          yield item.value as R;
          continue;
        }
        if (this.error) throw this.error;
        // Done only when nothing is being read or submitted either (a chunk may be on its way).
        if (this.inputDone && !this.reading && this.pending.size === 0 && this.parked.size === 0) {
          finished = true;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      // Leaving early (break, return, throw): cancel the rest.
      if (!finished && !this.error) this.abort();
      this.progressBar?.stop();
    }
  }

  private notify(): void {
    this.wake?.();
  }

  /** Submits chunks while the window has room and the input has items. */
  private async fill(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      while (!this.stopped && !this.inputDone && this.inFlight < this.opts.maxInFlight) {
        // With an input of unknown length, "auto" learns the items' cost from results: a couple of
        // chunks per engine slot until the first come back, then a few per slot, so later chunks are
        // sized from what earlier ones took instead of the whole input going out in first-guess chunks.
        // (A known length starts from chunks of about a quarter of each slot's share, at most 64.)
        if (this.opts.chunkSize === "auto" && this.total === undefined && this.pending.size >= (this.perItemMs === undefined ? 2 : 4) * this.capacity()) break;
        const room = this.opts.maxInFlight - this.inFlight;
        // Wait for room for a whole chunk while chunks are still running: refilling item by item
        // would send one-item tasks. Once none are, fill the window to the brim.
        if (room < this.chunkSize && this.pending.size > 0) break;
        const calls = await this.read(Math.min(this.chunkSize, room));
        if (this.stopped) return;
        if (calls.length > 0) this.submit(calls);
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.reading = false;
      this.notify();
    }
  }

  /** Tasks the view's engines run at once: the sum of their concurrency. */
  private capacity(): number {
    let n = 0;
    for (const id of this.ctx.targets ?? this.ctx.client.ids) n += this.ctx.client.engineInfo(id)?.concurrency ?? 1;
    return Math.max(1, n);
  }

  private async read(n: number): Promise<unknown[][]> {
    const src = this.source;
    if (src.kind === "array") {
      const from = this.nextIndex;
      const to = Math.min(src.length, from + n);
      const out = new Array<unknown[]>(to - from);
      for (let i = from; i < to; i++) out[i - from] = src.columns.map((c) => c[i]);
      if (to >= src.length) this.inputDone = true;
      return out;
    }
    const out: unknown[][] = [];
    while (out.length < n) {
      const r = await src.it.next();
      if (r.done) {
        this.inputDone = true;
        break;
      }
      out.push(r.value);
    }
    return out;
  }

  private submit(calls: unknown[][]): void {
    const { client, fn } = this.ctx;
    const start = this.nextIndex;
    this.nextIndex += calls.length;
    this.inFlight += calls.length;
    const part = this.ctx.encode(calls, start);
    const task: Omit<ClientTask, "id" | "src"> = { op: "map", to: [], lb: {}, fn: fn.hash, name: fn.name };
    if (this.ctx.targets) task.lb = { ...task.lb, targets: this.ctx.targets };
    if (this.ctx.retries) task.lb = { ...task.lb, retries: this.ctx.retries };
    if (this.ctx.scope?.length) task.scope = this.ctx.scope;
    if (this.ctx.timeout !== undefined) task.timeout = this.ctx.timeout * calls.length;
    const chunk: Chunk = { start, count: calls.length, meta: pendingMetadata(-1) };
    const id = client.submit(task, part, {
      onResult: (r, p) => this.onResult(id, chunk, r, p),
      onFailure: (err) => this.fail(err),
    }, fn.src);
    this.pending.set(id, chunk);
  }

  private onResult(id: number, chunk: Chunk, r: TaskResult, part: Part): void {
    if (!this.pending.delete(id)) return;
    this.ctx.client.release(id);
    const m = chunk.meta;
    recordResult(m, r);
    if (this.stopped) return;
    let values: unknown[];
    if (r.ok) {
      try {
        values = decodeValue(part.body, part.frames) as unknown[];
      } catch (err) {
        this.fail(err as Error);
        return;
      }
    } else {
      this.fail(failureToError(r, part, { timeout: this.ctx.timeout === undefined ? undefined : this.ctx.timeout * chunk.count, itemOffset: chunk.start }));
      return;
    }
    this.metas?.push(m);
    this.adaptChunkSize(chunk, r);
    this.done += chunk.count;
    this.progressBar?.update(this.done);
    if (this.opts.ordered) {
      this.parked.set(chunk.start, { values, chunk });
      let next: { values: unknown[]; chunk: Chunk } | undefined;
      while ((next = this.parked.get(this.nextToYield)) !== undefined) {
        this.parked.delete(this.nextToYield);
        next.values.forEach((value, i) => this.ready.push({ index: next!.chunk.start + i, value }));
        this.nextToYield += next.chunk.count;
      }
    } else {
      values.forEach((value, i) => this.ready.push({ index: chunk.start + i, value }));
    }
    this.notify();
    void this.fill();
  }

  /** With `chunkSize: "auto"`: grow chunks while items are fast, so each takes about TARGET_CHUNK_MS. */
  private adaptChunkSize(chunk: Chunk, r: TaskResult): void {
    if (this.opts.chunkSize !== "auto") return;
    const ms = Math.max(r.completed - r.started, 0.05) / chunk.count;
    this.perItemMs = this.perItemMs === undefined ? ms : (this.perItemMs + ms) / 2;
    let size = Math.round(TARGET_CHUNK_MS / this.perItemMs);
    const slots = this.capacity();
    // Keep several chunks per slot in the window, and, for a known length, several per slot in all.
    size = Math.min(size, Math.ceil(this.opts.maxInFlight / (4 * slots)));
    if (this.total !== undefined) size = Math.min(size, Math.ceil(this.total / (4 * slots)));
    this.chunkSize = Math.max(1, Math.min(MAX_CHUNK, size, this.chunkSize * 4));
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.error = err;
    const ids = [...this.pending.keys()];
    this.pending.clear();
    for (const id of ids) this.ctx.client.release(id);
    this.ctx.client.cancel(ids);
    const it = this.source.kind === "iter" ? this.source.it : undefined;
    void Promise.resolve(it?.return?.()).catch(() => undefined);
    this.progressBar?.stop();
    this.notify();
  }
}

/**
 * The result of `lb.map(...)`: await it for every result in input order (like `Pool.map`), or
 * iterate it with `for await` to handle results as they arrive.
 */
export class MapResult<R> extends MapRun<R> implements PromiseLike<R[]> {
  private collected: Promise<R[]> | undefined;

  then<A = R[], B = never>(onfulfilled?: ((value: R[]) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    this.collected ??= this.collect();
    return this.collected.then(onfulfilled, onrejected);
  }
}
