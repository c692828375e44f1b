import { DependencyError, InvalidOptionError, NoEnginesError, TaskCancelledError } from "@ptcluster/protocol";
import type { NewTask, ViewPort } from "../session/view-port.js";
import { AsyncResult, pendingMetadata, type TaskMetadata } from "../results/async-result.js";
import { Gatherer } from "../results/target-gatherer.js";
import { shipFunction, type ShippedFunction } from "../functions/ship.js";
import { checkScope, encodeCallPayload } from "../functions/encode-payload.js";
import { describeValue } from "../options.js";
import {
  validateLbOptions,
  validateMapOptions,
  type LoadBalancedOptions,
  type MapOptions,
  type ResolvedMapOptions,
} from "./lb-options.js";
import { MapResult } from "../results/map-result.js";
import { MapFeed, type CallSource, type MapContext } from "./map-feed.js";
import { MapRun } from "./map-run.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any is needed to accept every function signature
type AnyFn = (...args: any[]) => unknown;
type ResultOf<F extends AnyFn> = Awaited<ReturnType<F>>;
/** An array, any iterable, or an async iterable. */
export type AnyIterable<T> = Iterable<T> | AsyncIterable<T>;
/** One (async) iterable per parameter of `fn`. */
export type ArgSources<A extends unknown[]> = { [K in keyof A]: AnyIterable<A[K]> };

/**
 * Task farming: each task runs on whichever engine is free (least-loaded first, by default), the
 * way `multiprocessing.Pool` and ipyparallel's LoadBalancedView do. Obtain one with
 * `rc.loadBalancedView()`.
 *
 * ```ts
 * const lb = rc.loadBalancedView();
 * const sizes = await lb.map(siteSize, urls);                          // like Pool.map
 * for await (const r of lb.imap(siteSize, urls, { ordered: false })) console.log(r);
 * const ar = lb.apply(busy, 3e8);                                      // like Pool.apply_async
 * ```
 */
export class LoadBalancedView {
  // Private: the public types offer no constructor (views come from `rc.loadBalancedView()`).
  private constructor(
    private readonly port: ViewPort,
    private readonly fixedTargets: number[] | undefined,
    private readonly opts: LoadBalancedOptions,
  ) {}

  /** @internal How the client makes one (stripped from the public types). */
  static create(port: ViewPort, targets: number[] | undefined): LoadBalancedView {
    return new LoadBalancedView(port, targets, {});
  }

  /** The engines this view balances over (undefined: all, including engines that join later). */
  get targets(): number[] | undefined {
    return this.fixedTargets ? [...this.fixedTargets] : undefined;
  }

  /** The same view with options applied to every task: `lb.with({ retries: 2, timeout: 10_000 })`. */
  with(options: LoadBalancedOptions): LoadBalancedView {
    return new LoadBalancedView(this.port, this.fixedTargets, { ...this.opts, ...validateLbOptions(options) });
  }

  private checkEngines(): void {
    this.port.assertOpen();
    if (this.fixedTargets?.length === 0) throw new NoEnginesError("This view has no engines.");
  }

  /** Runs `fn(...args)` on one free engine; an `AsyncResult` of its value. */
  apply<F extends AnyFn>(fn: F, ...args: Parameters<F>): AsyncResult<ResultOf<F>> {
    this.checkEngines();
    const { port, opts } = this;
    const shipped = shipFunction(fn);
    const part = encodeCallPayload(args, opts.scope, "args");
    port.checkSize(part, "This task's arguments");
    const task = this.lbTask("apply", shipped, 1);
    const meta: TaskMetadata = pendingMetadata(-1);
    const ids: number[] = [];
    let cancelled = false;
    const gate = dependencyGate(opts);
    const signal = opts.signal;
    const ar: AsyncResult<ResultOf<F>> = AsyncResult.create<ResultOf<F>>(
      (resolve, reject) => {
        const onAbort = () => {
          cancelled = true;
          if (ids.length > 0) port.cancel(ids);
          else reject(new TaskCancelledError("The task was cancelled before its dependencies were met."));
        };
        const settled = () => signal?.removeEventListener("abort", onAbort);
        const gatherer = new Gatherer(
          port,
          [meta],
          ids,
          true,
          {
            step: () => (ar.done = 1),
            resolve: (values) => {
              settled();
              resolve(values[0] as ResultOf<F>);
            },
            reject: (err) => {
              settled();
              reject(err);
            },
          },
          opts.timeout,
        );
        const submit = (follow: number[] | undefined) => {
          if (cancelled) return;
          if (follow) task.lb = { ...task.lb, targets: follow };
          ids.push(
            port.submit(
              task,
              part,
              gatherer.sink(() => 0),
              shipped.src,
            ),
          );
        };
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
        if (gate) {
          gate.then(submit, (err: unknown) => {
            settled();
            meta.status = "error";
            reject(err);
          });
        } else submit(undefined);
      },
      [meta],
      () => {
        cancelled = true;
        port.cancel(ids);
      },
      ids,
      port.id,
    );
    return ar;
  }

