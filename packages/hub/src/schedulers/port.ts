/**
 * The schedulers' boundary: the controller tells them what happened (events in) and applies
 * what they decide (decisions out). Both are plain data, so a scheduler needs no sockets, timers
 * or task bodies, is unit-tested without processes, and could move to a worker thread.
 *
 * Tasks and engines are named by controller ids. A scheduler keeps its own view of where each
 * task is and how loaded each engine is, built from these events alone.
 */

/** What became of a task on its engine, as far as retrying it is concerned. */
export type TaskOutcome =
  /** It succeeded. */
  | "ok"
  /** The task's own code threw: it may be retried (`retries`). */
  | "error"
  /** It went down with its executor or engine: it may run elsewhere, within its death budget (`maxDeaths`). */
  | "lost"
  /** The system failed it (timeout, cancellation, a resource limit): final. */
  | "system";

export type SchedulerEvent =
  | { readonly type: "engine_up"; readonly engine: number; readonly concurrency: number }
  /**
   * An engine is gone. `crashed`: its process died of a native crash (a fatal signal such as
   * SIGSEGV, seen by its local launcher), which the task it was running caused, not the world.
   */
  | { readonly type: "engine_down"; readonly engine: number; readonly crashed?: string }
  /**
   * A direct task for one engine. `gone`: that engine is no more, and was registered when the
   * client sent the task (`ClientTask.k`; a task sent straight to its engine always has it).
   */
  | { readonly type: "submit_direct"; readonly task: number; readonly engine: number; readonly gone?: boolean }
  /** A load-balanced task; `targets`: the engines it may run on (none: any). */
  | {
      readonly type: "submit_lb";
      readonly task: number;
      readonly targets: readonly number[] | undefined;
      readonly retries: number;
      readonly maxDeaths: number;
    }
  /** An engine reported results for these tasks (each one on that engine). */
  | {
      readonly type: "finished";
      readonly engine: number;
      readonly results: ReadonlyArray<{ readonly task: number; readonly outcome: TaskOutcome }>;
    }
  /** An engine handed back tasks it had not started (answering `release`; possibly none). */
  | { readonly type: "released"; readonly engine: number; readonly tasks: readonly number[] }
  /** Cancel these tasks; with `queuedOnly`, only those that have not started (a client went away). */
  | { readonly type: "cancel"; readonly tasks: readonly number[]; readonly queuedOnly: boolean }
  /** The controller failed a dispatched task itself (it could not send it): forget it. */
  | { readonly type: "abandoned"; readonly task: number }
  /** The wake-up asked for by a `wake` decision: place what can be placed. */
  | { readonly type: "place" };

export type SchedulerDecision =
  /** Send the task to the engine (`movable`: a load-balanced task the engine may hand back). */
  | { readonly type: "dispatch"; readonly task: number; readonly engine: number; readonly movable: boolean }
  /** Ask the engine to hand back up to `max` tasks it has not started. */
  | { readonly type: "release"; readonly engine: number; readonly max: number }
  /** The task is back in the queue (`unstarted`: handed back, so that attempt does not count). */
  | { readonly type: "requeue"; readonly task: number; readonly unstarted: boolean }
  /** Report the engine's result as it is. */
  | { readonly type: "complete"; readonly task: number }
  /** Fail the task with this error, reported as from `engine` (-1: none). */
  | {
      readonly type: "fail";
      readonly task: number;
      readonly engine: number;
      readonly code: string;
      readonly message: string;
    }
  /** The task is cancelled (out of the queue, or confirmed gone from `engine`). */
  | {
      readonly type: "cancelled";
      readonly task: number;
      readonly engine: number;
      readonly message: string;
      readonly unstarted: boolean;
    }
  /** Ask the engine to cancel these tasks (`queuedOnly`: only those it has not started). */
  | {
      readonly type: "cancel_on_engine";
      readonly engine: number;
      readonly tasks: readonly number[];
      readonly queuedOnly: boolean;
    }
  /** Send a `place` event soon (after the current turn of the event loop): asked once however many events want it. */
  | { readonly type: "wake" };

/** A scheduler: every event is answered at once with the decisions it leads to, in order. */
export interface SchedulerPort {
  handle(event: SchedulerEvent): SchedulerDecision[];
  /** Load-balanced tasks waiting for an engine (for `rc.status()` and `queue_status`). */
  readonly queued: number;
}
