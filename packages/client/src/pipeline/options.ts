import { InvalidOptionError, type PipeOnError } from "@ptcluster/protocol";
import { describeValue, nonNegativeInt, rejectUnknownKeys } from "../options.js";
import { checkTimeoutAndSignal, validateViewOptions } from "../views/view-options.js";

/** Options of one stage: `.map(fn, { concurrency: 8, timeout: 5_000 })`. */
export interface StageOptions {
  /** Items of this stage at most waiting for or running on engines at once (default: no limit of its own). */
  concurrency?: number;
  /** Only these engines run the stage (default: any), e.g. the engines on the host with the GPU. */
  engines?: readonly number[];
  /** Run-time limit of one item on an engine, in ms: past it the item fails with `TaskTimeoutError`. */
  timeout?: number;
  /** Re-runs of an item whose function threw (default 0), on another engine where one is free. */
  retries?: number;
  /** Values shipped by name with the stage's function, as a view's `scope`. */
  scope?: Record<string, unknown>;
}

/** Options of `rc.pipeline(items, options)`. */
export interface PipelineOptions {
  /** Yield outputs in input order (default), or first done, first out with `false`. */
  ordered?: boolean;
  /**
   * Items sent to the cluster and not yet yielded to the consumer, at most (default 1,024): it
   * bounds how far ahead the input is read, the reordering buffer, and the controller's load.
   */
  maxInFlight?: number;
  /** Cancels the pipeline: everything in flight is dropped or signalled, the run rejects with `TaskCancelledError`. */
  signal?: AbortSignal;
  /** `"fail"` (default): the first item that fails after its retries fails the run. `"skip"`: it is dropped and counted in `stats()`. */
  onError?: PipeOnError;
  /** One progress bar per stage on stderr, when it is a terminal. */
  progress?: boolean;
}

export interface ResolvedPipelineOptions {
  ordered: boolean;
  maxInFlight: number;
  signal: AbortSignal | undefined;
  onError: PipeOnError;
  progress: boolean;
}

const STAGE_KEYS = new Set(["concurrency", "engines", "timeout", "retries", "scope"]);
const PIPELINE_KEYS = new Set(["ordered", "maxInFlight", "signal", "onError", "progress"]);

export const DEFAULT_MAX_IN_FLIGHT = 1024;

function checkObject(o: unknown, what: string): asserts o is object {
  if (typeof o !== "object" || o === null || Array.isArray(o))
    throw new InvalidOptionError(`Expected ${what} options to be an object, got ${describeValue(o)}`);
}

function positiveInt(name: string, v: unknown): number {
  if (nonNegativeInt(name, v) === 0)
    throw new InvalidOptionError(`Expected \`${name}\` to be a positive integer, got \`0\``);
  return v as number;
}

export function validateStageOptions(o: StageOptions): StageOptions {
  checkObject(o, "stage");
  rejectUnknownKeys(o, STAGE_KEYS, "pipeline stage");
  if (o.concurrency !== undefined) positiveInt("concurrency", o.concurrency);
  if (o.retries !== undefined) nonNegativeInt("retries", o.retries);
  checkTimeoutAndSignal({ timeout: o.timeout });
  if (o.scope !== undefined) validateViewOptions({ scope: o.scope });
  if (o.engines !== undefined) {
    const e = o.engines as unknown;
    if (!Array.isArray(e) || e.length === 0 || e.some((id) => !Number.isInteger(id) || (id as number) < 0))
      throw new InvalidOptionError(
        `Expected \`engines\` to be a non-empty array of engine ids (from \`rc.ids\`), got ${describeValue(e)}`,
      );
  }
  return o;
}

export function validatePipelineOptions(o: PipelineOptions): ResolvedPipelineOptions {
  checkObject(o, "pipeline");
  rejectUnknownKeys(o, PIPELINE_KEYS, "pipeline");
  for (const k of ["ordered", "progress"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "boolean")
      throw new InvalidOptionError(`Expected \`${k}\` to be a boolean, got ${describeValue(o[k])}`);
  }
  if (o.maxInFlight !== undefined) positiveInt("maxInFlight", o.maxInFlight);
  if (o.onError !== undefined && o.onError !== "fail" && o.onError !== "skip")
    throw new InvalidOptionError(`Expected \`onError\` to be "fail" or "skip", got ${describeValue(o.onError)}`);
  checkTimeoutAndSignal({ signal: o.signal });
  return {
    ordered: o.ordered ?? true,
    maxInFlight: o.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    signal: o.signal,
    onError: o.onError ?? "fail",
    progress: o.progress ?? false,
  };
}
