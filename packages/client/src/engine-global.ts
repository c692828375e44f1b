import type { EngineComm, SharedNamespace } from "@ptcluster/protocol";

/** What shipped code sees as the global `engine` while it runs on an engine. */
export interface EngineGlobal {
  /** This engine's id (as in `rc.ids`). */
  readonly id: number;
  /** Host name of the machine the engine runs on. */
  readonly host: string;
  /** Process id of the engine. */
  readonly pid: number;
  readonly uuid: string;
  /** Rank and size of the MPI job the engine runs in (`--engines mpi`); undefined otherwise. */
  readonly mpi: { readonly rank: number; readonly size: number } | undefined;
  /** Cancellation signal of the task running now (per task, even with concurrency above 1). */
  readonly signal: AbortSignal | undefined;
  /**
   * In a task of a DirectView call (`apply`, `applySync`, `execute`, `map`): the call's group, this
   * engine's `rank` in the view's targets and messages between them (docs/comm-transport.md).
   * Undefined in load-balanced tasks (typed as present, like `engine` itself, for the code that uses it).
   */
  readonly comm: EngineComm;
  /** Named objects held by the controller, the same as the client's `rc.shared`. */
  readonly shared: SharedNamespace;
}

declare global {
  /** Defined inside shipped code on an engine; undefined in the client. */
  var engine: EngineGlobal;
}
