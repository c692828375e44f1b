import {
  TaskCancelledError,
  packParts,
  unpackParts,
  unpackStageReport,
  type ClientTask,
  type HubToClient,
  type Logger,
  type Part,
  type PipeOnError,
  type PipeStage,
  type StageReport,
  type StageStats,
  type TaskResult,
} from "@ptcluster/protocol";
import { ItemOutputs } from "./item-outputs.js";
import { Stage, type Piece } from "./stage.js";

/** What a run needs from the controller. */
export interface RunDeps {
  /** Submits a load-balanced task of the run's client whose result goes to `sink`; its controller id. */
  submit(task: ClientTask, part: Part, sink: (r: TaskResult, part: Part) => void): number;
  /** Cancels tasks (controller ids), queued or running. */
  cancel(hubIds: number[]): void;
  /** Total concurrency of the engines a stage may use (`targets`, or all). */
  slots(targets: readonly number[] | undefined): number;
  /** Ids of the registered engines. */
  engineIds(): number[];
  /** A fresh client-local id for a stage task (negative: clients number theirs from 1). */
  nextLocalId(): number;
  send(msg: HubToClient, parts?: Part[]): void;
  /** Something changed: dispatch and flush after this turn. */
  changed(): void;
  log: Logger;
}

export type RunState = "running" | "done" | "failed" | "cancelled";

/** Failures of a whole stage task that say nothing about its items but one: run them one by one. */
const SPLIT_CODES = new Set([
  "ERR_PTC_TASK_CRASHED",
  "ERR_PTC_OUT_OF_MEMORY",
  "ERR_PTC_ENGINE_LOST",
  "ERR_PTC_EXECUTOR_RESET",
  "ERR_PTC_TASK_TIMEOUT",
]);
const CANCELLED = new TaskCancelledError().code;
/** How often the client hears the stats while items are in flight. */
const STATS_EVERY_MS = 250;

/**
 * One pipeline of one client: its items, from the input to the last stage, with the controller
 * handing each stage's results to the next stage's tasks (intermediate values never go back to
 * the client), retries and `onError`, and the finished items batched to the client.
 *
 * Memory: the client sends an item only while its window has room (`maxInFlight`, see the client),
 * so what a run holds is bounded by that window times the items' fan-out in `flatMap` stages.
 */
export class PipelineRun {
  state: RunState = "running";
  private readonly stages: Stage[];
  private readonly items = new ItemOutputs();
  private nextItem = 0;
  private total: number | undefined;
  private finished = 0;
  private done: Array<[number, number]> = [];
  private doneParts: Part[] = [];
  private lastStats = 0;

  constructor(
    readonly pipe: number,
    specs: PipeStage[],
    scopes: Part[],
    private readonly onError: PipeOnError,
    private readonly d: RunDeps,
  ) {
    this.stages = specs.map((s, i) => new Stage(i, s, scopes[i] as Part));
  }

  /** Input items `first`, `first + 1`, …: false if they are not the next ones (a protocol error, which fails the run). */
  addItems(first: number, parts: Part[]): void {
    if (this.state !== "running") return;
    if (first !== this.nextItem || (this.total !== undefined && first + parts.length > this.total)) {
      this.fail({ sysError: protocolError(`pipeline items out of order: got ${first}, expected ${this.nextItem}`) });
      return;
    }
    const stage = this.stages[0] as Stage;
    for (const part of parts) {
      const item = this.nextItem++;
      this.items.add(item);
      stage.queue.push({ item, path: [], part, attempts: 0 });
    }
    this.d.changed();
  }

  end(total: number): void {
    if (this.state !== "running") return;
    if (total !== this.nextItem) {
      this.fail({ sysError: protocolError(`pipeline ended at ${total} items, but ${this.nextItem} were sent`) });
      return;
    }
    this.total = total;
    this.d.changed();
  }

  /** The client gave up: everything in flight is cancelled, nothing more is said. */
  cancel(reason: string): void {
    if (this.state !== "running") return;
    this.state = "cancelled";
    this.d.log.debug({ pipe: this.pipe, reason }, "pipeline cancelled by its client");
    this.stopTasks();
  }

