import { InvalidOptionError, encodeValue } from "@ptcluster/protocol";
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

/**
 * A view on one engine (`rc.engine(1)`): results are single values, and a failure rejects with
 * the engine's `RemoteError` itself.
 */
export class EngineView extends AddressedView {
  // Private: the public types offer no constructor (views come from `rc.engine(id)`).
  private constructor(
    port: ViewPort,
    readonly id: number,
    opts: ViewOptions,
  ) {
    super(port, opts);
  }

  /** @internal How the client makes one (stripped from the public types). */
  static create(port: ViewPort, id: number): EngineView {
    return new EngineView(port, id, {});
  }

  private target(): number[] {
    this.port.assertOpen();
    return [this.id];
  }

  with(options: ViewOptions): EngineView {
    return new EngineView(this.port, this.id, { ...this.opts, ...validateViewOptions(options) });
  }

  apply<F extends AnyFn>(fn: F, ...args: Parameters<F>): AsyncResult<ResultOf<F>> {
    const shipped = shipFunction(fn);
    const { part, scope } = this.encodeCall(args, "args");
    return this.run(
      {
        op: "apply",
        targets: this.target(),
        parts: part,
        fn: shipped,
        ...(scope ? { scope } : {}),
        combine: (v) => v[0] as ResultOf<F>,
      },
      true,
    );
  }

  async applySync<F extends AnyFn>(fn: F, ...args: Parameters<F>): Promise<ResultOf<F>> {
    return this.apply(fn, ...args);
  }

  /**
   * Calls `fn` on every item on this engine: a map result, awaitable and iterable as often as
   * wanted. Options go last: `rc.engine(0).map(fn, items, { timeout, signal })` (`timeout` is per item).
   */
  map<A extends unknown[], R>(
    fn: (...args: A) => R,
    ...inputs: [...ArgLists<A>] | [...ArgLists<A>, ViewOptions]
  ): MapResult<Awaited<R>> {
    const { lists, options } = splitMapOptions(inputs as unknown[]);
    if (options) return this.with(options).map(fn, ...(lists as ArgLists<A>));
    const shipped = shipFunction(fn);
    const calls = zipArgLists(lists);
    const { part, scope } = this.encodeCall(calls, "items");
    return this.runMap<Awaited<R>>(
      { op: "map", targets: this.target(), parts: part, fn: shipped, ...(scope ? { scope } : {}) },
      [0],
      calls.length,
      true,
    );
  }

  execute(code: string): AsyncResult<unknown> {
    if (typeof code !== "string")
      throw new InvalidOptionError(`Expected \`code\` to be a string, got ${describeValue(code)}`);
    const { body, frames } = encodeValue(code, "code");
    return this.run({ op: "execute", targets: this.target(), parts: { body, frames }, combine: (v) => v[0] }, true);
  }

  push(namespace: Record<string, unknown>): AsyncResult<void> {
    return this.run(
      { op: "push", targets: this.target(), parts: encodePush(namespace), combine: () => undefined },
      true,
    );
  }

  pull(name: string): AsyncResult<unknown>;
  pull(names: string[]): AsyncResult<unknown[]>;
  pull(names: string | string[]): AsyncResult<unknown> {
    const { body, frames } = encodeValue(validateNames(names), "names");
    return this.run(
      {
        op: "pull",
        targets: this.target(),
        parts: { body, frames },
        combine: (v) => (typeof names === "string" ? (v[0] as unknown[])[0] : v[0]),
      },
      true,
    );
  }
}
