import type { EngineTask, Logger, Part, TaskResult } from "@ptcluster/protocol";
import { ExecutorHost } from "./executor-host.js";
import { unpackFrames } from "../shared/transfer.js";

interface Running {
  task: EngineTask;
  started: number;
  timer: NodeJS.Timeout | undefined;
  killTimer: NodeJS.Timeout | undefined;
  /** Set once the task is timed out or cancelled: what to report, whatever it does next. */
  verdict: { code: string; message: string } | undefined;
}

export interface TaskRunnerOptions {
  concurrency: number;
  /** How long a timed-out or cancelled task may take to stop on its own before the executor is replaced (ms). */
  graceMs: number;
  logger: Logger;
  onResult(result: TaskResult, part: Part): void;
  /** The executor was replaced: the namespace is empty again. */
  onReset(reason: string): void;
}

const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };

/**
 * The engine's task queue and its executor thread: hands tasks to the executor while it has free
 * slots, enforces run-time limits and cancellation (the task's `engine.signal` first, then, after a
 * grace period, a new executor), and hands back queued tasks another engine can take.
 */
export class TaskRunner {
  private executor: ExecutorHost;
  private readonly queue: Array<{ task: EngineTask; part: Part }> = [];
  private readonly running = new Map<number, Running>();
  private readonly sources = new Map<string, string>();
  private init: { engineId: number; host: string; uuid: string } | undefined;
  private resetting = false;
  private closed = false;
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
    return this.queue.length + this.running.size;
  }

  get runningCount(): number {
    return this.running.size;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  enqueue(task: EngineTask, part: Part): void {
    if (task.fn && task.src !== undefined) this.sources.set(task.fn, task.src);
    this.queue.push({ task, part });
    this.pump();
  }

  /** Removes up to `max` queued load-balanced tasks that have not started, newest first, and returns their ids. */
  release(max: number): number[] {
    const ids: number[] = [];
    for (let i = this.queue.length - 1; i >= 0 && ids.length < max; i--) {
      const q = this.queue[i] as { task: EngineTask };
      if (!q.task.movable) continue;
      this.queue.splice(i, 1);
      ids.push(q.task.id);
    }
    return ids;
  }

  /** Cancels tasks: queued ones at once, running ones through their signal, then by force. */
  cancel(ids: readonly number[]): void {
    const wanted = new Set(ids);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const q = this.queue[i] as { task: EngineTask };
      if (!wanted.has(q.task.id)) continue;
      this.queue.splice(i, 1);
      this.report(q.task.id, Date.now(), { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled before it started." });
    }
    for (const id of wanted) {
      if (this.running.has(id)) this.stopTask(id, { code: "ERR_PTC_TASK_CANCELLED", message: "The task was cancelled while running." });
    }
  }

  private newExecutor(): ExecutorHost {
    const host: ExecutorHost = new ExecutorHost(
      (m) => {
        if (host !== this.executor) return; // a result from a replaced executor
        const [body, ...frames] = unpackFrames(m.data);
        this.onExecutorResult(m.result, { body: body ?? Buffer.alloc(0), frames });
      },
      (code) => {
        if (host !== this.executor || this.closed || this.resetting) return;
        this.opts.logger.error({ code }, "executor thread exited; starting a new one");
        void this.reset(`the executor thread exited with code ${code}`, {
          code: "ERR_PTC_ENGINE_LOST",
          message: `The engine's executor thread exited (code ${code}) while running this task (did it call process.exit?). The engine started a fresh executor; its namespace is empty.`,
        });
      },
    );
    if (this.init) host.post({ type: "init", ...this.init });
    return host;
  }

  private pump(): void {
    while (!this.resetting && this.running.size < this.opts.concurrency && this.queue.length > 0) {
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
      const r: Running = { task, started: Date.now(), timer: undefined, killTimer: undefined, verdict: undefined };
      if (task.timeout !== undefined) {
        const ms = task.timeout;
        r.timer = setTimeout(() => this.stopTask(task.id, { code: "ERR_PTC_TASK_TIMEOUT", message: `The task ran longer than its timeout of ${ms} ms and was stopped.` }), ms);
      }
      this.running.set(task.id, r);
      this.executor.run(task, part.body, part.frames);
    }
  }

  /** Signals a running task to stop; replaces the executor if it has not stopped after the grace period. */
  private stopTask(id: number, verdict: { code: string; message: string }): void {
    const r = this.running.get(id);
    if (!r || r.verdict) return;
    r.verdict = verdict;
    clearTimeout(r.timer);
    this.executor.post({ type: "cancel", id, reason: verdict.message });
    r.killTimer = setTimeout(() => void this.reset(`task ${id} did not stop within ${this.opts.graceMs} ms`), this.opts.graceMs);
  }

  private onExecutorResult(result: TaskResult, part: Part): void {
    const r = this.running.get(result.id);
    if (!r) return;
    this.finish(r);
    this.done++;
    if (r.verdict) this.report(result.id, r.started, r.verdict, result);
    else this.opts.onResult(result, part);
    this.pump();
  }

  private finish(r: Running): void {
    clearTimeout(r.timer);
    clearTimeout(r.killTimer);
    this.running.delete(r.task.id);
  }

  private report(id: number, started: number, sysError: { code: string; message: string }, from?: TaskResult): void {
    const result: TaskResult = { id, ok: false, engine: this.init?.engineId ?? -1, started, completed: Date.now(), sysError };
    if (from?.stdout) result.stdout = from.stdout;
    if (from?.stderr) result.stderr = from.stderr;
    this.opts.onResult(result, EMPTY);
  }

  /**
   * Replaces the executor. Tasks with a verdict report it; other running tasks (possible with
   * concurrency above 1) fail with `fallback`, or an executor-reset error.
   */
  private async reset(reason: string, fallback?: { code: string; message: string }): Promise<void> {
    if (this.resetting || this.closed) return;
    this.resetting = true;
    const old = this.executor;
    const victims = [...this.running.values()];
    for (const r of victims) this.finish(r);
    this.executor = this.newExecutor();
    await old.terminate().catch(() => undefined);
    for (const r of victims) {
      this.report(r.task.id, r.started, r.verdict ?? fallback ?? {
        code: "ERR_PTC_EXECUTOR_RESET",
        message: "The engine's executor was replaced (another task on it timed out or was cancelled) while this task ran; its namespace is empty again.",
      });
    }
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
    for (const r of this.running.values()) this.finish(r);
    await this.executor.terminate();
  }
}