  /** Starts what the stages may start, the last stage first: finishing items frees room for new ones. */
  dispatch(): void {
    if (this.state !== "running") return;
    const now = Date.now();
    for (let s = this.stages.length - 1; s >= 0; s--) {
      const stage = this.stages[s] as Stage;
      const slots = this.d.slots(stage.spec.targets);
      for (let chunk = stage.nextChunk(slots); chunk; chunk = stage.nextChunk(slots)) this.start(stage, chunk, now);
    }
  }

  /** Sends the items finished since the last flush (and the stats now and then); true once the run is over. */
  flush(now: number, tick = false): boolean {
    if (this.state === "running" && this.total !== undefined && this.finished === this.total) this.state = "done";
    const over = this.state !== "running";
    if (this.state === "cancelled" || this.state === "failed") return true;
    const statsDue = over || now - this.lastStats >= STATS_EVERY_MS;
    // The end always carries the final stats, even when the last items went out before the input's end was known.
    if (this.done.length === 0 && !over && !(tick && statsDue)) return over;
    const msg: HubToClient = { type: "pipe_out", pipe: this.pipe, done: this.done, pf: [] };
    if (statsDue) {
      msg.stats = this.stats(now);
      this.lastStats = now;
    }
    if (over) msg.end = true;
    const parts = this.doneParts;
    msg.pf = parts.map((p) => p.frames.length);
    this.done = [];
    this.doneParts = [];
    this.d.send(msg, parts);
    return over;
  }

  stats(now = Date.now()): StageStats[] {
    return this.stages.map((s) => s.counters.snapshot(s.index, s.spec.kind, s.name, s.inFlight, now));
  }

  private start(stage: Stage, pieces: Piece[], now: number): void {
    const spec = stage.spec;
    let targets = spec.targets;
    const avoid = pieces.length === 1 ? pieces[0]?.avoid : undefined;
    if (avoid?.length) {
      // A retry goes to an engine that has not failed it, where there is one.
      const others = (targets ?? this.d.engineIds()).filter((id) => !avoid.includes(id));
      if (others.length > 0) targets = others;
    }
    const task: ClientTask = {
      id: this.d.nextLocalId(),
      op: "stage",
      stage: spec.kind,
      to: [],
      lb: { retries: 0, maxDeaths: 3, ...(targets ? { targets } : {}) },
      fn: spec.fn,
    };
    if (spec.name !== undefined) task.name = spec.name;
    if (spec.scope) task.scope = spec.scope;
    if (spec.timeout !== undefined) task.timeout = spec.timeout;
    const part = packParts([stage.scope, ...pieces.map((p) => p.part)]);
    stage.counters.started(now);
    stage.running += pieces.length;
    // Results reach the sink after this call (ResultDelivery): the task is recorded by then.
    const id = this.d.submit(task, part, (r, p) => this.onResult(stage, id, r, p));
    stage.tasks.set(id, pieces);
  }

  private onResult(stage: Stage, id: number, r: TaskResult, part: Part): void {
    const pieces = stage.tasks.get(id);
    // A task of a run that ended (its tasks were cancelled and forgotten): nothing to do.
    if (!pieces) return;
    stage.tasks.delete(id);
    stage.running -= pieces.length;
    if (this.state !== "running") return;
    // Runs after an engine died under the task (the scheduler re-ran it).
    if ((r.attempts ?? 1) > 1) stage.counters.retried += ((r.attempts as number) - 1) * pieces.length;
    if (r.ok) this.onItems(stage, pieces, r, part);
    else this.onTaskFailed(stage, pieces, r, part);
    this.d.changed();
  }

