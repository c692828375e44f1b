import type {
  CommAbortMsg,
  CommMsg,
  EngineTask,
  PeerStateMsg,
  ShmConfig,
  SharedCallMsg,
  SharedReplyMsg,
  SharedWithdrawMsg,
  TaskResult,
} from "@ptcluster/protocol";
import type { PackedParts } from "../shared/part-bytes.js";
import type { Packed } from "../shared/transfer.js";

/**
 * Ids this executor gives the tasks that come on its own client links: `ID_BASE + link *
 * LINK_SPAN + the client's task id`, above those of the supervisor (the controller's count from 1,
 * the supervisor's direct ones from 2^40), exact in a float64. Link numbers are apart per executor
 * generation, so a replaced executor's ids are not reused, and the supervisor, told each link's
 * client once (`client_link`), knows a task's key from its id alone: from the start table, when a
 * task holds this thread before any report could go.
 */
export const ID_BASE = 2 ** 52;
export const LINK_SPAN = 2 ** 32;

/** Supervisor → executor thread. */
export type ToExecutor =
  | { type: "init"; engineId: number; host: string; uuid: string }
  /**
   * Tasks to run, in order, at most `concurrency` at once (from `workerData`). The supervisor posts
   * no more than it has free slots for (plus a small prefetch when tasks are quick).
   */
  | { type: "tasks"; items: Array<{ task: EngineTask; data: Packed }> }
  /**
   * Drop these tasks if they have not started (reported as `dropped`: cancelled, or given back for
   * another engine); with `abort`, abort the `engine.signal` of those running, with that reason.
   * Ids the executor no longer holds (finished, result on its way) are ignored.
   */
  | { type: "drop"; ids: number[]; abort?: string }
  /** Drop the sources and compiled code of these functions (no one will run them again). */
  | { type: "forget"; fns: string[] }
  /** The controller's answer to a shared-state call of this executor. */
  | { type: "shared_reply"; msg: SharedReplyMsg; data: PackedParts }
  /** An `engine.comm` message relayed to this engine, a group's abort, or an engine gone or back. */
  | { type: "comm_in"; msg: CommMsg | CommAbortMsg | PeerStateMsg; data: Packed | undefined }
  /** Executor links are on (not with CURVE or `PTCLUSTER_COMM_PATH=relay`): bind an endpoint, dial peers. */
  | { type: "comm_setup"; setup: CommSetup }
  /** The answer to `comm_route`: engine `id`'s executor endpoint, or none (send through the supervisor). */
  | { type: "comm_route"; id: number; address?: string | undefined }
  /** Clients' lean links are on: bind an endpoint for them (`ClientTasks`); `gen`: this executor's generation. */
  | { type: "client_setup"; setup: ClientSetup; gen: number }
  /** The `ExecJournal` this executor writes every start into (the first message it gets). */
  | { type: "journal"; journal: SharedArrayBuffer }
  /** The controller took this engine for dead: clients' links close, unread tasks on them with them. */
  | { type: "client_drop" }
  /** Direct tasks the supervisor cancelled (and reported) by key, perhaps before this executor reported them. */
  | { type: "exec_cancel"; keys: string[] };

/** What an executor needs to own clients' direct links (`ClientTasks`). */
export type ClientSetup = Omit<CommSetup, "counts">;

/**
 * A task of a client's link to this executor, in its report to the supervisor: its start (with
 * `task` and `started`), or its result (`result`, sent to the client as `sent`: `[link, seq]`, or,
 * without `sent`, for the supervisor to send on the client's lean link: a large one, or one whose
 * link closed).
 */
export interface ExecItem {
  rid: number;
  key: string;
  client: string;
  localId: number;
  task?: EngineTask;
  started?: number;
  result?: TaskResult;
  sent?: [number, number];
  /** The result's value (the supervisor sends it again if this executor goes before the client acknowledged it). */
  data?: Packed;
}

