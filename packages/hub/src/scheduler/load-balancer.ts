import type { SchedulerScheme } from "@ptcluster/protocol";
import type { EngineEntry, EngineRegistry } from "../registry/engine-registry.js";
import type { TaskRecord } from "./task-table.js";
import { Deque } from "@ptcluster/protocol";
import { picker, type Picker } from "./schemes.js";

/** How many not-yet-started tasks an engine may hold beyond its concurrency, at most, when work is waiting. */
const MAX_PREFETCH = 64;

export interface LoadBalancerHooks {
  /** Send this task to this engine (the record's engine is already set). */
  dispatch(engine: EngineEntry, rec: TaskRecord): void;
  /** Ask this engine to hand back up to `max` queued tasks it has not started. */
  release(engine: EngineEntry, max: number): void;
}

/**
 * The load-balanced scheduler: a queue of tasks and a policy that places them on engines with a
 * free slot (an engine's capacity is its concurrency). When work is waiting it lets engines take a
 * few tasks ahead (so tiny tasks are not paced by round trips), and when an engine falls idle with
 * nothing queued it takes back tasks another engine has not started yet, so no task waits behind a
 * busy engine while another is idle.
 */
export class LoadBalancer {
  private readonly queue = new Deque<TaskRecord>();
  private readonly pick: Picker;
  private scheduled = false;

  constructor(scheme: SchedulerScheme, private readonly engines: EngineRegistry, private readonly hooks: LoadBalancerHooks) {
    this.pick = picker(scheme);
  }

  get queued(): number {
    return this.queue.length;
  }

  submit(rec: TaskRecord): void {
    rec.engine = -1;
    this.queue.push(rec);
    this.schedule();
  }

  /** Back at the front of the queue (moved off a dead engine, released, or retried). */
  requeue(rec: TaskRecord): void {
    rec.engine = -1;
    this.queue.unshift(rec);
    this.schedule();
  }

  /** Removes queued tasks matching `pred` and returns them. */
  remove(pred: (rec: TaskRecord) => boolean): TaskRecord[] {
    return this.queue.removeWhere(pred);
  }

  /** Places what it can, once per tick however many events asked for it. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.place();
    });
  }

  private place(): void {
    const all = [...this.engines.all()].filter((e) => e.info.state !== "dead");
    if (all.length === 0) return;
    const slots = all.reduce((n, e) => n + Math.max(0, e.info.concurrency - e.inflight.size), 0);
    const prefetch = this.queue.length > slots ? Math.min(MAX_PREFETCH, Math.ceil(this.queue.length / all.length)) : 0;
    const limit = (e: EngineEntry) => e.info.concurrency + prefetch;
    const skipped: TaskRecord[] = [];
    let rec: TaskRecord | undefined;
    while ((rec = this.queue.shift()) !== undefined) {
      const r = rec;
      const lb = r.lb;
      let candidates = all.filter((e) => e.inflight.size < limit(e) && (!lb?.targets || lb.targets.has(e.info.id)));
      if (lb?.failedOn && candidates.some((e) => !lb.failedOn?.has(e.info.id))) candidates = candidates.filter((e) => !lb.failedOn?.has(e.info.id));
      if (candidates.length === 0) {
        skipped.push(r);
        // Nothing has room: stop when no engine at all has room (targets cannot help then).
        if (!all.some((e) => e.inflight.size < limit(e))) break;
        continue;
      }
      const engine = this.pick(candidates);
      engine.lastAssigned = ++this.clock;
      r.engine = engine.info.id;
      this.hooks.dispatch(engine, r);
    }
    for (let i = skipped.length - 1; i >= 0; i--) this.queue.unshift(skipped[i] as TaskRecord);
    if (this.queue.length === 0) this.rebalance(all);
  }

  private clock = 0;

  /** An engine with a free slot and nothing queued here: take back tasks others have not started. */
  private rebalance(all: EngineEntry[]): void {
    const idle = all.filter((e) => e.inflight.size < e.info.concurrency);
    if (idle.length === 0) return;
    const free = idle.reduce((n, e) => n + e.info.concurrency - e.inflight.size, 0);
    for (const e of all) {
      const extra = e.inflight.size - e.info.concurrency;
      if (extra > 0 && !e.releasePending) {
        e.releasePending = true;
        this.hooks.release(e, Math.min(extra, free));
      }
    }
  }
}