  private onItems(stage: Stage, pieces: Piece[], r: TaskResult, part: Part): void {
    let parts: Part[];
    let report: StageReport;
    try {
      parts = unpackParts(part);
      report = unpackStageReport(parts[0] as Part);
      if (report.n.length !== pieces.length) throw new TypeError("a stage report for another number of items");
    } catch (err) {
      this.fail({ stage: stage.index, engine: r.engine, sysError: protocolError((err as Error).message) });
      return;
    }
    const now = Date.now();
    stage.observe(report.ms);
    const next = stage.index + 1;
    let k = 1;
    for (let i = 0; i < pieces.length && this.state === "running"; i++) {
      const piece = pieces[i] as Piece;
      const n = report.n[i] as number;
      const ms = report.ms[i] as number;
      if (n < 0) {
        this.itemFailed(stage, piece, r.engine, { remote: parts[k++] as Part });
        continue;
      }
      stage.counters.finished(ms, now);
      switch (stage.spec.kind) {
        case "filter":
          if (n > 0) this.advance(next, { item: piece.item, path: piece.path, part: piece.part, attempts: 0 });
          else this.dropped(piece.item);
          break;
        case "map":
          this.advance(next, { item: piece.item, path: piece.path, part: parts[k++] as Part, attempts: 0 });
          break;
        case "flatMap":
          if (n === 0) {
            this.dropped(piece.item);
            break;
          }
          this.items.split(piece.item, n);
          for (let j = 0; j < n; j++)
            this.advance(next, { item: piece.item, path: [...piece.path, j], part: parts[k++] as Part, attempts: 0 });
          break;
      }
    }
  }

  /** A stage task failed as a whole (its engine lost too often, a timeout, a crash, a cancellation). */
  private onTaskFailed(stage: Stage, pieces: Piece[], r: TaskResult, part: Part): void {
    const code = r.sysError?.code;
    if (code === CANCELLED) {
      this.fail({ stage: stage.index, item: (pieces[0] as Piece).item, engine: r.engine, sysError: r.sysError });
      return;
    }
    if (pieces.length > 1 && (code === undefined || SPLIT_CODES.has(code))) {
      // Which item did it is unknown: each runs on its own, and only the culprit fails.
      for (let i = pieces.length - 1; i >= 0; i--) stage.queue.unshift({ ...(pieces[i] as Piece), solo: true });
      return;
    }
    for (const piece of pieces)
      this.itemFailed(stage, piece, r.engine, code === undefined ? { remote: part } : { sysError: r.sysError });
  }

  private itemFailed(stage: Stage, piece: Piece, engine: number, why: Failure): void {
    if (piece.attempts < (stage.spec.retries ?? 0)) {
      stage.counters.retried++;
      stage.queue.unshift({
        ...piece,
        attempts: piece.attempts + 1,
        avoid: [...(piece.avoid ?? []), engine],
        solo: true,
      });
      return;
    }
    stage.counters.failed++;
    if (this.onError === "skip") {
      this.dropped(piece.item);
      return;
    }
    this.fail({ ...why, stage: stage.index, item: piece.item, engine });
  }

  private advance(stage: number, piece: Piece): void {
    if (stage < this.stages.length) {
      (this.stages[stage] as Stage).queue.push(piece);
      return;
    }
    const outputs = this.items.output(piece.item, piece.path, piece.part);
    if (outputs) this.itemFinished(piece.item, outputs);
  }

  private dropped(item: number): void {
    const outputs = this.items.drop(item);
    if (outputs) this.itemFinished(item, outputs);
  }

  private itemFinished(item: number, outputs: Part[]): void {
    this.finished++;
    this.done.push([item, outputs.length]);
    for (const p of outputs) this.doneParts.push(p);
  }

  private fail(f: Failure & { stage?: number; item?: number; engine?: number | undefined }): void {
    if (this.state !== "running") return;
    this.state = "failed";
    this.stopTasks();
    const msg: HubToClient = { type: "pipe_failed", pipe: this.pipe, stats: this.stats() };
    if (f.stage !== undefined) msg.stage = f.stage;
    if (f.item !== undefined) msg.item = f.item;
    if (f.engine !== undefined && f.engine >= 0) msg.engine = f.engine;
    if (f.sysError) msg.sysError = f.sysError;
    if (f.remote) {
      msg.remote = true;
      msg.pf = [f.remote.frames.length];
    }
    this.d.send(msg, f.remote ? [f.remote] : undefined);
  }

  /** Cancels every task of the run still in flight. */
  private stopTasks(): void {
    const ids: number[] = [];
    for (const s of this.stages) {
      for (const id of s.tasks.keys()) ids.push(id);
      s.tasks.clear();
      s.running = 0;
    }
    if (ids.length > 0) this.d.cancel(ids);
  }
}

interface Failure {
  remote?: Part;
  sysError?: { code: string; message: string } | undefined;
}

function protocolError(message: string): { code: string; message: string } {
  return { code: "ERR_PTC_PROTOCOL", message: `Pipeline: ${message}.` };
}