/** What an executor needs to own its `engine.comm` links (`PeerLinks`). */
export interface CommSetup {
  /** The address to bind (the engine's peer endpoint's). */
  ip: string;
  /** The cluster key: every message on an executor link is signed with it, as on the engine's. */
  key: Uint8Array;
  maxBytes: number;
  /** A link with messages unacknowledged this long is given up (ms: the heartbeat window). */
  linkLimitMs: number;
  /**
   * `COMM_COUNTS_BYTES` shared with the supervisor, which reads them for its reports: an Int32 at 0,
   * the messages this executor sent on its own links; BigInt64s at 8 and 16, the bytes it wrote and
   * read on them.
   */
  counts: SharedArrayBuffer;
}

/** The size of `CommSetup.counts`. */
export const COMM_COUNTS_BYTES = 24;

/**
 * What the executor reports, once per turn of its event loop: starts, finished tasks and dropped
 * ones, handled in that order. (A task that never yields holds its report back: the supervisor
 * then finds its start in the `StartTable`.)
 */
export interface ExecutorReport {
  type: "report";
  /** Tasks started, as `[id, ms since the epoch]`. */
  started: Array<[number, number]>;
  results: Array<{ result: TaskResult; data: Packed }>;
  /** Dropped before they started, as asked. */
  dropped: number[];
  /** Posted copies of direct tasks this executor already has from the client's own link (by key): not run. */
  dups?: number[];
}

/** Executor thread → supervisor. */
export type FromExecutor =
  | { type: "ready" }
  | ExecutorReport
  /**
   * `call` (`process.exit(1)`, `process.abort()`) is ending the thread, called by `task` when the
   * executor can tell (in a task's async context).
   */
  | { type: "exiting"; task: number | undefined; call: string }

  /** A shared-state call (`engine.shared`), for the supervisor to relay to the controller. */
  | { type: "shared"; msg: SharedCallMsg | SharedWithdrawMsg; data: PackedParts }
  /** An `engine.comm` message (or a group's abort) of a task here, for the supervisor to send on. */
  | { type: "comm_out"; msg: CommMsg | CommAbortMsg; data: Packed | undefined; relay?: boolean }
  /** How should this executor reach engine `id`? (answered with `comm_route`) */
  | { type: "comm_route"; id: number }
  /** This executor's endpoint is bound at `address` (peers' executors dial it). */
  | { type: "comm_listen"; address: string }
  /**
   * A message that reached this executor's own endpoint for a group with no task here yet: the
   * supervisor keeps it, as those it posts, for an executor that would replace this one.
   */
  | { type: "comm_keep"; msg: CommMsg | CommAbortMsg; data: Packed | undefined }
  /** Client `client` (routing id, latin1) opened link `link` here (its tasks' ids say which link: `ClientTasks`). */
  | { type: "client_link"; link: number; client: string }
  /** A task cancelled by key (`exec_cancel`) is settled here: never started, or started and now ended. */
  | { type: "exec_cancelled"; key: string; started: boolean }
  /** This executor's endpoint for clients' links is bound at `address` (the supervisor tells its clients). */
  | { type: "client_listen"; address: string }
  /**
   * What ran from clients' links since the last report (`ClientTasks`), and what clients
   * acknowledged there (`[link, seq]`: every result sent on that link up to `seq`).
   */
  /** `journaled`: the `ExecJournal`'s count when it was sent (every start before it is in this report or an earlier one). */
  | { type: "exec_report"; items: ExecItem[]; acks: Array<[number, number]>; journaled: number }
  /** Client `client`'s link `link` closed: results it did not acknowledge (with the values the supervisor has not got). */
  | { type: "exec_lost"; client: string; link: number; items: Array<{ rid: number; data?: Packed }> };

/** What the supervisor gives the executor thread at start. */
export interface ExecutorData {
  concurrency: number;
  /** Largest result the cluster accepts (bytes). */
  maxResultBytes: number;
  /** Memory for the `StartTable`, one slot per unit of concurrency. */
  startTable: SharedArrayBuffer;
  /** On the controller's host: where and how large values go through files (its key arrives as a Uint8Array). */
  shm?: ShmConfig;
}
