import { EMPTY_PART, type EngineTask, type Part, type SharedReplyMsg, type TaskResult } from "@ptcluster/protocol";
import { ExecutorHost, type ExecutorPort } from "./executor-host.js";
import { ExecutorSlot } from "./executor-slot.js";
import type { CommIn } from "./comm-transport.js";
import type { TaskRunnerOptions } from "./task-runner-options.js";
import { CANCELLED, CLIENT_GONE, timedOut, verdictError, type TaskEntry, type Verdict } from "./task-state.js";
import { FunctionSources } from "./function-sources.js";
import { exitError, exitReason, failedResult, memoryError, RAN_RESULT_LOST, REPLACED } from "./executor-loss.js";
import type { LossError } from "./executor-loss.js";
import { MemoryWatch } from "./memory-watch.js";
import { TaskTable } from "./task-table.js";
import { ID_BASE as EXEC_IDS, type ExecutorReport, type FromExecutor } from "../executor/protocol.js";
import { unpackFrames } from "../shared/transfer.js";
import { PREFETCH, QUICK_MS } from "../shared/quick-tasks.js";

export type { TaskRunnerOptions };

/**
 * The engine's tasks and its executor thread. The supervisor owns the queue of tasks not yet
 * started and hands them to the executor as it has free slots; the executor reports each start,
 * result and drop, and the supervisor keeps each task's state from those reports (and, for a task
 * that never yields, the executor's `StartTable`; see `TaskState`). Run-time limits and cancellation go through the task's `engine.signal` first,
 * then, after a grace period, a new executor.
 */
export class TaskRunner {
  /** The executor and its successors (the engine reaches it for `engine.comm`'s executor links). */
  readonly slot: ExecutorSlot;
  private readonly t = new TaskTable();
  private readonly sources = new FunctionSources();
  private resetting = false;
  private closed = false;
  private avgMs: number | undefined;
  done = 0;

  constructor(private readonly opts: TaskRunnerOptions) {
    const limitMb = opts.maxMemoryMb;
    // Created before the first executor starts: it measures the supervisor alone.
    const memory =
      limitMb === undefined
        ? undefined
        : new MemoryWatch({ limitMb, rss: opts.rss, onOver: (mb) => this.overMemory(mb, limitMb) });
    this.slot = new ExecutorSlot({
      newExecutor:
        opts.newExecutor ??
        ((onMessage, onExit) => new ExecutorHost(opts.concurrency, opts.maxMemoryMb, opts, onMessage, onExit)),
      memory,
      onMessage: (m) => this.onExecutorMessage(m),
      onExit: (host, code) => this.executorExited(host, code),
      ...(opts.onShared ? { onShared: opts.onShared } : {}),
      ...(opts.onComm ? { onComm: opts.onComm } : {}),
      ...(opts.onCommLinks ? { onCommLinks: opts.onCommLinks } : {}),
      ...(opts.onExecClients ? { onExecClients: opts.onExecClients } : {}),
    });
  }

  /** The executor running now (replaced after a crash, a memory overrun or a task that would not stop). */
  private get executor(): ExecutorPort {
    return this.slot.current;
  }

  private overMemory(usedMb: number, limitMb: number): void {
    this.opts.logger.error({ usedMb, limitMb }, "executor over its memory limit; starting a new one");
    const error = memoryError(this.slot.engineId ?? "?", usedMb, limitMb);
    void this.reset(`the executor used ${usedMb} MB, over its limit of ${limitMb} MB`, () => error);
  }

  private executorExited(host: ExecutorPort, code: number): void {
    if (this.closed || this.resetting) return;
    const cause = { code, outOfMemory: host.outOfMemory, exitedBy: host.exitedBy, call: host.exitCall };
    this.opts.logger.error(cause, "executor thread exited; starting a new one");
    const engine = this.slot.engineId ?? "?";
    void this.reset(exitReason(cause), (id) => exitError(engine, id, cause, this.opts.maxMemoryMb));
  }

  /** Resolves once the first executor is ready (the engine waits for it); its memory is watched from then on. */
  whenReady(): Promise<void> {
    return this.slot.whenReady();
  }

  /** Tells the executor (and every later one) who it is. */
  setIdentity(engineId: number, host: string, uuid: string): void {
    this.slot.setIdentity(engineId, host, uuid);
  }

  /** Tasks queued or in the executor. */
  get load(): number {
    return this.t.tasks.size;
  }

