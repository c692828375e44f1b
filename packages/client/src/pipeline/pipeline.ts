import { InvalidOptionError, PipelineUsageError, type StageKind, type StageStats } from "@ptcluster/protocol";
import { shipFunction } from "../functions/ship.js";
import { checkScope } from "../functions/encode-payload.js";
import { describeValue } from "../options.js";
import { noteResult } from "../results/result-scope.js";
import {
  validatePipelineOptions,
  validateStageOptions,
  type PipelineOptions,
  type ResolvedPipelineOptions,
  type StageOptions,
} from "./options.js";
import type { PipePort } from "./pipe-port.js";
import { PipeRun, zeroStats, type StageSpec } from "./pipe-run.js";

/** An array, any iterable, or an async iterable. */
type Items<T> = Iterable<T> | AsyncIterable<T>;

/** The input, shared by every pipeline built from one `rc.pipeline(items)`. */
interface Source {
  items: Items<unknown>;
  /** Set once a run read an input that can be read only once (an iterator, a generator). */
  readBy: boolean;
}

/**
 * Items streamed through stages run on the engines: `rc.pipeline(items).map(f).filter(g).flatMap(h)`.
 * An item moves to the next stage as soon as its previous stage finished it, whatever the other
 * items do; intermediate values stay in the cluster, and only the last stage's outputs reach the
 * client. Each `map`, `filter` or `flatMap` returns a new pipeline (the one it was called on stays
 * usable). A pipeline runs when iterated (`for await`) or by `toArray()`, once. See docs/pipelines.md.
 *
 * ```ts
 * const out = rc.pipeline(readDocs()).map(removeStopWords, { concurrency: 8 }).map(stem)
 *   .filter((d) => d.words.length > 0).flatMap(splitSentences, { timeout: 5_000, retries: 1 });
 * for await (const s of out) save(s);
 * console.table(out.stats());
 * ```
 */
export class Pipeline<T> implements AsyncIterable<T> {
  #run: PipeRun | undefined;

  // Private: the public types offer no constructor (pipelines come from `rc.pipeline()`).
  private constructor(
    private readonly port: PipePort,
    private readonly source: Source,
    private readonly opts: ResolvedPipelineOptions,
    private readonly stages: readonly StageSpec[],
  ) {}

  /** @internal How the client makes one (stripped from the public types). */
  static create<T>(port: PipePort, items: Items<T>, options: PipelineOptions = {}): Pipeline<T> {
    if (items === null || typeof items !== "object" || !(Symbol.iterator in items || Symbol.asyncIterator in items))
      throw new InvalidOptionError(
        `Expected the items of \`rc.pipeline\` to be an array, an iterable or an async iterable, got ${describeValue(items)}`,
      );
    return new Pipeline<T>(port, { items, readBy: false }, validatePipelineOptions(options), []);
  }

  /** Calls `fn` on each item, on the engines; its value (awaited) goes on. */
  map<R>(fn: (item: T) => R, options: StageOptions = {}): Pipeline<Awaited<R>> {
    return this.#with<Awaited<R>>("map", fn, options);
  }

  /** Keeps the items for which `fn` (run on the engines) returns a truthy value. */
  filter(fn: (item: T) => unknown, options: StageOptions = {}): Pipeline<T> {
    return this.#with<T>("filter", fn, options);
  }

  /** Calls `fn` on each item, on the engines; each value of the iterable (or async iterable: an async generator) it returns goes on, in order. */
  flatMap<R>(
    fn: (item: T) => Iterable<R> | AsyncIterable<R> | PromiseLike<Iterable<R>>,
    options: StageOptions = {},
  ): Pipeline<R> {
    return this.#with<R>("flatMap", fn, options);
  }

  #with<R>(kind: StageKind, fn: unknown, options: StageOptions): Pipeline<R> {
    const opts = validateStageOptions(options);
    checkScope(opts.scope);
    const stage: StageSpec = { kind, fn: shipFunction(fn), opts: { ...opts } };
    return new Pipeline<R>(this.port, this.source, this.opts, [...this.stages, stage]);
  }

  /** True from the start of its run until its last output arrived, it failed or was cancelled. */
  get running(): boolean {
    return this.#run !== undefined && !this.#run.over;
  }

  /**
   * Per stage: items in flight, done, failed, retried, items/s, run time p50/p95 (ms), as the
   * controller last reported them (zeros before it did). Final once the run is over.
   */
  stats(): StageStats[] {
    if (this.#run) return this.#run.stats();
    return this.stages.map((s, stage) => zeroStats(stage, s));
  }

  /** Items read from the input so far. */
  get itemsRead(): number {
    return this.#run?.itemsRead ?? 0;
  }

  /** Cancels a running pipeline: its iteration rejects with `TaskCancelledError`. */
  abort(reason?: unknown): void {
    this.#run?.abort(reason);
  }

  /** Runs the pipeline and collects every output (in input order unless `ordered: false`). */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const v of this) out.push(v);
    return out;
  }

  /** Runs the pipeline: its outputs, as they come. Breaking out of the loop cancels what is in flight. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    const run = this.#start();
    return run.outputs() as AsyncGenerator<T, void, undefined>;
  }

  #start(): PipeRun {
    if (this.#run)
      throw new PipelineUsageError(
        "This pipeline has run already, and a pipeline runs once (its input may be a generator, which can be read once). Build it again from `rc.pipeline(items)` to run it again.",
      );
    if (this.stages.length === 0)
      throw new PipelineUsageError(
        "This pipeline has no stage: add one with `.map(fn)`, `.filter(fn)` or `.flatMap(fn)` before running it.",
      );
    this.port.assertOpen();
    const { items } = this.source;
    const once = isOneShot(items);
    if (once && this.source.readBy)
      throw new PipelineUsageError(
        "The input of this pipeline is an iterator (a generator, perhaps) that another run already read. Build the pipeline from a fresh iterator, or from an array, which every run reads from its start.",
      );
    if (once) this.source.readBy = true;
    const length = Array.isArray(items) ? items.length : undefined;
    this.#run = new PipeRun(this.port, items, this.stages, this.opts, length);
    // Tools such as the REPL cancel what a line of user code started (results/result-scope.ts).
    noteResult(this);
    return this.#run;
  }
}

/** An iterator that is its own iterable (generators, `arr.values()`): a second run would find it spent. */
function isOneShot(items: Items<unknown>): boolean {
  const asIter = items as { next?: unknown };
  return typeof asIter.next === "function";
}

/** A new pipeline over `items` on `port` (`rc.pipeline`; tests pass a fake port). */
export function pipelineOf<T>(port: PipePort, items: Items<T>, options?: PipelineOptions): Pipeline<T> {
  return Pipeline.create<T>(port, items, options);
}
