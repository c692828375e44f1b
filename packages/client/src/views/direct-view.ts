import { InvalidOptionError, NoEnginesError, encodeValue } from "@ptcluster/protocol";
import type { ViewPort } from "../session/view-port.js";
import { AsyncResult } from "../results/async-result.js";
import { MapResult } from "../results/map-result.js";
import { shipFunction } from "../functions/ship.js";
import { validateViewOptions, type ViewOptions } from "./view-options.js";
import { describeValue } from "../options.js";
import {
  AddressedView,
  encodePush,
  splitMapOptions,
  validateNames,
  zipArgLists,
  type AnyFn,
  type ArgLists,
  type ResultOf,
} from "./addressed-view.js";

export type { ArgLists, ResultOf } from "./addressed-view.js";

function partition<T>(items: readonly T[], k: number): T[][] {
  const out: T[][] = [];
  const base = Math.floor(items.length / k);
  let extra = items.length % k;
  let at = 0;
  for (let i = 0; i < k; i++) {
    const n = base + (extra-- > 0 ? 1 : 0);
    out.push(items.slice(at, at + n));
    at += n;
  }
  return out;
}

function concatChunks(chunks: unknown[]): unknown {
  if (chunks.length > 0 && chunks.every((c) => ArrayBuffer.isView(c) && !(c instanceof DataView))) {
    const views = chunks as Array<ArrayBufferView & { length: number }>;
    const Ctor = views[0]!.constructor as new (
      n: number,
    ) => ArrayBufferView & { set(a: ArrayLike<unknown>, o: number): void };
    const total = views.reduce((n, v) => n + v.length, 0);
    const out = new Ctor(total);
    let at = 0;
    for (const v of views) {
      out.set(v as unknown as ArrayLike<unknown>, at);
      at += v.length;
    }
    return out;
  }
  return (chunks as unknown[][]).flat();
}

/**
 * A view on several engines: every call runs on each of them (SPMD) and resolves to one result
 * per engine, in target order. Obtain one with `rc.view()` or `rc.view([0, 2])`.
 *
 * ```ts
 * const dv = rc.view();
 * await dv.applySync((a: number) => a * 2, 21);   // [42, 42, 42, 42]
 * await dv.map((x: number) => x * x, [1, 2, 3, 4]);
 * ```
 */
export class DirectView extends AddressedView {
  // Private: the public types offer no constructor (views come from `rc.view()`).
  private constructor(
    port: ViewPort,
    private readonly fixedTargets: number[] | undefined,
    opts: ViewOptions,
  ) {
    super(port, opts);
  }

  /** @internal How the client makes one (stripped from the public types). */
  static create(port: ViewPort, targets: number[] | undefined): DirectView {
    return new DirectView(port, targets, {});
  }

  /** The engines this view runs on now. */
  get targets(): number[] {
    return this.fixedTargets ?? this.port.ids;
  }

  private resolveTargets(): number[] {
    this.port.assertOpen();
    const t = [...new Set(this.targets)];
    if (t.length === 0) {
      throw new NoEnginesError(
        this.fixedTargets
          ? "This view has no engines."
          : "No engines are registered. Start some with `ptcluster start -n 4`, or wait with `rc.waitForEngines(n)`.",
      );
    }
    return t;
  }

  /** The same view with options applied to every call: `dv.with({ scope: { k } }).apply(fn)`. */
  with(options: ViewOptions): DirectView {
    return new DirectView(this.port, this.fixedTargets, { ...this.opts, ...validateViewOptions(options) });
  }

  /** Runs `fn(...args)` on every engine of the view; resolves to one result per engine. */
  apply<F extends AnyFn>(fn: F, ...args: Parameters<F>): AsyncResult<ResultOf<F>[]> {
    const targets = this.resolveTargets();
    const shipped = shipFunction(fn);
    const { part, scope } = this.encodeCall(args, "args");
    return this.run(
      {
        op: "apply",
        targets,
        parts: part,
        fn: shipped,
        ...(scope ? { scope } : {}),
        combine: (v) => v as ResultOf<F>[],
      },
      false,
    );
  }

  /** `apply`, awaited: the results, one per engine. */
  async applySync<F extends AnyFn>(fn: F, ...args: Parameters<F>): Promise<ResultOf<F>[]> {
    return this.apply(fn, ...args);
  }

