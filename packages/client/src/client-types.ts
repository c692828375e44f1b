import type {
  AbortSummary,
  DropCounts,
  EngineInfo,
  FaultCounts,
  LinkReport,
  RunningTask,
  StageStats,
} from "@ptcluster/protocol";

// The shapes of what the client's calls take and report (`rc.status()`, `rc.queueStatus()`, …).

/** Something whose tasks can be cancelled: an `AsyncResult` or a map's result. */
export interface Abortable {
  abort(): void;
}

/**
 * Tasks of any client to cancel (`rc.abort({ … })`, `ptcluster abort`): by msg id (`ar.msgIds`,
 * `"<client id>:<n>"`), every task queued or running on some engines, or every task of every client.
 */
export interface AbortSelector {
  /** Msg ids of tasks, of this client or another (`ar.msgIds`). */
  tasks?: readonly string[];
  /** Every task queued or running on these engines. */
  engines?: readonly number[];
  /** Every task of every client, queued or running. */
  all?: boolean;
}

export type { AbortSummary };

/** Options of `rc.addEngines()`: the launcher and its settings. */
export interface AddEnginesOptions {
  /** `local`, `ssh`, `mpi` or `slurm` (default: the launcher the cluster started with). */
  launcher?: string;
  /** ms to wait for the new engines to register (default 60 s). */
  timeout?: number;
  /** Launcher settings, as `ptcluster start` takes them (`hosts: "b:4,c:4"` for ssh, …). */
  [option: string]: unknown;
}

/** What `rc.queueStatus()` reports. */
export interface QueueStatus {
  engines: Record<number, { queued: number; running: number; completed: number }>;
  /** Load-balanced tasks waiting for a free engine. */
  unassigned: number;
}

export type { DirectCounts, DropCounts, FaultCounts, LinkReport, RunningTask } from "@ptcluster/protocol";

/** What `rc.status()` reports. */
export interface ClusterStatus {
  pid: number;
  profile: string;
  clusterId: string;
  /**
   * Each engine, with its own view of its link (from its last heartbeat), the tasks running there
   * (as of its last heartbeat, a heartbeat period behind at most) and how many more wait there.
   */
  engines: Array<EngineInfo & { link?: LinkReport; current: RunningTask[]; queued: number }>;
  /** The controller's clock when it answered (ms since the epoch): running tasks' `since` counts from it. */
  time: number;
  clients: number;
  tasksInFlight: number;
  unassigned: number;
  /** Messages each controller socket refused, by reason. */
  dropped: { client: DropCounts; engine: DropCounts };
  /** Messages each controller socket received, sent, and sent again after a missing acknowledgement. */
  messages: { client: MessageCounts; engine: MessageCounts };
  /** Only while fault injection (`PTCLUSTER_TEST_FAULTS`) is on: what it did to the controller's sends. */
  faults?: { client: FaultCounts; engine: FaultCounts };
  /** The profile's log directory (engines' and launchers' logs) and the controller's own log file (on the controller's host). */
  log: { dir: string; file?: string };
  /**
   * Large messages the controller passed on fragment by fragment as they arrived (cut-through):
   * how many, fragments passed on before their message's last had arrived, streams aborted, open
   * now, and bytes held for task bodies not placed yet.
   */
  cutThrough?: { streams: number; forwardedEarly: number; aborted: number; open: number; heldBytes: number };
  /** The controller process's memory (bytes, as `process.memoryUsage()`). */
  memory: { rss: number; heapUsed: number; external: number; arrayBuffers: number };
  /**
   * Shared state (`rc.shared`): each object with its kind, size (entries, items, elements, holds,
   * parties), bytes stored and calls waiting on it; the bytes of all of them and the limit.
   */
  shared: {
    objects: Array<{ name: string; kind: string; size: number; bytes: number; waiting: number }>;
    bytes: number;
    maxBytes: number;
  };
  /** Pipelines running (`rc.pipeline`): their client's id (the first half of its msg ids), their number on its connection, their stages' figures. */
  pipelines: Array<{ client: string; pipe: number; stages: StageStats[] }>;
  /**
   * What the controller keeps on behalf of clients and engines: tasks in flight, results kept for
   * clients that went away (and their bytes), function sources, peers with delivery state. All of
   * it goes when they do, except `sessions`: every sender session seen, remembered (up to 65,536
   * per socket) so that their old messages cannot be replayed.
   */
  retained: {
    tasks: number;
    results: number;
    resultBytes: number;
    functions: number;
    clientLinks: number;
    engineLinks: number;
    sessions: number;
    sharedObjects: number;
    sharedBytes: number;
  };
}

export interface MessageCounts {
  received: number;
  sent: number;
  retransmitted: number;
}
