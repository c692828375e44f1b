import { Deque } from "@ptcluster/protocol";
import type { TaskEntry } from "./task-state.js";

/**
 * The tasks an engine holds (`TaskRunner`'s bookkeeping, apart from what it does with the
 * executor): the queue of those not handed to the executor, every task by id, and how many are in
 * the executor. Timers of a task's state are cleared here when it leaves.
 */
export class TaskTable {
  /** Tasks in state `queued`, in order. */
  readonly queue = new Deque<TaskEntry>();
  /** Every task this engine holds, in any state. */
  readonly tasks = new Map<number, TaskEntry>();
  /** Tasks handed to the executor and not finished (any state but `queued`). */
  inExecutor = 0;

  /** Removes these entries from the queue (and from the table); returns them in queue order. */
  unqueue(which: ReadonlySet<TaskEntry>): TaskEntry[] {
    if (which.size === 0) return [];
    const out = this.queue.removeWhere((e) => which.has(e));
    for (const e of out) this.tasks.delete(e.task.id);
    return out;
  }

  /** Takes out of the queue (and the table) those of `entries` that `started` (a journal's ids) names. */
  unqueueStarted(entries: readonly TaskEntry[], started: readonly number[] | undefined): TaskEntry[] {
    if (!started || entries.length === 0) return [];
    const ids = new Set(started);
    return this.unqueue(new Set(entries.filter((e) => ids.has(e.task.id))));
  }

  /** Takes these tasks out of the queue (and the table), unreported. */
  drop(ids: readonly number[]): void {
    const which = new Set(ids);
    this.unqueue(new Set([...this.queue].filter((e) => which.has(e.task.id))));
  }

  /** Forgets a task that has left the executor (finished, dropped, or its executor replaced). */
  finish(e: TaskEntry): void {
    const s = e.state;
    if (s.kind === "running") clearTimeout(s.timer);
    else if (s.kind === "stopping") clearTimeout(s.killTimer);
    else if (s.kind !== "queued") clearTimeout(s.watch);
    if (s.kind !== "queued") this.inExecutor--;
    this.tasks.delete(e.task.id);
  }

  /** Up to `max` movable tasks still queued, newest first, taken out of the table (`release`). */
  takeMovable(max: number): TaskEntry[] {
    const movable: TaskEntry[] = [];
    for (const e of this.queue) if (e.task.movable) movable.push(e);
    return this.unqueue(new Set(movable.slice(Math.max(0, movable.length - max))));
  }

  /** Up to `max` movable tasks posted ahead to the executor (newest), now `releasing`: their ids. */
  askMovable(max: number): number[] {
    const asked: number[] = [];
    for (const e of this.tasks.values()) if (e.state.kind === "posted" && e.task.movable) asked.push(e.task.id);
    asked.splice(0, Math.max(0, asked.length - max));
    for (const id of asked) {
      const e = this.tasks.get(id) as TaskEntry;
      if (e.state.kind === "posted") e.state = { kind: "releasing", watch: e.state.watch };
    }
    return asked;
  }

  /** The tasks running now, as `[id, ms since it started]`. */
  running(now: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const { task, state } of this.tasks.values()) {
      if (state.kind === "running" || (state.kind === "stopping" && state.started !== undefined))
        out.push([task.id, now - (state.started as number)]);
    }
    return out;
  }
}
