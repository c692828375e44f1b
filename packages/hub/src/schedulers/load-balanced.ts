import { Deque, TaskCancelledError, type SchedulerScheme } from "@ptcluster/protocol";
import type { SchedulerDecision, TaskOutcome } from "./port.js";
import { avoidFailed, retryAfterError, retryBudget, survivesDeath } from "./retry-policy.js";
import { picker, type Picker } from "./schemes.js";
import type { EngineLoad, Placement, SchedulerView } from "./view.js";

/** How many not-yet-started tasks an engine may hold beyond its concurrency, at most, when work is waiting. */
const MAX_PREFETCH = 64;

const NOT_STARTED = new TaskCancelledError("The task was cancelled before it started.").message;

/**
 * The load-balanced scheduler: a queue of tasks and a policy that places them on engines with a
 * free slot (an engine's capacity is its concurrency). When work is waiting it lets engines take a
 * few tasks ahead (so tiny tasks are not paced by round trips), and when an engine falls idle with
 * nothing queued it takes back tasks another engine has not started yet, so no task waits behind a
 * busy engine while another is idle.
 */
export class LoadBalancedScheduler {
  private readonly queue = new Deque<Placement>();
  private readonly pick: Picker;
  private wakePending = false;

  constructor(
    scheme: SchedulerScheme,
    private readonly view: SchedulerView,
    random?: () => number,
  ) {
    this.pick = picker(scheme, random);
  }

  get queued(): number {
    return this.queue.length;
  }

  submit(
    task: number,
    targets: readonly number[] | undefined,
    retries: number,
    maxDeaths: number,
    out: SchedulerDecision[],
  ): void {
    const p: Placement = {
      task,
      engine: -1,
      cancelRequested: false,
      lb: { targets: targets ? new Set(targets) : undefined, budget: retryBudget(retries, maxDeaths) },
    };
    this.view.placements.set(task, p);
    this.queue.push(p);
    this.wake(out);
  }

  /** Back at the front of the queue (moved off a dead engine, handed back, or retried); the caller wakes. */
  requeue(p: Placement, unstarted: boolean, out: SchedulerDecision[]): void {
    this.view.unplace(p);
    this.queue.unshift(p);
    out.push({ type: "requeue", task: p.task, unstarted });
  }

  /** Its engine reported a result: report it, or run the task again within its budget. */
  finished(p: Placement, engine: number, outcome: TaskOutcome, out: SchedulerDecision[]): void {
    const budget = p.lb?.budget;
    const again =
      budget !== undefined &&
      (outcome === "lost"
        ? survivesDeath(budget, p.cancelRequested)
        : outcome === "error" && retryAfterError(budget, engine, p.cancelRequested));
    if (again) this.requeue(p, false, out);
    else {
      this.view.drop(p);
      out.push({ type: "complete", task: p.task });
    }
  }

  /** An engine handed back tasks it had not started. */
  released(engine: EngineLoad, tasks: readonly number[], out: SchedulerDecision[]): void {
    engine.releasePending = false;
    // Nothing to give back: no reason to place again until something changes (no release ping-pong).
    if (tasks.length === 0) return;
    for (const id of tasks) {
      const p = this.view.placements.get(id);
      if (!p?.lb || p.engine !== engine.id) continue;
      if (p.cancelRequested) {
        this.view.drop(p);
        out.push({ type: "cancelled", task: id, engine: engine.id, message: NOT_STARTED, unstarted: true });
      } else this.requeue(p, true, out);
    }
    this.wake(out);
  }

  /** Cancels the queued tasks among `ids`. */
  cancelQueued(ids: ReadonlySet<number>, out: SchedulerDecision[]): void {
    for (const p of this.queue.removeWhere((q) => ids.has(q.task))) {
      this.view.drop(p);
      out.push({ type: "cancelled", task: p.task, engine: -1, message: NOT_STARTED, unstarted: false });
    }
  }

  /** Asks for one `place` event, however many events want one before it comes. */
  wake(out: SchedulerDecision[]): void {
    if (this.wakePending) return;
    this.wakePending = true;
    out.push({ type: "wake" });
  }

  /** Places what it can. */
  place(out: SchedulerDecision[]): void {
    this.wakePending = false;
    const all = [...this.view.engines.values()];
    if (all.length === 0) return;
    const slots = all.reduce((n, e) => n + Math.max(0, e.concurrency - e.tasks.size), 0);
    const prefetch = this.queue.length > slots ? Math.min(MAX_PREFETCH, Math.ceil(this.queue.length / all.length)) : 0;
    const limit = (e: EngineLoad) => e.concurrency + prefetch;
    const skipped: Placement[] = [];
    let p: Placement | undefined;
    while ((p = this.queue.shift()) !== undefined) {
      const targets = p.lb?.targets;
      const eligible = targets ? all.filter((e) => targets.has(e.id)) : all;
      const candidates = avoidFailed(
        eligible.filter((e) => e.tasks.size < limit(e)),
        eligible,
        p.lb?.budget,
      );
      if (candidates.length === 0) {
        skipped.push(p);
        // Nothing has room: stop when no engine at all has room (targets cannot help then).
        if (!all.some((e) => e.tasks.size < limit(e))) break;
        continue;
      }
      const engine = this.pick(candidates);
      this.view.place(p, engine);
      out.push({ type: "dispatch", task: p.task, engine: engine.id, movable: true });
    }
    for (let i = skipped.length - 1; i >= 0; i--) this.queue.unshift(skipped[i] as Placement);
    if (this.queue.length === 0) this.rebalance(all, out);
  }

  /** An engine with a free slot and nothing queued here: take back tasks others have not started. */
  private rebalance(all: EngineLoad[], out: SchedulerDecision[]): void {
    const idle = all.filter((e) => e.tasks.size < e.concurrency);
    if (idle.length === 0) return;
    const free = idle.reduce((n, e) => n + e.concurrency - e.tasks.size, 0);
    for (const e of all) {
      const extra = e.tasks.size - e.concurrency;
      if (extra > 0 && !e.releasePending) {
        e.releasePending = true;
        out.push({ type: "release", engine: e.id, max: Math.min(extra, free) });
      }
    }
  }
}