  /**
   * Calls `fn` on every item, the items split into one contiguous block per engine. Await the
   * result for every value in input order, or iterate it (`for await`) to get the values in input
   * order as the blocks arrive, or both, as often as wanted. Several iterables call `fn` with one
   * item of each (`starmap`). Options go last, as on the load-balanced view:
   * `dv.map(fn, items, { timeout, signal })` (`timeout` is per item).
   */
  map<A extends unknown[], R>(
    fn: (...args: A) => R,
    ...inputs: [...ArgLists<A>] | [...ArgLists<A>, ViewOptions]
  ): MapResult<Awaited<R>> {
    const { lists, options } = splitMapOptions(inputs as unknown[]);
    if (options) return this.with(options).map(fn, ...(lists as ArgLists<A>));
    const targets = this.resolveTargets();
    const shipped = shipFunction(fn);
    const calls = zipArgLists(lists);
    const blocks = partition(calls, targets.length);
    const scope = this.opts.scope ? Object.keys(this.opts.scope) : undefined;
    let at = 0;
    const starts: number[] = [];
    const parts = blocks.map((b) => {
      starts.push(at);
      const part = this.encodeCall(b, `items[${at}…]`).part;
      at += b.length;
      return part;
    });
    return this.runMap<Awaited<R>>(
      { op: "map", targets, parts, fn: shipped, ...(scope ? { scope } : {}) },
      starts,
      calls.length,
      false,
    );
  }

  /** Runs code in each engine's namespace; resolves to each engine's completion value. */
  execute(code: string): AsyncResult<unknown[]> {
    if (typeof code !== "string")
      throw new InvalidOptionError(`Expected \`code\` to be a string, got ${describeValue(code)}`);
    const targets = this.resolveTargets();
    const { body, frames } = encodeValue(code, "code");
    return this.run({ op: "execute", targets, parts: { body, frames }, combine: (v) => v }, false);
  }

  /** Defines globals in each engine's namespace: `push({ a: 1, data })`. */
  push(namespace: Record<string, unknown>): AsyncResult<void> {
    const targets = this.resolveTargets();
    const part = encodePush(namespace);
    return this.run({ op: "push", targets, parts: part, combine: () => undefined }, false);
  }

  /** Reads a global from each engine (`pull("a")` → one value per engine), or several (`pull(["a", "b"])`). */
  pull(name: string): AsyncResult<unknown[]>;
  pull(names: string[]): AsyncResult<unknown[][]>;
  pull(names: string | string[]): AsyncResult<unknown[]> {
    const targets = this.resolveTargets();
    const list = validateNames(names);
    const { body, frames } = encodeValue(list, "names");
    return this.run(
      {
        op: "pull",
        targets,
        parts: { body, frames },
        combine: (v) => (typeof names === "string" ? (v as unknown[][]).map((x) => x[0]) : v),
      },
      false,
    );
  }

  /** Splits an array (or typed array) into one contiguous block per engine, stored as global `name`. */
  scatter(name: string, data: ArrayLike<unknown> & Iterable<unknown>): AsyncResult<void> {
    validateNames(name);
    const targets = this.resolveTargets();
    let blocks: unknown[];
    if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
      const view = data as unknown as { length: number; subarray(a: number, b: number): unknown };
      const sizes = partition(
        Array.from({ length: view.length }, () => 0),
        targets.length,
      ).map((b) => b.length);
      let at = 0;
      blocks = sizes.map((n) => view.subarray(at, (at += n)));
    } else if (Array.isArray(data)) {
      blocks = partition(data, targets.length);
    } else {
      throw new InvalidOptionError(
        `Expected \`scatter\` data to be an array or typed array, got ${describeValue(data)}`,
      );
    }
    const parts = blocks.map((b) => encodePush({ [name]: b }));
    return this.run({ op: "push", targets, parts, combine: () => undefined }, false);
  }

  /** Concatenates global `name` of every engine, in target order (the inverse of `scatter`). */
  gather(name: string): AsyncResult<unknown> {
    validateNames(name);
    const targets = this.resolveTargets();
    const { body, frames } = encodeValue([name], "names");
    return this.run(
      {
        op: "pull",
        targets,
        parts: { body, frames },
        combine: (v) => concatChunks((v as unknown[][]).map((x) => x[0])),
      },
      false,
    );
  }
}
