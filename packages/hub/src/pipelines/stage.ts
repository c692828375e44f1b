import { Deque, type Part, type PipeStage } from "@ptcluster/protocol";
import type { OutputPath } from "./item-outputs.js";
import { StageCounters } from "./stage-counters.js";

/** One piece of an input item on its way through the stages. */
export interface Piece {
  /** Index of the input item it comes from. */
  item: number;
  /** Its place among the item's outputs (empty until a `flatMap`). */
  path: OutputPath;
  /** The value, encoded as the client or the previous stage's engine encoded it. */
  part: Part;
  /** Failed runs in the current stage (errors, timeouts), against its `retries`. */
  attempts: number;
  /** Engines it failed on in this stage: a retry goes elsewhere where it can. */
  avoid?: number[];
  /** Run in a task of its own: it is being retried, or was in a task that failed as a whole. */
  solo?: boolean;
}

/**
 * How long a stage task should take (ms of its items' own run time): long enough that a task's
 * fixed cost (thread hops and wake-ups on the way, about a millisecond of CPU at the engine, more
 * when engines share cores) stays small beside its work, short enough that items move on soon.
 * Measured on the text pipeline of examples/pipeline.ts (3,000 documents, 5 stages of 0.01–0.3 ms
 * items, 2 engines, runs interleaved): the cluster's CPU per item and stage was about 250 µs with
 * 2 ms tasks, 165 µs with 20 ms tasks.
 */
const TARGET_TASK_MS = 20;
/** Items per stage task at most. */
const MAX_CHUNK = 1024;
/** Stage tasks in flight per engine slot: one running, the next ones already on their way. */
const TASKS_PER_SLOT = 2;

/**
 * One stage of a running pipeline: the pieces waiting for it, its tasks in flight (with the pieces
 * each carries, for the next stage, retries and filters, which pass the piece itself on), and how
 * many pieces go in one task. Tasks are sized from the items' measured run times: a stage of tiny
 * items sends a few hundred per task, a stage of slow items one per task, so an item never waits
 * long for the others of its task.
 */
export class Stage {
  readonly queue = new Deque<Piece>();
  /** Pieces of each of this stage's tasks in flight, by controller task id. */
  readonly tasks = new Map<number, Piece[]>();
  /** Pieces in those tasks. */
  running = 0;
  readonly counters = new StageCounters();
  readonly name: string;
  /** Run time of one item, smoothed over tasks (ms); undefined until the first results come. */
  private perItemMs: number | undefined;

  constructor(
    readonly index: number,
    readonly spec: PipeStage,
    /** The stage's `scope` values (an empty part when none), sent with each of its tasks. */
    readonly scope: Part,
  ) {
    this.name = spec.name || "anonymous";
  }

  get inFlight(): number {
    return this.queue.length + this.running;
  }

  /** A task of this stage reported its items' run times (ms): the first sets the pace, later ones adjust it. */
  observe(ms: readonly number[]): void {
    let sum = 0;
    for (const m of ms) sum += Number.isFinite(m) && m >= 0 ? m : 0;
    if (ms.length === 0) return;
    const mean = sum / ms.length;
    this.perItemMs = this.perItemMs === undefined ? mean : this.perItemMs + (mean - this.perItemMs) * 0.3;
  }

  /**
   * The pieces of the next task, if the stage may start one: within its `concurrency` and a few
   * tasks per engine slot (`slots`: the concurrency of the engines that run it).
   */
  nextChunk(slots: number): Piece[] | undefined {
    const limit = this.spec.concurrency ?? Number.POSITIVE_INFINITY;
    const room = limit - this.running;
    if (this.queue.length === 0 || room <= 0 || this.tasks.size >= Math.max(1, slots) * TASKS_PER_SLOT)
      return undefined;
    const first = this.queue.peek() as Piece;
    if (first.solo || this.spec.timeout !== undefined) {
      // A run-time limit is per item: each item is a task, so its limit is its own.
      this.queue.shift();
      return [first];
    }
    // Before any measure, one item per task: items of unknown weight could be slow, and must not
    // pile up on the first engine; the first results come at once when they are quick.
    const perItem = Math.max(this.perItemMs ?? TARGET_TASK_MS, 1e-3);
    const bySpeed = Math.max(1, Math.min(MAX_CHUNK, Math.floor(TARGET_TASK_MS / perItem)));
    // Spread what is waiting over the slots rather than give it all to one engine.
    const spread = Math.ceil(this.queue.length / Math.max(1, slots));
    const n = Math.max(1, Math.min(bySpeed, spread, room));
    const chunk: Piece[] = [];
    while (chunk.length < n && this.queue.length > 0 && !(this.queue.peek() as Piece).solo)
      chunk.push(this.queue.shift() as Piece);
    return chunk;
  }
}
