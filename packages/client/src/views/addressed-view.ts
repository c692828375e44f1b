import { InvalidOptionError, TaskCancelledError, type Part } from "@ptcluster/protocol";
import type { ViewPort } from "../session/view-port.js";
import { AsyncResult, pendingMetadata, type TaskMetadata } from "../results/async-result.js";
import { MapResult } from "../results/map-result.js";
import { checkSizes, gatherTargets, type Submission } from "../results/target-gatherer.js";
import { encodeCallPayload, encodeNamespace } from "../functions/encode-payload.js";
import { type ViewOptions } from "./view-options.js";
import { describeValue } from "../options.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any is needed to accept every function signature
export type AnyFn = (...args: any[]) => unknown;
/** What a function resolves to once awaited. */
export type ResultOf<F extends AnyFn> = Awaited<ReturnType<F>>;
/** One iterable per parameter of `fn`: `map(fn, xs, ys)` calls `fn(xs[i], ys[i])`. */
export type ArgLists<A extends unknown[]> = { [K in keyof A]: Iterable<A[K]> };

export interface Call<T> extends Submission {
  combine: (values: unknown[]) => T;
}

/** Shared machinery of views addressed to explicit engines. */
export abstract class AddressedView {
  /** @internal */ protected readonly port: ViewPort;
  /** @internal */ protected readonly opts: ViewOptions;

  /** @internal */
  protected constructor(port: ViewPort, opts: ViewOptions) {
    this.port = port;
    this.opts = opts;
  }

  /**
   * @internal Submits one task per target and gathers the results in target order. The view's
   * `timeout` goes with each task (the engine enforces it); its `signal` cancels them.
   */
  protected run<T>(s: Call<T>, single: boolean): AsyncResult<T> {
    const { port } = this;
    checkSizes(port, s);
    const metadata = pendingFor(s.targets);
    const ids: number[] = [];
    const call: Call<T> = { ...s, timeout: s.timeout ?? this.opts.timeout };
    // `step` runs only when results arrive, after the constructor has returned.
    const ar: AsyncResult<T> = AsyncResult.create<T>(
      (resolve, reject) => {
        const unlisten = this.onSignal(metadata, reject, () => port.cancel(ids));
        if (!unlisten) return;
        gatherTargets(port, call, single, metadata, ids, {
          step: () => ar.done++,
          resolve: (values) => {
            unlisten();
            try {
              resolve(call.combine(values));
            } catch (err) {
              reject(err);
            }
          },
          reject: (err) => {
            unlisten();
            reject(err);
          },
        });
      },
      metadata,
      () => port.cancel(ids),
      ids,
      port.id,
    );
    return ar;
  }

  /**
   * @internal A map over one block of items per target (`starts[i]`: the input index of target
   * i's first item): iterable as blocks arrive, awaitable for every value in input order. The
   * view's `timeout` is per item: a block of n items may run n times as long.
   */
  protected runMap<R>(s: Submission, starts: number[], length: number, single: boolean): MapResult<R> {
    const { port } = this;
    checkSizes(port, s);
    const metadata = pendingFor(s.targets);
    const ids: number[] = [];
    const { result, output } = MapResult.open<R>({
      metadata,
      ids,
      clientId: port.id,
      length,
      ordered: true,
      onAbort: () => port.cancel(ids),
    });
    const perItem = this.opts.timeout;
    const call: Submission = {
      ...s,
      timeout:
        perItem === undefined
          ? undefined
          : s.targets.map((_, i) => perItem * Math.max(1, (starts[i + 1] ?? length) - (starts[i] as number))),
    };
    const unlisten = this.onSignal(
      metadata,
      (err) => output.finish(err),
      () => port.cancel(ids),
    );
    if (!unlisten) return result;
    try {
      gatherTargets(port, call, single, metadata, ids, {
        value: (i, block) => output.deliver(starts[i] as number, block as unknown[]),
        step: () => undefined,
        resolve: () => {
          unlisten();
          output.finish();
        },
        reject: (err) => {
          unlisten();
          output.finish(err);
        },
      });
    } catch (err) {
      unlisten();
      output.finish(err as Error);
    }
    return result;
  }

  /**
   * Ties a call to the view's `signal`: if it has aborted already, fails the call at once (nothing
   * is sent) and returns undefined; otherwise listens for it (`cancel` then cancels the call's
   * tasks) and returns the function that stops listening, for when the call is settled.
   */
  private onSignal(metadata: TaskMetadata[], fail: (err: Error) => void, cancel: () => void): (() => void) | undefined {
    const signal = this.opts.signal;
    if (!signal) return () => undefined;
    if (signal.aborted) {
      for (const m of metadata) m.status = "error";
      fail(new TaskCancelledError("The call was not sent: its signal had already aborted.", { cause: signal.reason }));
      return undefined;
    }
    signal.addEventListener("abort", cancel, { once: true });
    return () => signal.removeEventListener("abort", cancel);
  }

  /** @internal encodes `[args, scopeValues]` for apply and map */
  protected encodeCall(args: unknown, root: string): { part: Part; scope: string[] | undefined } {
    const scope = this.opts.scope;
    const names = scope ? Object.keys(scope) : undefined;
    return { part: encodeCallPayload(args, scope, root), scope: names };
  }
}

export function pendingFor(targets: number[]): TaskMetadata[] {
  const submitted = new Date();
  return targets.map((engineId) => pendingMetadata(engineId, submitted));
}

/**
 * `map`'s trailing options, as the load-balanced view takes them: a last argument that is a plain
 * object rather than an iterable (`dv.map(fn, xs, { timeout: 1_000, signal })`).
 */
export function splitMapOptions(args: unknown[]): { lists: Iterable<unknown>[]; options: ViewOptions | undefined } {
  const last = args[args.length - 1];
  if (args.length > 1 && typeof last === "object" && last !== null && !(Symbol.iterator in last))
    return { lists: args.slice(0, -1) as Iterable<unknown>[], options: last as ViewOptions };
  return { lists: args as Iterable<unknown>[], options: undefined };
}

export function zipArgLists(lists: Iterable<unknown>[]): unknown[][] {
  if (lists.length === 0) throw new InvalidOptionError("`map` needs at least one iterable of arguments");
  const arrays = lists.map((l, i) => {
    if (l === null || typeof (l as Iterable<unknown>)[Symbol.iterator] !== "function") {
      throw new InvalidOptionError(`Expected argument list ${i} of \`map\` to be iterable, got ${describeValue(l)}`);
    }
    return Array.isArray(l) ? l : [...l];
  });
  const n = Math.min(...arrays.map((a) => a.length));
  const out = new Array<unknown[]>(n);
  for (let i = 0; i < n; i++) out[i] = arrays.map((a) => a[i]);
  return out;
}

export function encodePush(namespace: Record<string, unknown>): Part {
  if (typeof namespace !== "object" || namespace === null || Array.isArray(namespace)) {
    throw new InvalidOptionError(
      `Expected \`push\` to get an object of names to values, got ${describeValue(namespace)}`,
    );
  }
  validateNames(Object.keys(namespace));
  return encodeNamespace(namespace);
}

export function validateNames(names: string | string[]): string[] {
  const list = typeof names === "string" ? [names] : names;
  if (!Array.isArray(list) || list.some((n) => typeof n !== "string" || !/^[A-Za-z_$][\w$]*$/.test(n))) {
    throw new InvalidOptionError(
      `Expected a global name or a list of names (JavaScript identifiers), got ${describeValue(names)}`,
    );
  }
  return list;
}