  /** `apply`, awaited. */
  async applySync<F extends AnyFn>(fn: F, ...args: Parameters<F>): Promise<ResultOf<F>> {
    return this.apply(fn, ...args);
  }

  /**
   * Calls `fn` on every item, spread over free engines in chunks. The result runs to completion on
   * its own (like `Pool.map_async`) and keeps every value: await it for all of them in input order
   * (like `Pool.map`), iterate it to handle values as they arrive (in input order, or as they
   * complete with `{ ordered: false }`), or both, as often as wanted. Inputs may be arrays,
   * iterables or async iterables; several of them call `fn` with one item of each (`starmap`).
   * Options go last: `lb.map(fn, items, { chunkSize: 100, retries: 1 })`.
   */
  map<A extends unknown[], R>(
    fn: (...args: A) => R,
    ...inputs: [...ArgSources<A>] | [...ArgSources<A>, MapOptions]
  ): MapResult<Awaited<R>> {
    const { sources, options } = splitOptions(inputs as unknown[]);
    return this.startMap<Awaited<R>>(fn, zipSources(sources), options);
  }

  /**
   * A lazy map: reads the input as results are consumed, keeps at most `maxInFlight` items in
   * flight, and yields results in input order, or as they complete with `{ ordered: false }`.
   * Breaking out of the loop cancels the rest.
   */
  imap<A extends unknown[], R>(
    fn: (...args: A) => R,
    ...inputs: [...ArgSources<A>] | [...ArgSources<A>, MapOptions]
  ): MapRun<Awaited<R>> {
    const { sources, options } = splitOptions(inputs as unknown[]);
    const { ctx, resolved } = this.mapContext(fn, options);
    return MapRun.create<Awaited<R>>(ctx, zipSources(sources), resolved);
  }

  /** `map` over argument tuples: `starmap(pow, [[2, 3], [3, 2]])` (Python's `Pool.starmap`). */
  starmap<A extends unknown[], R>(
    fn: (...args: A) => R,
    tuples: AnyIterable<A>,
    options: MapOptions = {},
  ): MapResult<Awaited<R>> {
    const source: CallSource = Array.isArray(tuples)
      ? { kind: "iter", it: (tuples as unknown[][])[Symbol.iterator](), length: tuples.length }
      : {
          kind: "iter",
          it: iteratorOf(tuples as AnyIterable<unknown[]>) as Iterator<unknown[]> | AsyncIterator<unknown[]>,
          length: undefined,
        };
    return this.startMap<Awaited<R>>(fn, source, options);
  }

  /** A retained map: its result runs to completion on its own and keeps every value. */
  private startMap<R>(fn: AnyFn, source: CallSource, options: MapOptions): MapResult<R> {
    const { ctx, resolved } = this.mapContext(fn, options);
    const metadata: TaskMetadata[] = [];
    const ids: number[] = [];
    let feed: MapFeed | undefined;
    const { result, output } = MapResult.open<R>({
      metadata,
      ids,
      clientId: this.port.id,
      length: source.length,
      ordered: resolved.ordered,
      itemsRead: () => feed?.itemsRead ?? 0,
      onAbort: (reason) => feed?.abort(reason),
    });
    feed = new MapFeed(ctx, source, resolved, output, { metadata, ids });
    return result;
  }

  private mapContext(fn: AnyFn, options: MapOptions): { ctx: MapContext; resolved: ResolvedMapOptions } {
    this.checkEngines();
    const resolved = validateMapOptions(options, true);
    const merged: LoadBalancedOptions = { ...this.opts, ...options };
    if (options.scope === undefined && this.opts.scope) merged.scope = this.opts.scope;
    const shipped = shipFunction(fn);
    const scopeNames = merged.scope ? Object.keys(merged.scope) : undefined;
    checkScope(merged.scope);
    const ctx: MapContext = {
      port: this.port,
      fn: shipped,
      targets: this.fixedTargets,
      scope: scopeNames,
      retries: merged.retries,
      timeout: merged.timeout,
      signal: merged.signal,
      gate: dependencyGate(merged),
      encode: (calls, offset) => encodeCallPayload(calls, merged.scope, `items[${offset}…]`),
    };
    return { ctx, resolved };
  }

