import type { EngineTask } from "@ptcluster/protocol";

/**
 * The sources of shipped functions, so each reaches an executor once: the controller sends a
 * source with a function's first task to this engine; every executor (a new one after a reset)
 * gets it with its own first task of that function, and later tasks name the function only.
 */
export class FunctionSources {
  private readonly sources = new Map<string, string>();

  /** Keeps the source a task brings. */
  remember(task: EngineTask): void {
    if (task.fn && task.src !== undefined) this.sources.set(task.fn, task.src);
  }

  /**
   * Sets or strips `task.src` for an executor that has compiled the functions in `known`;
   * false when the source was never seen (the task cannot run).
   */
  prepare(task: EngineTask, known: Set<string>): boolean {
    if (!task.fn) return true;
    if (known.has(task.fn)) {
      delete task.src;
      return true;
    }
    const src = task.src ?? this.sources.get(task.fn);
    if (src === undefined) return false;
    task.src = src;
    known.add(task.fn);
    return true;
  }

  /** Forgets these functions; returns those the executor (`known`) must drop too. */
  forget(fns: readonly string[], known: Set<string>): string[] {
    const drop: string[] = [];
    for (const fn of fns) {
      this.sources.delete(fn);
      if (known.delete(fn)) drop.push(fn);
    }
    return drop;
  }
}
