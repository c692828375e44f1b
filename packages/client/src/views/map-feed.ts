import { TaskCancelledError, decodeValue, type Part, type TaskResult } from "@ptcluster/protocol";
import type { NewTask, ViewPort } from "../session/view-port.js";
import { pendingMetadata, recordResult, type TaskMetadata } from "../results/async-result.js";
import { failureToError } from "../results/remote-errors.js";
import type { MapOutput } from "../results/map-result.js";
import type { ShippedFunction } from "../functions/ship.js";
import type { ResolvedMapOptions } from "./lb-options.js";
import { ProgressReporter } from "./progress.js";

/** What a map needs from its view. */
export interface MapContext {
  port: ViewPort;
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
 * Runs one load-balanced map: reads the input lazily, groups items into chunks (each a
 * load-balanced task), keeps at most `maxInFlight` items in its window, and hands each finished
 * chunk to its output (a `MapResult`, or `imap`'s stream). A retained map's window frees as results
 * arrive, so it runs to completion on its own; a stream's frees as its consumer takes items, so
 * reading stops while nobody consumes. A failed item, an abort signal or `abort()` cancels what is left.
 */
export class MapFeed {
  private readonly pending = new Map<number, Chunk>();
  private nextIndex = 0;
  private inputDone = false;
  private reading = false;
  private inFlight = 0;
  private stopped = false;
  private chunkSize: number;
  private perItemMs: number | undefined;
  /** Items finished so far. */
  done = 0;
  private readonly progressBar: ProgressReporter | undefined;
  private readonly total: number | undefined;
  private readonly onSignal: (() => void) | undefined;

  /**
   * With `record`, the map is retained: its window frees as results arrive, and each chunk's task
   * id and (on success) metadata are recorded there.
   */
  constructor(
    private readonly ctx: MapContext,
    private readonly source: CallSource,
    private readonly opts: ResolvedMapOptions,
    private readonly out: MapOutput,
    private readonly record?: { metadata: TaskMetadata[]; ids: number[] },
  ) {
    this.total = source.length;
    if (opts.chunkSize !== "auto") this.chunkSize = opts.chunkSize;
    else if (this.total !== undefined)
      this.chunkSize = Math.max(1, Math.min(64, Math.ceil(this.total / (4 * this.capacity()))));
    else this.chunkSize = 1;
    if (opts.progress) this.progressBar = new ProgressReporter(this.total);
    const signal = ctx.signal;
    if (signal) {
      if (signal.aborted) {
        this.fail(new TaskCancelledError("The map was cancelled before it started.", { cause: signal.reason }));
        return;
      }
      this.onSignal = () => this.abort(signal.reason);
      signal.addEventListener("abort", this.onSignal, { once: true });
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

  /** Items read from the input so far. */
  get itemsRead(): number {
    return this.nextIndex;
  }

  /** Cancels what has not finished: queued chunks are dropped, running ones signalled, then stopped. */
  abort(reason?: unknown): void {
    if (this.stopped) return;
    this.fail(new TaskCancelledError("The map was cancelled.", reason === undefined ? undefined : { cause: reason }));
  }

  /** A stream's consumer took one item: it leaves the window, which refills once a chunk fits. */
  consumed(): void {
    this.inFlight--;
    if (
      !this.inputDone &&
      !this.stopped &&
      (this.pending.size === 0 || this.opts.maxInFlight - this.inFlight >= this.chunkSize)
    )
      void this.fill();
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
        if (
          this.opts.chunkSize === "auto" &&
          this.total === undefined &&
          this.pending.size >= (this.perItemMs === undefined ? 2 : 4) * this.capacity()
        )
          break;
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
      this.endIfDone();
    }
  }

  /** Finished when nothing is being read or submitted either (a chunk may be on its way). */
  private endIfDone(): boolean {
    if (this.stopped || !this.inputDone || this.reading || this.pending.size > 0) return false;
    this.stop();
    this.out.finish();
    return true;
  }

  /** Tasks the view's engines run at once: the sum of their concurrency. */
  private capacity(): number {
    let n = 0;
    for (const id of this.ctx.targets ?? this.ctx.port.ids) n += this.ctx.port.engineInfo(id)?.concurrency ?? 1;
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
    const { port, fn } = this.ctx;
    const start = this.nextIndex;
    this.nextIndex += calls.length;
    this.inFlight += calls.length;
    const part = this.ctx.encode(calls, start);
    const task: NewTask = { op: "map", to: [], lb: {}, fn: fn.hash, name: fn.name };
    if (this.ctx.targets) task.lb = { ...task.lb, targets: this.ctx.targets };
    if (this.ctx.retries) task.lb = { ...task.lb, retries: this.ctx.retries };
    if (this.ctx.scope?.length) task.scope = this.ctx.scope;
    if (this.ctx.timeout !== undefined) task.timeout = this.ctx.timeout * calls.length;
    const chunk: Chunk = { start, count: calls.length, meta: pendingMetadata(-1) };
    const id = port.submit(
      task,
      part,
      {
        onResult: (r, p) => this.onResult(id, chunk, r, p),
        onFailure: (err) => this.fail(err),
      },
      fn.src,
    );
    this.pending.set(id, chunk);
    this.record?.ids.push(id);
  }

  private onResult(id: number, chunk: Chunk, r: TaskResult, part: Part): void {
    if (!this.pending.delete(id)) return;
    this.ctx.port.release(id);
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
      this.fail(
        failureToError(r, part, {
          timeout: this.ctx.timeout === undefined ? undefined : this.ctx.timeout * chunk.count,
          itemOffset: chunk.start,
        }),
      );
      return;
    }
    this.record?.metadata.push(m);
    this.adaptChunkSize(chunk, r);
    this.done += chunk.count;
    this.progressBar?.update(this.done);
    if (this.record) this.inFlight -= chunk.count;
    this.out.deliver(chunk.start, values);
    if (!this.endIfDone()) void this.fill();
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
    this.stop();
    const ids = [...this.pending.keys()];
    this.pending.clear();
    for (const id of ids) this.ctx.port.release(id);
    this.ctx.port.cancel(ids);
    const it = this.source.kind === "iter" ? this.source.it : undefined;
    void Promise.resolve(it?.return?.()).catch(() => undefined);
    this.out.finish(err);
  }

  private stop(): void {
    this.stopped = true;
    this.progressBar?.stop();
    if (this.onSignal) this.ctx.signal?.removeEventListener("abort", this.onSignal);
  }
}