  private lbTask(op: "apply" | "map", fn: ShippedFunction, items: number): NewTask {
    const { opts } = this;
    const task: NewTask = { op, to: [], lb: {}, fn: fn.hash, name: fn.name };
    if (this.fixedTargets) task.lb = { ...task.lb, targets: this.fixedTargets };
    if (opts.retries) task.lb = { ...task.lb, retries: opts.retries };
    if (opts.scope) task.scope = Object.keys(opts.scope);
    if (opts.timeout !== undefined) task.timeout = opts.timeout * items;
    return task;
  }
}

/**
 * Waits for `after` and `follow` results: resolves to the engine `follow` pins the task to (or
 * undefined), or rejects with `DependencyError` when one failed or they ran on different engines.
 */
function dependencyGate(opts: LoadBalancedOptions): Promise<number[] | undefined> | undefined {
  const after = opts.after ?? [];
  const follow = opts.follow ?? [];
  if (after.length === 0 && follow.length === 0) return undefined;
  return (async () => {
    const settled = await Promise.allSettled([...after, ...follow].map((r) => r.get()));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      const why = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
      throw new DependencyError(`A task this one depends on failed, so it was not run: ${why}`, {
        cause: failed.reason,
      });
    }
    if (follow.length === 0) return undefined;
    const engines = [...new Set(follow.flatMap((r) => r.metadata.map((m) => m.engineId)))];
    if (engines.length !== 1) {
      throw new DependencyError(
        `The results in \`follow\` ran on different engines (${engines.join(", ")}); no engine can run this task where all of them ran.`,
      );
    }
    return engines;
  })();
}

function isIterableLike(x: unknown): boolean {
  return x !== null && typeof x === "object" && (Symbol.iterator in x || Symbol.asyncIterator in x);
}

/** The trailing argument is options when it is a plain object rather than an (async) iterable. */
function splitOptions(inputs: unknown[]): { sources: unknown[]; options: MapOptions } {
  const last = inputs[inputs.length - 1];
  if (inputs.length > 1 && last !== null && typeof last === "object" && !isIterableLike(last)) {
    return { sources: inputs.slice(0, -1), options: last as MapOptions };
  }
  return { sources: inputs, options: {} };
}

function iteratorOf(x: AnyIterable<unknown>): Iterator<unknown> | AsyncIterator<unknown> {
  return Symbol.asyncIterator in x
    ? (x as AsyncIterable<unknown>)[Symbol.asyncIterator]()
    : (x as Iterable<unknown>)[Symbol.iterator]();
}

/** Columns in memory when every input is an array; otherwise a lazy zip of iterators. */
function zipSources(sources: unknown[]): CallSource {
  if (sources.length === 0) throw new InvalidOptionError("`map` needs at least one iterable of items");
  sources.forEach((s, i) => {
    if (!isIterableLike(s))
      throw new InvalidOptionError(
        `Expected input ${i} of \`map\` to be an array, an iterable or an async iterable, got ${describeValue(s)}`,
      );
  });
  if (sources.every((s) => Array.isArray(s))) {
    const columns = sources as unknown[][];
    return { kind: "array", columns, length: Math.min(...columns.map((c) => c.length)) };
  }
  const its = sources.map((s) => iteratorOf(s as AnyIterable<unknown>));
  const length = undefined;
  const anyAsync = sources.some((s) => Symbol.asyncIterator in (s as object));
  if (!anyAsync) {
    const sync = its as Iterator<unknown>[];
    const it: Iterator<unknown[]> = {
      next: () => {
        const values: unknown[] = [];
        for (const i of sync) {
          const r = i.next();
          if (r.done) return { done: true, value: undefined };
          values.push(r.value);
        }
        return { done: false, value: values };
      },
      return: () => {
        for (const i of sync) i.return?.();
        return { done: true, value: undefined };
      },
    };
    return { kind: "iter", it, length };
  }
  const it: AsyncIterator<unknown[]> = {
    next: async () => {
      const values: unknown[] = [];
      for (const i of its) {
        const r = await i.next();
        if (r.done) return { done: true, value: undefined };
        values.push(r.value);
      }
      return { done: false, value: values };
    },
    return: async () => {
      await Promise.all(its.map(async (i) => i.return?.()));
      return { done: true, value: undefined };
    },
  };
  return { kind: "iter", it, length };
}
