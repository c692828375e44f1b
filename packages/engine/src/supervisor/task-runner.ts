import type { EngineTask, Logger, Part, TaskResult } from "@ptcluster/protocol";
import { ExecutorHost } from "./executor-host.js";
import { unpackFrames } from "../shared/transfer.js";
import type { FromExecutor } from "../executor/protocol.js";

interface Posted {
  task: EngineTask;
  part: Part;
  /** When the executor started it (inferred: it starts tasks in order as slots free up). */
  started: number | undefined;
  timer: NodeJS.Timeout | undefined;
  killTimer: NodeJS.Timeout | undefined;
  /** Set once the task is timed out or cancelled: what to report, whatever it does next. */
  verdict: { code: string; message: string } | undefined;
}

export interface TaskRunnerOptions {
  concurrency: number;
  /** Heap limit of the executor thread (MB); a task that exceeds it fails, and the engine lives on. */
  maxMemoryMb?: number | undefined;
  /** Largest result the cluster accepts (bytes). */
  maxResultBytes: number;
  /** How long a timed-out or cancelled task may take to stop on its own before the executor is replaced (ms). */
  graceMs: number;
  logger: Logger;
  onResult(result: TaskResult, part: Part): void;
  /** The executor was replaced: the namespace is empty again. */
  onReset(reason: string): void;
  /** Tasks taken back from the executor unstarted, after `release` asked for more than the queue held. */
  onReleased(ids: number[]): void;
}

const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };
/** Tasks posted to the executor beyond its concurrency, when tasks are quick: hides the thread hop. */
const PIPELINE_DEPTH = 16;
/** Below this average run time (ms) a task counts as quick. */
const QUICK_MS = 2;

/**
 * The engine's task queue and its executor thread. Tasks are handed to the executor while it has
 * free slots (and, when tasks are quick, a few more, so it never waits for the next one); run-time
 * limits and cancellation go through the task's `engine.signal` first, then, after a grace period,
 * a new executor. Queued tasks that have not been handed over can be given back for an idle engine.
 */
export class TaskRunner {
  private executor: ExecutorHost;
  private readonly queue: Array<{ task: EngineTask; part: Part }> = [];
  /** Handed to the executor and not finished, in the order it starts them. */
  private readonly posted = new Map<number, Posted>();
  private startedCount = 0;
  private readonly sources = new Map<string, string>();
  private init: { engineId: number; host: string; uuid: string } | undefined;
  private resetting = false;
  private closed = false;
  private avgMs: number | undefined;
  done = 0;

  constructor(private readonly opts: TaskRunnerOptions) {
    this.executor = this.newExecutor();
  }

  whenReady(): Promise<void> {
    return this.executor.whenReady();
  }

  /** Tells the executor (and every later one) who it is. */
  setIdentity(engineId: number, host: string, uuid: string): void {
    this.init = { engineId, host, uuid };
    this.executor.post({ type: "init", ...this.init });
  }

  /** Tasks queued or running. */
  get load(): number {
    return this.queue.length + this.posted.size;
  }

  /** The tasks running now, as `[id, ms since it started]` (for the heartbeat: `ptcluster status` shows them). */
  running(now: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (this.startedCount === 0) return out;
    for (const p of this.posted.values()) if (p.started !== undefined) out.push([p.task.id, now - p.started]);
    return out;
  }

  /** Drops the sources of functions no one will run again (the controller says so). */
  forgetFunctions(fns: readonly string[]): void {
    const known = this.executor.knownFns;
    const drop: string[] = [];
    for (const fn of fns) {
      this.sources.delete(fn);
      if (known.delete(fn)) drop.push(fn);
    }
    if (drop.length) this.executor.post({ type: "forget", fns: drop });
  }

  enqueue(task: EngineTask, part: Part): void {
    if (task.fn && task.src !== undefined) this.sources.set(task.fn, task.src);
    this.queue.push({ task, part });
    this.pump();
  }

  /**
   * Gives back up to `max` load-balanced tasks that have not started, newest first: those still
   * queued here at once (returned), and, if that is not enough, those handed to the executor but
   * not started, once it confirms it has not started them (`onReleased`).
   */
  release(max: number): number[] {
    const ids = this.takeQueued((t) => t.movable === true, max);
    const more: number[] = [];
    for (const p of [...this.posted.values()].reverse()) {
      if (ids.length + more.length >= max) break;
      if (p.started === undefined && !p.verdict && p.task.movable) more.push(p.task.id);
    }
    if (more.length > 0) this.executor.post({ type: "reclaim", ids: more });
    return ids;
  }

  /** Removes up to `max` queued tasks (not yet handed to the executor) matching `pred`, newest first; returns their ids. */
  private takeQueued(pred: (task: EngineTask) => boolean, max = Number.POSITIVE_INFINITY): number[] {
    const ids: number[] = [];
    for (let i = this.queue.length - 1; i >= 0 && ids.length < max; i--) {
      const { task } = this.queue[i] as { task: EngineTask };
      if (!pred(task)) continue;
      this.queue.splice(i, 1);
      ids.push(task.id);
    }
    return ids;
  }