  /** The state of a task (for tests and logs), or undefined once it is reported. */
  stateOf(id: number): TaskEntry["state"]["kind"] | undefined {
    return this.t.tasks.get(id)?.state.kind;
  }

  /** The tasks running now, as `[id, ms since it started]` (for the heartbeat: `ptcluster status` shows them). */
  running(now: number): Array<[number, number]> {
    if (this.t.inExecutor === 0) return [];
    this.reconcile();
    return this.t.running(now);
  }

  /** Drops the sources of functions no one will run again (the controller says so). */
  forgetFunctions(fns: readonly string[]): void {
    const drop = this.sources.forget(fns, this.executor.knownFns);
    if (drop.length) this.executor.post({ type: "forget", fns: drop });
  }

  enqueue(task: EngineTask, part: Part): void {
    this.sources.remember(task);
    const entry: TaskEntry = { task, part, state: { kind: "queued" } };
    this.t.tasks.set(task.id, entry);
    this.t.queue.push(entry);
    this.pump();
  }

  /**
   * A task the executor took from a client's own link and started at `started` (it says so in its
   * batched report): held as one posted and started here (cancels, heartbeats, the executor's loss).
   */
  adopt(task: EngineTask, started: number): void {
    if (this.t.tasks.has(task.id)) return;
    this.t.tasks.set(task.id, { task, part: EMPTY_PART, state: { kind: "posted", watch: undefined } });
    this.t.inExecutor++;
    this.onStarted(task.id, started);
  }

  /** Keeps the source a task brings, for the tasks that name its function only. */
  learn(task: EngineTask): void {
    this.sources.remember(task);
  }

  /** Tasks of clients' links to the executor that its start table shows running and this runner does not hold. */
  heldStarts(): Array<[number, number]> {
    return this.executor.runningNow().filter(([id]) => id >= EXEC_IDS && !this.t.tasks.has(id));
  }

  /** Such a task's result went to its client from the executor: nothing to report here. */
  forgetSent(id: number): void {
    const e = this.t.tasks.get(id);
    if (!e) return;
    this.t.finish(e);
    this.pump(); // a slot is free: what waits in the queue goes
  }

  /**
   * Gives back up to `max` load-balanced tasks that have not started, newest first (another
   * engine is idle): those queued here at once (returned), then, if that is not enough, those
   * posted ahead to the executor, once it has dropped them (`onReleased`).
   */
  release(max: number): number[] {
    const ids = this.t.takeMovable(max).map((e) => e.task.id);
    if (ids.length < max) {
      const asked = this.t.askMovable(max - ids.length);
      if (asked.length) this.executor.post({ type: "drop", ids: asked });
    }
    return ids;
  }

  /** Cancels tasks: queued ones at once, the others through the executor (dropped or aborted), then by force. */
  cancel(ids: readonly number[]): void {
    this.stop(ids, CANCELLED, "The task was cancelled.");
  }

  /** Cancels these tasks only if they have not started (their client is gone; running ones may finish). */
  cancelQueued(ids: readonly number[]): void {
    const queued = new Set<TaskEntry>();
    const asked: number[] = [];
    for (const id of ids) {
      const e = this.t.tasks.get(id);
      const s = e?.state;
      if (s?.kind === "queued") queued.add(e as TaskEntry);
      else if (s?.kind === "posted" || s?.kind === "releasing") {
        // Asked back, and if it comes back, reported as cancelled rather than handed back.
        if (s.kind === "posted") asked.push(id);
        (e as TaskEntry).state = { kind: "releasing", watch: s.watch, cancel: CLIENT_GONE };
      }
    }
    for (const e of this.t.unqueue(queued)) this.report(e.task.id, Date.now(), verdictError(CLIENT_GONE, false));
    if (asked.length) this.executor.post({ type: "drop", ids: asked });
  }

  /** Cancels everything queued or in the executor, tasks of its own links it has not reported too (the controller failed them). */
  cancelAll(): void {
    for (const [id, at] of this.heldStarts()) this.adopt({ id, op: "apply" }, at);
    this.cancel([...this.t.tasks.keys()]);
  }

