import {
  EngineLostError,
  TaskCancelledError,
  TaskCrashedError,
  assertNever,
  type SchedulerScheme,
} from "@ptcluster/protocol";
import { submitDirect } from "./direct.js";
import { LoadBalancedScheduler } from "./load-balanced.js";
import type { SchedulerDecision, SchedulerEvent, SchedulerPort } from "./port.js";
import { crashMessage, poisonMessage, retryAfterError, survivesDeath } from "./retry-policy.js";
import { SchedulerView, type EngineLoad } from "./view.js";

const DIED_BEFORE_CONFIRMING = new TaskCancelledError("The task was cancelled; its engine died before confirming.")
  .message;

/**
 * The controller's schedulers behind one port: direct tasks and load-balanced ones share the
 * engines (a direct task takes a slot the load balancer sees), so they share one view.
 */
export class Scheduler implements SchedulerPort {
  private readonly view = new SchedulerView();
  private readonly lb: LoadBalancedScheduler;

  /** `random` drives the `random` and `weighted` schemes (tests make it repeatable). */
  constructor(scheme: SchedulerScheme, random?: () => number) {
    this.lb = new LoadBalancedScheduler(scheme, this.view, random);
  }

  get queued(): number {
    return this.lb.queued;
  }

  /** Tasks the schedulers know (queued or on an engine). */
  get size(): number {
    return this.view.placements.size;
  }

  handle(ev: SchedulerEvent): SchedulerDecision[] {
    const out: SchedulerDecision[] = [];
    switch (ev.type) {
      case "engine_up":
        this.view.engines.set(ev.engine, {
          id: ev.engine,
          concurrency: ev.concurrency,
          tasks: new Set(),
          lastAssigned: 0,
          releasePending: false,
        });
        this.lb.wake(out);
        break;
      case "engine_down": {
        const e = this.view.engines.get(ev.engine);
        if (e) this.engineDown(e, ev.crashed, out);
        break;
      }
      case "submit_direct":
        submitDirect(this.view, ev.task, ev.engine, ev.gone === true, out);
        break;
      case "submit_lb":
        this.lb.submit(ev.task, ev.targets, ev.retries, ev.maxDeaths, out);
        break;
      case "finished":
        // One decision per result, in order (the controller pairs them up), then maybe a wake-up.
        for (const { task, outcome } of ev.results) {
          const p = this.view.placements.get(task);
          if (p) this.lb.finished(p, ev.engine, outcome, out);
          else out.push({ type: "complete", task });
        }
        this.lb.wake(out);
        break;
      case "released": {
        const e = this.view.engines.get(ev.engine);
        if (e) this.lb.released(e, ev.tasks, out);
        break;
      }
      case "cancel":
        this.cancel(ev.tasks, ev.queuedOnly, out);
        break;
      case "abandoned": {
        const p = this.view.placements.get(ev.task);
        if (p) this.view.drop(p);
        break;
      }
      case "place":
        this.lb.place(out);
        break;
      default:
        assertNever(ev, "scheduler event");
    }
    return out;
  }

  /**
   * An engine is gone: its load-balanced tasks go back to the queue within their death budget;
   * the others fail (cancelled, poison, or lost with their engine). After a native crash
   * (`crashed`: the signal), the tasks it was running (its first `concurrency` tasks, which it
   * runs in order) fail with `TaskCrashedError` like their own error (retried only if they ask),
   * and the others move on without counting a death: they did not cause it.
   */
  private engineDown(e: EngineLoad, crashed: string | undefined, out: SchedulerDecision[]): void {
    // Out of the view first: the tasks leave it without changing the set being walked.
    this.view.engines.delete(e.id);
    let requeued = false;
    let position = 0;
    for (const task of e.tasks) {
      const p = this.view.placements.get(task);
      if (!p) continue;
      const ran = position++ < e.concurrency;
      if (crashed !== undefined && !p.cancelRequested) {
        if (!ran && p.lb) {
          this.lb.requeue(p, true, out);
          requeued = true;
          continue;
        }
        if (ran) {
          if (p.lb && retryAfterError(p.lb.budget, e.id, false)) {
            this.lb.requeue(p, false, out);
            requeued = true;
            continue;
          }
          this.view.drop(p);
          const err = new TaskCrashedError(e.id, crashMessage(e.id, crashed));
          out.push({ type: "fail", task, engine: e.id, code: err.code, message: err.message });
          continue;
        }
      }
      if (p.lb && survivesDeath(p.lb.budget, p.cancelRequested)) {
        this.lb.requeue(p, false, out);
        requeued = true;
        continue;
      }
      this.view.drop(p);
      if (p.cancelRequested)
        out.push({ type: "cancelled", task, engine: e.id, message: DIED_BEFORE_CONFIRMING, unstarted: false });
      else {
        const err = p.lb ? new EngineLostError(e.id, poisonMessage(p.lb.budget, e.id)) : new EngineLostError(e.id);
        out.push({ type: "fail", task, engine: e.id, code: err.code, message: err.message });
      }
    }
    e.tasks.clear();
    // Queued tasks may have waited for this engine (a retry avoiding the others): place them anew.
    if (requeued || this.lb.queued > 0) this.lb.wake(out);
  }

  /** Queued tasks are cancelled at once; engines are asked to cancel the others. */
  private cancel(tasks: readonly number[], queuedOnly: boolean, out: SchedulerDecision[]): void {
    const ids = new Set(tasks);
    this.lb.cancelQueued(ids, out);
    const perEngine = new Map<number, number[]>();
    for (const id of ids) {
      const p = this.view.placements.get(id);
      if (!p || p.engine < 0) continue;
      // The engine may hand it back (a release crossing this cancel) instead of reporting it:
      // then it fails as cancelled rather than running elsewhere.
      if (!queuedOnly) p.cancelRequested = true;
      let list = perEngine.get(p.engine);
      if (!list) perEngine.set(p.engine, (list = []));
      list.push(id);
    }
    for (const [engine, list] of perEngine) out.push({ type: "cancel_on_engine", engine, tasks: list, queuedOnly });
  }
}
