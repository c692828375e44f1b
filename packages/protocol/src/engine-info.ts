/** What an engine tells the world about itself. */
export interface EngineInfo {
  id: number;
  uuid: string;
  host: string;
  pid: number;
  concurrency: number;
  state: EngineState;
  tasksDone: number;
  running: number;
  registeredAt: number;
  /** Set by the launcher that started the engine (`ptcluster start`, `ptcluster engines`): which launch it belongs to. */
  tag?: string;
  /** Rank and size of the MPI job the engine runs in (engines started under `mpiexec`). */
  mpi?: MpiPlace;
  /** On the controller's host: large values reach it as shared-memory files. */
  shm?: boolean;
  /** Its peer endpoint (`host:port`): clients send DirectView tasks there (absent: through the controller only). */
  peer?: string;
  /** Its endpoint for clients' lean direct links (`host:port`): preferred to `peer` by clients that can use it. */
  lean?: string;
}
/** An engine's place in an MPI job. */
export interface MpiPlace {
  rank: number;
  size: number;
}
export type EngineState = "idle" | "busy" | "dead";

/** A task running on an engine, as `rc.status()` reports it. */
export interface RunningTask {
  /** The task's id as its client knows it (`"<client id>:<n>"`, as in `ar.msgIds`). */
  taskId: string;
  /** The function's name (`anonymous` when it has none), or the op for execute, push and pull. */
  fn: string;
  op: TaskOp;
  /** When it started, by the controller's clock (ms since the epoch). */
  since: number;
}

/** Built-in operations an engine performs. */
export type TaskOp = "apply" | "map" | "execute" | "push" | "pull" | "stage";