  /**
   * Stops tasks with `verdict`: queued ones are reported at once; the executor drops those it has
   * not started and aborts the others' signal; one that does not stop costs its executor.
   */
  private stop(ids: readonly number[], verdict: Verdict, reason: string): void {
    const queued = new Set<TaskEntry>();
    const inExecutor: number[] = [];
    for (const id of ids) {
      const e = this.t.tasks.get(id);
      if (!e) continue;
      const s = e.state;
      if (s.kind === "queued") queued.add(e);
      else if (s.kind === "posted" || s.kind === "releasing" || s.kind === "running") {
        clearTimeout(s.kind === "running" ? s.timer : s.watch);
        const started = s.kind === "running" ? s.started : undefined;
        const killTimer = setTimeout(() => this.forceStop(id), this.opts.graceMs);
        e.state = { kind: "stopping", started, verdict, killTimer };
        inExecutor.push(id);
      }
    }
    for (const e of this.t.unqueue(queued)) this.report(e.task.id, Date.now(), verdictError(verdict, false));
    if (inExecutor.length) this.executor.post({ type: "drop", ids: inExecutor, abort: reason });
  }

  /** An `engine.comm` message for this engine's executor; the executor generation it went to. */
  commIn(msg: CommIn, parts: Part[]): number {
    return this.slot.commIn(msg, parts);
  }

  /** The controller answered a shared-state call: to the executor that made it, if it is still this one. */
  sharedReply(msg: SharedReplyMsg, parts: Part[]): void {
    this.slot.sharedReply(msg, parts);
  }

  /** Grace is over: a task that never started (behind one holding the thread) is reported, one that runs costs the executor. */
  private forceStop(id: number): void {
    this.reconcile();
    const e = this.t.tasks.get(id);
    if (e?.state.kind !== "stopping") return;
    // Not running, but in the journal: it ran, its report held behind a task that holds the
    // thread. Its verdict goes with that report, not as a task that never started.
    if (e.state.started === undefined && this.slot.currentJournal?.read().includes(id)) return;
    if (e.state.started === undefined) {
      const { verdict } = e.state;
      this.t.finish(e);
      this.report(id, Date.now(), verdictError(verdict, false));
      return;
    }
    void this.reset(`task ${id} did not stop within ${this.opts.graceMs} ms`);
  }

  /** Hands queued tasks to the executor while it has free slots (and a few more when tasks are quick). */
  private pump(): void {
    if (this.resetting || this.closed) return;
    const limit =
      this.opts.concurrency +
      (this.avgMs !== undefined && this.avgMs < QUICK_MS ? (this.opts.prefetch ?? PREFETCH) : 0);
    if (this.t.inExecutor >= limit || this.t.queue.length === 0) return;
    const batch: Array<{ task: EngineTask; part: Part }> = [];
    let e: TaskEntry | undefined;
    while (this.t.inExecutor < limit && (e = this.t.queue.shift()) !== undefined) {
      const { task, part } = e;
      if (!this.sources.prepare(task, this.executor.knownFns)) {
        this.t.tasks.delete(task.id);
        this.report(task.id, Date.now(), {
          code: "ERR_PTC_PROTOCOL",
          message: "The controller sent a function this engine has never seen.",
        });
        continue;
      }
      const ms = task.timeout;
      e.state = {
        kind: "posted",
        watch: ms === undefined ? undefined : setTimeout(() => this.watchStart(task.id, ms), ms),
      };
      this.t.inExecutor++;
      batch.push({ task, part });
    }
    if (batch.length > 0) this.executor.run(batch);
  }

  private onExecutorMessage(m: FromExecutor): void {
    if (m.type !== "report") return;
    for (const [id, at] of m.started) this.onStarted(id, at);
    this.onResults(m.results);
    this.onDropped(m.dropped);
    // Copies the executor had from the client's own link: that copy is the one that runs.
    for (const id of m.dups ?? []) this.forgetSent(id);
    this.pump();
  }

  /** Takes the starts the executor has not reported yet from its start table. */
  private reconcile(): void {
    for (const [id, at] of this.executor.runningNow()) this.onStarted(id, at);
  }

  /**
   * A task with a timeout has been posted for that long without a start report: if it started
   * (its report held back by a task that never yields), its clock runs from the table's time.
   */
  private watchStart(id: number, ms: number): void {
    this.reconcile();
    const e = this.t.tasks.get(id);
    if (e?.state.kind === "posted" || e?.state.kind === "releasing")
      e.state.watch = setTimeout(() => this.watchStart(id, ms), Math.min(ms, 100));
  }

