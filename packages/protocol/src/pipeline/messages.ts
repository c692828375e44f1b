/**
 * Pipelines (`rc.pipeline(items).map(f).filter(g).flatMap(h)`): the messages between a client and
 * the controller, which runs the stages as load-balanced tasks and hands each stage's results to
 * the next stage itself, so intermediate values never travel back to the client.
 *
 * Items are numbered by their place in the input (0, 1, …). An item is *finished* when everything
 * that came from it has left the last stage (kept, dropped by a filter, or skipped after an error);
 * the controller reports it then, with its outputs (none, one, or several after a `flatMap`) in order.
 */

/** What a stage does with each item. */
export type StageKind = "map" | "filter" | "flatMap";

/** A stage as the client describes it when it opens the pipeline. */
export interface PipeStage {
  kind: StageKind;
  /** Hash of the shipped function (as `ClientTask.fn`). */
  fn: string;
  /** Its source, with the first use of `fn` on this connection (as `ClientTask.src`). */
  src?: string;
  /** The function's name, for stats, errors and `ptcluster status`. */
  name?: string;
  /** Names shipped with `scope`; their values are the stage's part of `pipe_open`. */
  scope?: string[];
  /** Only these engines run the stage (default: any). */
  targets?: number[];
  /** Items of this stage at most waiting for or running on engines at once (default: no limit of its own). */
  concurrency?: number;
  /** Run-time limit of one item on an engine, in ms. */
  timeout?: number;
  /** Re-runs of an item whose function threw (default 0), each on another engine where one is free. */
  retries?: number;
}

/** What the pipeline does with an item whose stage failed (after its retries). */
export type PipeOnError = "fail" | "skip";

// ---- client → controller ----------------------------------------------------------------------

/** Opens pipeline `pipe` (a number chosen by the client, unique on its connection). Parts: each stage's scope values (an empty part for none). */
export interface PipeOpenMsg {
  type: "pipe_open";
  pipe: number;
  stages: PipeStage[];
  onError: PipeOnError;
  pf: number[];
}

/** Input items `first`, `first + 1`, …: one part each, an encoded value. */
export interface PipeItemsMsg {
  type: "pipe_items";
  pipe: number;
  first: number;
  pf: number[];
}

/** The input has ended: `total` items in all. */
export interface PipeEndMsg {
  type: "pipe_end";
  pipe: number;
  total: number;
}

/** The client gives the pipeline up (the loop broke, its signal aborted): everything in flight is cancelled. No answer. */
export interface PipeCancelMsg {
  type: "pipe_cancel";
  pipe: number;
  reason: string;
}

// ---- controller → client ----------------------------------------------------------------------

/**
 * Items finished since the last message, as `[item, outputs]`: the parts follow in the same
 * order, `outputs` of them for each item (0 for an item a filter dropped or an error skipped).
 * `stats` comes now and then (at most every few hundred ms) and always with the last items.
 */
export interface PipeOutMsg {
  type: "pipe_out";
  pipe: number;
  done: Array<[number, number]>;
  pf: number[];
  stats?: StageStats[];
  /** The last message of the run: every item finished after the input's end, and `stats` are final. */
  end?: boolean;
}

/**
 * The pipeline failed (`onError: "fail"`): `item` (input index) failed in `stage`. With `remote`,
 * the one part is the encoded failure of the user's code (a `FailureInfo`, as a task's); otherwise
 * `sysError` says what ptcluster saw (timeout, engine lost too often, crashed, cancelled, bad request).
 * Everything else in flight was cancelled; nothing more comes for `pipe`.
 */
export interface PipeFailedMsg {
  type: "pipe_failed";
  pipe: number;
  stage?: number;
  item?: number;
  /** The engine that ran the failing item, if one did. */
  engine?: number;
  remote?: boolean;
  sysError?: { code: string; message: string };
  pf?: number[];
  stats?: StageStats[];
}

/** One stage's figures, as `pipeline.stats()` shows them. */
export interface StageStats {
  stage: number;
  kind: StageKind;
  /** The function's name (`anonymous` when it has none). */
  name: string;
  /** Items in this stage now: waiting for an engine, or running. */
  inFlight: number;
  /** Items this stage finished (a filter counts the ones it dropped too). */
  done: number;
  /** Items that failed in this stage after their retries (skipped, or failing the pipeline). */
  failed: number;
  /** Re-runs: after an error, with `retries`, or after their engine was lost. */
  retried: number;
  /** Items finished per second, since the stage's first item started. */
  itemsPerSec: number;
  /** Run time of one item on its engine, median and 95th percentile (recent items), in ms. */
  p50Ms: number;
  p95Ms: number;
}