  /** Cancels tasks: queued ones at once, running ones through their signal, then by force. */
  cancel(ids: readonly number[]): void {
    if (this.opts.logger.isLevelEnabled("debug")) {
      this.opts.logger.debug({ ids, queue: this.queue.map((q) => q.task.id), posted: [...this.posted.values()].map((p) => [p.task.id, p.started !== undefined]) }, "cancel");
    }
    const wanted = new Set(ids);
    for (const id of this.takeQueued((t) => wanted.has(t.id))) {
      this.report(id, Date.now(), { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled before it started." });
    }
    const inExecutor: number[] = [];
    for (const id of wanted) {
      const p = this.posted.get(id);
      if (!p || p.verdict) continue;
      // Started or not (as far as we know), the executor drops it or aborts it, and says which.
      p.verdict = p.started === undefined
        ? { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled before it started." }
        : { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled while running." };
      // Whatever the executor finds, a task that does not stop costs its executor after the grace period.
      this.armKill(p);
      inExecutor.push(id);
    }
    if (inExecutor.length) this.executor.post({ type: "cancel", ids: inExecutor, reason: "The task was cancelled." });
  }

  /** Cancels these tasks only if they have not started (their client is gone; running ones may finish). */
  cancelQueued(ids: readonly number[]): void {
    const wanted = new Set(ids);
    for (const id of this.takeQueued((t) => wanted.has(t.id))) {
      this.report(id, Date.now(), { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled before it started: its client went away." });
    }
    const reclaim: number[] = [];
    for (const id of wanted) {
      const p = this.posted.get(id);
      if (p && p.started === undefined && !p.verdict) {
        this.cancelOnReclaim.add(id);
        reclaim.push(id);
      }
    }
    if (reclaim.length) this.executor.post({ type: "reclaim", ids: reclaim });
  }

  /** Tasks to report as cancelled (not released) when the executor hands them back. */
  private readonly cancelOnReclaim = new Set<number>();

  /** Cancels everything queued or running (the controller has already failed or moved it). */
  cancelAll(): void {
    this.cancel([...this.queue.map((q) => q.task.id), ...this.posted.keys()]);
  }

  private newExecutor(): ExecutorHost {
    const host: ExecutorHost = new ExecutorHost(
      this.opts.concurrency,
      this.opts.maxMemoryMb,
      this.opts.maxResultBytes,
      (m) => {
        if (host === this.executor) this.onExecutorMessage(m);
      },
      (code) => {
        if (host !== this.executor || this.closed || this.resetting) return;
        const engine = this.init?.engineId ?? "?";
        this.opts.logger.error({ code, outOfMemory: host.outOfMemory }, "executor thread exited; starting a new one");
        void this.reset(`the executor thread exited with code ${code}${host.outOfMemory ? " (out of memory)" : ""}`, host.outOfMemory
          ? {
              code: "ERR_PTC_OUT_OF_MEMORY",
              message: `The task exhausted the memory of engine ${engine}'s executor${this.opts.maxMemoryMb ? ` (limit ${this.opts.maxMemoryMb} MB, set with --max-memory)` : ""}. The engine started a fresh executor; its namespace is empty.`,
            }
          : {
              code: "ERR_PTC_ENGINE_LOST",
              message: `Engine ${engine}'s executor thread exited (code ${code}) while running this task (did it call process.exit?). The engine started a fresh executor; its namespace is empty.`,
            });
      },
    );
    if (this.init) host.post({ type: "init", ...this.init });
    return host;
  }

  private postLimit(): number {
    const quick = this.avgMs !== undefined && this.avgMs < QUICK_MS;
    return this.opts.concurrency + (quick ? PIPELINE_DEPTH : 0);
  }

  private pump(): void {
    if (this.resetting || this.closed) return;
    const batch: Array<{ task: EngineTask; part: Part }> = [];
    const limit = this.postLimit();
    while (this.posted.size < limit && this.queue.length > 0) {
      const { task, part } = this.queue.shift() as { task: EngineTask; part: Part };
      if (task.fn) {
        if (!this.executor.knownFns.has(task.fn)) {
          const src = task.src ?? this.sources.get(task.fn);
          if (src === undefined) {
            this.report(task.id, Date.now(), { code: "ERR_PTC_PROTOCOL", message: "The controller sent a function this engine has never seen." });
            continue;
          }
          task.src = src;
          this.executor.knownFns.add(task.fn);
        } else delete task.src;
      }
      const p: Posted = { task, part, started: undefined, timer: undefined, killTimer: undefined, verdict: undefined };
      this.posted.set(task.id, p);
      if (this.startedCount < this.opts.concurrency) this.markStarted(p);
      batch.push({ task, part });
    }
    if (batch.length > 0) this.executor.run(batch);
  }

  private markStarted(p: Posted): void {
    p.started = Date.now();
    this.startedCount++;
    const ms = p.task.timeout;
    if (ms !== undefined && !p.verdict) {
      p.timer = setTimeout(() => this.stopTask(p.task.id, { code: "ERR_PTC_TASK_TIMEOUT", message: `The task ran longer than its timeout of ${ms} ms and was stopped.` }), ms);
    }
  }

  /** Signals a running task to stop; replaces the executor if it has not stopped after the grace period. */
  private stopTask(id: number, verdict: { code: string; message: string }): void {
    const p = this.posted.get(id);
    if (!p || p.verdict) return;
    p.verdict = verdict;
    this.armKill(p);
    this.executor.post({ type: "cancel", ids: [id], reason: verdict.message });
  }

  /** After the grace period, a task still running costs its executor. */
  private armKill(p: Posted): void {
    clearTimeout(p.timer);
    p.killTimer = setTimeout(() => void this.reset(`task ${p.task.id} did not stop within ${this.opts.graceMs} ms`), this.opts.graceMs);
  }

  private onExecutorMessage(m: FromExecutor): void {
    if (m.type === "results") {
      for (const { result, data } of m.items) {
        const p = this.posted.get(result.id);
        if (!p) continue;
        this.finish(p);
        this.done++;
        const ms = result.completed - result.started;
        this.avgMs = this.avgMs === undefined ? ms : this.avgMs * 0.8 + ms * 0.2;
        if (p.verdict) this.report(result.id, p.started ?? result.started, p.verdict, result);
        else {
          const [body, ...frames] = unpackFrames(data);
          this.opts.onResult(result, { body: body ?? Buffer.alloc(0), frames });
        }
      }
    } else if (m.type === "reclaimed") {
      const ids: number[] = [];
      for (const id of m.ids) {
        const p = this.posted.get(id);
        if (!p || p.started !== undefined) continue;
        const cancel = this.cancelOnReclaim.has(id);
        this.finish(p);
        // Cancelled meanwhile: report that, never hand it back to run elsewhere.
        if (p.verdict) this.report(id, Date.now(), p.verdict);
        else if (cancel) this.report(id, Date.now(), { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled before it started: its client went away." });
        else ids.push(id);
      }
      if (ids.length > 0) this.opts.onReleased(ids);
    } else if (m.type === "dropped") {
      for (const id of m.ids) {
        const p = this.posted.get(id);
        if (!p) continue;
        this.finish(p);
        this.report(id, Date.now(), p.verdict ?? { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled before it started." });
      }
    }
    this.startWaiting();
    this.pump();
  }

  /** The executor starts posted tasks in order as slots free up: mirror that. */
  private startWaiting(): void {
    if (this.startedCount >= this.opts.concurrency) return;
    for (const p of this.posted.values()) {
      if (this.startedCount >= this.opts.concurrency) break;
      if (p.started === undefined) this.markStarted(p);
    }
  }

  private finish(p: Posted): void {
    this.cancelOnReclaim.delete(p.task.id);
    clearTimeout(p.timer);
    clearTimeout(p.killTimer);
    if (this.posted.delete(p.task.id) && p.started !== undefined) this.startedCount--;
  }

  private report(id: number, started: number, sysError: { code: string; message: string }, from?: TaskResult): void {
    const result: TaskResult = { id, ok: false, engine: this.init?.engineId ?? -1, started, completed: Date.now(), sysError };
    if (from?.stdout) result.stdout = from.stdout;
    if (from?.stderr) result.stderr = from.stderr;
    this.opts.onResult(result, EMPTY);
  }

  /**
   * Replaces the executor. Tasks with a verdict report it; tasks that had not started go back to
   * the front of the queue; other running tasks (possible with concurrency above 1) fail with
   * `fallback`, or an executor-reset error.
   */
  private async reset(reason: string, fallback?: { code: string; message: string }): Promise<void> {
    if (this.resetting || this.closed) return;
    this.resetting = true;
    const old = this.executor;
    const victims = [...this.posted.values()];
    for (const p of victims) this.finish(p);
    this.executor = this.newExecutor();
    await old.terminate().catch(() => undefined);
    const requeue: Array<{ task: EngineTask; part: Part }> = [];
    for (const p of victims) {
      if (p.verdict) this.report(p.task.id, p.started ?? Date.now(), p.verdict);
      else if (p.started === undefined) requeue.push({ task: p.task, part: p.part });
      else {
        this.report(p.task.id, p.started, fallback ?? {
          code: "ERR_PTC_EXECUTOR_RESET",
          message: "The engine's executor was replaced (another task on it timed out or was cancelled) while this task ran; its namespace is empty again.",
        });
      }
    }
    this.queue.unshift(...requeue);
    this.opts.onReset(reason);
    try {
      await this.executor.whenReady();
    } finally {
      this.resetting = false;
    }
    this.pump();
  }

  async terminate(): Promise<void> {
    this.closed = true;
    for (const p of [...this.posted.values()]) this.finish(p);
    await this.executor.terminate();
  }
}