  private onStarted(id: number, at: number): void {
    const e = this.t.tasks.get(id);
    if (e?.state.kind === "posted" || e?.state.kind === "releasing") {
      clearTimeout(e.state.watch);
      const ms = e.task.timeout;
      const timer =
        ms === undefined ? undefined : setTimeout(() => this.timeOut(id, ms), Math.max(0, at + ms - Date.now()));
      e.state = { kind: "running", started: at, timer };
    } else if (e?.state.kind === "stopping") e.state.started = at;
  }

  private timeOut(id: number, ms: number): void {
    const verdict = timedOut(ms);
    this.stop([id], verdict, verdict.message);
  }

  private onResults(items: ExecutorReport["results"]): void {
    for (const { result, data } of items) {
      const e = this.t.tasks.get(result.id);
      if (!e) continue;
      const s = e.state;
      this.t.finish(e);
      this.done++;
      const ms = result.completed - result.started;
      this.avgMs = this.avgMs === undefined ? ms : this.avgMs * 0.8 + ms * 0.2;
      if (s.kind === "stopping")
        this.report(result.id, s.started ?? result.started, verdictError(s.verdict, true), result);
      else {
        const [body, ...frames] = unpackFrames(data);
        this.opts.onResult(result, { body: body ?? Buffer.alloc(0), frames });
      }
    }
  }

  private onDropped(ids: readonly number[]): void {
    const released: number[] = [];
    for (const id of ids) {
      const e = this.t.tasks.get(id);
      const s = e?.state;
      if (!e || (s?.kind !== "stopping" && s?.kind !== "releasing")) continue;
      this.t.finish(e);
      if (s.kind === "stopping") this.report(id, Date.now(), verdictError(s.verdict, false));
      else if (s.cancel) this.report(id, Date.now(), verdictError(s.cancel, false));
      else released.push(id);
    }
    if (released.length) this.opts.onReleased(released);
  }

  private report(id: number, started: number, sysError: { code: string; message: string }, from?: TaskResult): void {
    this.opts.onResult(failedResult(id, this.slot.engineId ?? -1, started, sysError, from), EMPTY_PART);
  }

  /**
   * Replaces the executor. Tasks being stopped report their verdict; tasks it had not started go
   * back to the front of the queue; tasks running fail with `lost(id)` (why the executor went), or
   * an executor-reset error.
   */
  private async reset(reason: string, lost?: (id: number) => LossError): Promise<void> {
    if (this.resetting || this.closed) return;
    this.resetting = true;
    // Tasks whose start report the old executor still held count as started: never run twice.
    this.reconcile();
    // Settled before the old executor is gone: a cancel arriving meanwhile finds requeued tasks.
    const requeue: TaskEntry[] = [];
    for (const e of [...this.t.tasks.values()]) {
      const s = e.state;
      if (s.kind === "queued") continue;
      this.t.finish(e);
      if (s.kind === "stopping")
        this.report(e.task.id, s.started ?? Date.now(), verdictError(s.verdict, s.started !== undefined));
      else if (s.kind === "posted" || s.kind === "releasing") requeue.push(e);
      else this.report(e.task.id, s.started, lost?.(e.task.id) ?? REPLACED);
    }
    for (let i = requeue.length - 1; i >= 0; i--) {
      const e = requeue[i] as TaskEntry;
      e.state = { kind: "queued" };
      this.t.tasks.set(e.task.id, e);
      this.t.queue.unshift(e);
    }
    const { old, ended, journal } = this.slot.replace();
    await old.terminate().catch(() => undefined);
    // Read once it is gone (it starts its links' tasks until then): settled by the direct path, never run again.
    const drop = (ids: number[]) => this.t.drop(ids);
    const started = journal?.read();
    // Requeued tasks it had started (a report it held): they ran, and must not run twice.
    for (const e of this.t.unqueueStarted(requeue, started)) this.report(e.task.id, Date.now(), RAN_RESULT_LOST);
    const end = started && { started, running: old.runningNow(), lost: lost ?? (() => REPLACED), drop };
    if (end) this.opts.onExecutorEnd?.(end);
    this.opts.onReset(reason, ended);
    try {
      await this.slot.whenReady();
    } finally {
      this.resetting = false;
    }
    this.pump();
  }

  async terminate(): Promise<void> {
    this.closed = true;
    for (const e of [...this.t.tasks.values()]) this.t.finish(e);
    await this.slot.terminate();
  }
}
