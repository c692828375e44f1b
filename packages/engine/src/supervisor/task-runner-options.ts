import type { Logger, Part, ShmConfig, SharedCallMsg, SharedWithdrawMsg, TaskResult } from "@ptcluster/protocol";
import type { NewExecutor } from "./executor-host.js";
import type { CommOutMsg } from "./comm-transport.js";
import type { CommLinksMsg, ExecClientsMsg } from "./executor-slot.js";
import type { LossError } from "./executor-loss.js";

/**
 * What an executor that ended leaves of the tasks it took from clients' own links: the ids its
 * journal shows started, those its start table shows running then (`[id, started]`), the error a
 * running task gets (as one the runner held), and how to drop the runner's copy of one.
 */
export interface ExecutorEnd {
  started: number[];
  running: Array<[number, number]>;
  lost(id: number): LossError;
  /** Takes these runner ids out of the queue, unreported (a copy resent on the lean link of a task that ran there). */
  drop(ids: number[]): void;
}

/** What the engine gives its `TaskRunner`: limits, and where results, resets and relayed calls go. */
export interface TaskRunnerOptions {
  concurrency: number;
  /** Memory limit of the executor (MB), heap and off-heap (`MemoryWatch`): a task over it fails, the engine lives on. */
  maxMemoryMb?: number | undefined;
  /** How the memory watch reads the process's resident memory (tests pass their own). */
  rss?: () => number;
  /** Largest result the cluster accepts (bytes). */
  maxResultBytes: number;
  /** On the controller's host: the executor reads and writes large values as shared-memory files. */
  shm?: ShmConfig | undefined;
  /** How long a timed-out or cancelled task may take to stop on its own before the executor is replaced (ms). */
  graceMs: number;
  logger: Logger;
  onResult(result: TaskResult, part: Part): void;
  /** The executor was replaced: the namespace is empty again; `gen` is the generation that ended. */
  onReset(reason: string, gen: number): void;
  /** A shared-state call of the executor of generation `gen`, to relay to the controller. */
  onShared?(msg: SharedCallMsg | SharedWithdrawMsg, parts: Part[], gen: number): void;
  /** An `engine.comm` message of the executor, for the engine's `CommTransport`. */
  onComm?(msg: CommOutMsg, parts: Part[], relay: boolean): void;
  /** What the executor of generation `gen` says of its own `engine.comm` links. */
  onCommLinks?(m: CommLinksMsg, gen: number): void;
  /** What the current executor says of clients' links it owns. */
  onExecClients?(m: ExecClientsMsg): void;
  /** An executor that owned clients' links ended (before `onReset`): no task it started runs again. */
  onExecutorEnd?(end: ExecutorEnd): void;
  /** Tasks the executor gave back unstarted, after `release` asked for more than the queue held. */
  onReleased(ids: number[]): void;
  /** Tasks posted ahead to the executor while tasks are quick (default `PREFETCH`). */
  prefetch?: number;
  /** Starts an executor (default: a worker thread); tests pass a fake one. */
  newExecutor?: NewExecutor;
}
