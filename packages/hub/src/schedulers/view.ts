import type { RetryBudget } from "./retry-policy.js";

/** An engine as the schedulers see it: its capacity and the tasks they placed there. */
export interface EngineLoad {
  readonly id: number;
  readonly concurrency: number;
  /** Tasks placed there and not yet finished or handed back, in placement order. */
  readonly tasks: Set<number>;
  /** Placement clock of the last task placed here (least recently used first). */
  lastAssigned: number;
  /** A `release` was asked and not yet answered. */
  releasePending: boolean;
}

/** A task as the schedulers see it. */
export interface Placement {
  readonly task: number;
  /** The engine holding it; -1 while queued. */
  engine: number;
  /** Its client cancelled it: never placed again, and it fails as cancelled if it comes back. */
  cancelRequested: boolean;
  /** Load-balanced tasks only: where they may run and what failures they may survive. */
  readonly lb: { readonly targets: ReadonlySet<number> | undefined; readonly budget: RetryBudget } | undefined;
}

/**
 * The schedulers' own view of engines and tasks, kept from the port's events alone (the
 * controller's records are not shared: a scheduler could run elsewhere).
 */
export class SchedulerView {
  readonly engines = new Map<number, EngineLoad>();
  readonly placements = new Map<number, Placement>();
  private clock = 0;

  /** Engine ids, ascending (for error messages). */
  engineIds(): number[] {
    return [...this.engines.keys()].sort((a, b) => a - b);
  }

  /** Places a task on an engine. */
  place(p: Placement, e: EngineLoad): void {
    p.engine = e.id;
    e.tasks.add(p.task);
    e.lastAssigned = ++this.clock;
  }

  /** Takes a task off its engine (finished, handed back, or the engine died); it stays known. */
  unplace(p: Placement): void {
    this.engines.get(p.engine)?.tasks.delete(p.task);
    p.engine = -1;
  }

  /** Forgets a task for good (finished, failed or cancelled). */
  drop(p: Placement): void {
    if (p.engine >= 0) this.engines.get(p.engine)?.tasks.delete(p.task);
    this.placements.delete(p.task);
  }
}
