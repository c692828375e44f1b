import { InvalidOptionError, type Part } from "@ptcluster/protocol";
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

  /** @internal Submits one task per target and gathers the results in target order. */
  protected run<T>(s: Call<T>, single: boolean): AsyncResult<T> {
    const { port } = this;
    checkSizes(port, s);
    const metadata = pendingFor(s.targets);
    const ids: number[] = [];
    // `step` runs only when results arrive, after the constructor has returned.
    const ar: AsyncResult<T> = AsyncResult.create<T>(
      (resolve, reject) => {
        gatherTargets(port, s, single, metadata, ids, {
          step: () => ar.done++,
          resolve: (values) => {
            try {
              resolve(s.combine(values));
            } catch (err) {
              reject(err);
            }
          },
          reject,
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
   * i's first item): iterable as blocks arrive, awaitable for every value in input order.
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
    try {
      gatherTargets(port, s, single, metadata, ids, {
        value: (i, block) => output.deliver(starts[i] as number, block as unknown[]),
        step: () => undefined,
        resolve: () => output.finish(),
        reject: (err) => output.finish(err),
      });
    } catch (err) {
      output.finish(err as Error);
    }
    return result;
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
