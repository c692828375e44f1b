import { InvalidOptionError } from "@ptcluster/protocol";
import { describeValue, nonNegativeInt, rejectUnknownKeys } from "../options.js";
import { checkTimeoutAndSignal, validateViewOptions, type ViewOptions } from "./view-options.js";
import { AsyncResult } from "../results/async-result.js";

/** Options of a load-balanced view, applied to each task (`lb.with({...})`). */
export interface LoadBalancedOptions extends ViewOptions {
  /** Re-run a task that threw up to this many times, on other engines where possible (default 0). */
  retries?: number;
  /** Run-time limit per task in ms, counted from its start on an engine (queue time excluded). */
  timeout?: number;
  /** Cancels the task(s): queued ones are dropped, running ones see `engine.signal` abort, then are stopped. */
  signal?: AbortSignal;
  /** Start only after these results succeeded (a failed one fails this task with `DependencyError`). */
  after?: ReadonlyArray<AsyncResult<unknown>>;
  /** Run on the engine where these results ran (they must all have run on one engine). */
  follow?: ReadonlyArray<AsyncResult<unknown>>;
}

/** Options of `map` and `imap`. */
export interface MapOptions extends LoadBalancedOptions {
  /** Yield results in input order (the default), or as they complete with `false` (`await` on a map always gives input order). */
  ordered?: boolean;
  /** Items per task: a number, or `"auto"` (default), which grows chunks while items are fast and keeps several per engine. */
  chunkSize?: number | "auto";
  /**
   * At most this many items in flight (default 100,000), read lazily from the input: for `map`,
   * submitted and not finished; for `imap`, submitted and not yet yielded, which bounds its memory.
   */
  maxInFlight?: number;
  /** Draw a progress bar with rate and ETA on stderr (when it is a terminal). */
  progress?: boolean;
}

export interface ResolvedMapOptions {
  ordered: boolean;
  chunkSize: number | "auto";
  maxInFlight: number;
  progress: boolean;
}

const LB_KEYS = new Set(["scope", "retries", "timeout", "signal", "after", "follow"]);
const MAP_KEYS = new Set([...LB_KEYS, "ordered", "chunkSize", "maxInFlight", "progress"]);

export function validateLbOptions(o: LoadBalancedOptions, keys: Set<string> = LB_KEYS): LoadBalancedOptions {
  if (typeof o !== "object" || o === null)
    throw new InvalidOptionError(`Expected options to be an object, got ${describeValue(o)}`);
  rejectUnknownKeys(o, keys, keys === LB_KEYS ? "load-balanced view" : "map");
  if (o.scope !== undefined) validateViewOptions({ scope: o.scope });
  if (o.retries !== undefined) nonNegativeInt("retries", o.retries);
  checkTimeoutAndSignal(o);
  for (const k of ["after", "follow"] as const) {
    const v = o[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((r) => !(r instanceof AsyncResult)))) {
      throw new InvalidOptionError(
        `Expected \`${k}\` to be an array of AsyncResults (from apply), got ${describeValue(v)}`,
      );
    }
  }
  return o;
}

export function validateMapOptions(o: MapOptions, defaultOrdered: boolean): ResolvedMapOptions {
  validateLbOptions(o, MAP_KEYS);
  if (o.ordered !== undefined && typeof o.ordered !== "boolean")
    throw new InvalidOptionError(`Expected \`ordered\` to be a boolean, got ${describeValue(o.ordered)}`);
  if (o.progress !== undefined && typeof o.progress !== "boolean")
    throw new InvalidOptionError(`Expected \`progress\` to be a boolean, got ${describeValue(o.progress)}`);
  if (o.chunkSize !== undefined && o.chunkSize !== "auto" && nonNegativeInt("chunkSize", o.chunkSize) === 0) {
    throw new InvalidOptionError('Expected `chunkSize` to be a positive integer or "auto", got `0`');
  }
  if (o.maxInFlight !== undefined && nonNegativeInt("maxInFlight", o.maxInFlight) === 0) {
    throw new InvalidOptionError("Expected `maxInFlight` to be a positive integer, got `0`");
  }
  return {
    ordered: o.ordered ?? defaultOrdered,
    chunkSize: o.chunkSize ?? "auto",
    maxInFlight: o.maxInFlight ?? 100_000,
    progress: o.progress ?? false,
  };
}
