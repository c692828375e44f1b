/**
 * Every message of the protocol, as one discriminated union on `type`.
 *
 * A message on the wire is `[routing…] TAG AUTH HEADER (BODY BINARY*)*`: the header is msgpack
 * of one of the types below; it may carry `parts`, one body frame per part followed by that part's
 * binary frames (`pf[i]` of them). User data lives only in parts, so the controller routes by the
 * header alone and forwards parts without decoding them.
 */
import type {
  CommAbortMsg,
  CommGroup,
  CommMsg,
  PeerEndpointMsg,
  PeerLookupMsg,
  PeerStateMsg,
} from "./comm-messages.js";
import type { SharedCallMsg, SharedReplyMsg, SharedWithdrawMsg } from "./shared-state/messages.js";
import type {
  PipeCancelMsg,
  PipeEndMsg,
  PipeFailedMsg,
  PipeItemsMsg,
  PipeOpenMsg,
  PipeOutMsg,
  StageKind,
} from "./pipeline/messages.js";
import type { LinkReport } from "./link-report.js";
import type { DirectWholeMsg } from "./direct-messages.js";
import type { HubRequest } from "./hub-requests.js";
import type { EngineInfo, MpiPlace, TaskOp } from "./engine-info.js";

export type { DirectCounts, DropCounts, FaultCounts, LinkReport } from "./link-report.js";
export type { EngineInfo, EngineState, MpiPlace, RunningTask, TaskOp } from "./engine-info.js";
export type { AbortSummary, HubRequest } from "./hub-requests.js";
export type {
  EngineDownMsg,
  EngineResetMsg,
  EngineUpMsg,
  Notification,
  ShutdownNoticeMsg,
  TickMsg,
} from "./notification-messages.js";

/** A task as a client submits it. */
export interface ClientTask {
  /** Client-local task id. */
  id: number;
  op: TaskOp;
  /** Engine ids for direct tasks; the task runs once on each. Empty for load-balanced tasks. */
  to: number[];
  /** Present for a load-balanced task: the controller picks the engine. */
  lb?: LoadBalanceSpec;
  /** Hash of the function source (apply). */
  fn?: string;
  /** The function's name, for `ptcluster status` (apply and map; other ops show as their op). */
  name?: string;
  /** Function source, sent with the first use of `fn` on this connection. */
  src?: string;
  /** Names shipped with `scope` (their values are in the part). */
  scope?: string[];
  /** Run-time limit in ms, counted from the task's start on an engine. */
  timeout?: number;
  /** A DirectView call's group (`engine.comm`), the same on each of its tasks. */
  comm?: CommGroup;
  /** A pipeline stage's items (op `stage`, made by the controller): what the function does with each. */
  stage?: StageKind;
  /** The client is on the controller's host: results as large as its threshold may come as shared-memory files. */
  shm?: boolean;
  /** Sent straight to the engine too (`direct-messages.ts`): this copy has no body, unless `rs` (the direct link failed). */
  dx?: 1;
  rs?: 1;
  /**
   * The client had every target engine registered when it sent the task: one the controller no
   * longer has died on the way (`EngineLostError`), where an id the client did not know is
   * `UnknownEngineError`.
   */
  k?: 1;
}

/** How a load-balanced task may be placed and re-run. */
export interface LoadBalanceSpec {
  /** Only these engines (default: any). */
  targets?: number[];
  /** Re-runs after the task threw (default 0). */
  retries?: number;
  /** Engine deaths the task may survive before it fails as a poison task (default 3). */
  maxDeaths?: number;
}

/** A task as the controller hands it to an engine. */
export interface EngineTask {
  /** Controller-global task id. */
  id: number;
  op: TaskOp;
  fn?: string;
  src?: string;
  scope?: string[];
  /** Run-time limit in ms from the task's start. */
  timeout?: number;
  /** Load-balanced: may be handed back (`release`) before it starts, to run elsewhere. */
  movable?: boolean;
  /** The group of the DirectView call this task belongs to (`engine.comm`). */
  comm?: CommGroup;
  stage?: StageKind;
  /** The client's party tag (`c<id>`) when it takes large results as shared-memory files. */
  shm?: string;
  /** Also sent straight to the engine (`<client id>:<client task id>`): no body unless resent; run once. */
  dx?: string;
}

/** Serialisable description of a failure. */
export interface FailureInfo {
  name: string;
  message: string;
  stack: string;
  code?: string;
  /** For ReferenceErrors in shipped code: the name that was not defined. */
  undefinedName?: string;
  /** For a map chunk: the index, within the chunk, of the item that failed. */
  item?: number;
  /** The failure happened inside a function shipped as a value (in `push`, `scope` or arguments): its name and where it was sent. */
  shippedFunction?: ShippedFunctionOrigin;
  /** The task's value could not be sent back: where in it, and why (raised as a `SerializationError`). */
  unsendable?: { path: string; reason: string };
}

/** A function shipped as a value: its name (`anonymous` if none) and the path it was sent under (`namespace.isPrime`). */
export interface ShippedFunctionOrigin {
  name: string;
  path: string;
}

/** Outcome of one task on one engine. */
export interface TaskResult {
  id: number;
  ok: boolean;
  /** Engine that ran it. */
  engine: number;
  started: number;
  completed: number;
  stdout?: string;
  stderr?: string;
  /**
   * A failure raised by ptcluster rather than by user code: engine lost, unknown engine,
   * timeout, cancellation. Its code is the error class's code.
   */
  sysError?: { code: string; message: string };
  /** How many times the task was started (1 unless retried or moved after an engine died). */
  attempts?: number;
  /** For a result fetched by another client (`adopt`): how many results to expect under this id. */
  total?: number;
  /** Engine → controller: the client acknowledged this result on its direct link; it comes without its value. */
  d?: 1;
}

/** Load-balancing schemes (`ptcluster start --scheme`). */
export type SchedulerScheme = "leastload" | "lru" | "random" | "weighted";

// ---- client → hub -------------------------------------------------------------------------
export interface ConnectMsg {
  type: "connect";
  v: string;
  pkg: string;
  pid: number;
  host: string;
  /** The id this process had before it lost the controller and connected again: that session ends now. */
  replaces?: string;
}
export interface SubmitMsg {
  type: "submit";
  tasks: ClientTask[];
  pf: number[];
  t: number;
  /** Results of direct tasks that came straight from their engines (no values; the client's ids): their records end. */
  done?: TaskResult[];
}
export interface RequestMsg {
  type: "request";
  rid: number;
  req: HubRequest;
}
export interface ByeMsg {
  type: "bye";
}
/**
 * A client's heartbeat: a client silent for several periods is presumed gone and its work
 * cancelled. Also a probe (`ChannelOptions.probe`) from a client or an engine to the controller, or
 * from the controller to a client, while a message waits on a resend: the receiver acknowledges
 * it, and does nothing else.
 */
export interface PingMsg {
  type: "ping";
}
/**
 * Take over tasks of another (gone) client: `from` is its id, `id` its task id, `as` the id this
 * client gives them. Stored results come back at once; running tasks report here when done.
 */
export interface AdoptMsg {
  type: "adopt";
  items: Array<{ from: string; id: number; as: number }>;
}
/**
 * Cancel this client's tasks (client-local ids): queued ones are dropped, running ones signalled,
 * then forced. Tasks of other clients are cancelled with the `abort` request, by msg id.
 */
export interface CancelMsg {
  type: "cancel";
  ids: number[];
  reason: "cancel" | "timeout";
}

// ---- hub → client -------------------------------------------------------------------------
export interface ConnectReplyMsg {
  type: "connect_reply";
  ok: boolean;
  error?: { code: string; message: string };
  v: string;
  pkg: string;
  clusterId: string;
  engines: EngineInfo[];
  heartbeatMs: number;
}
/**
 * To a client the controller does not know that sent it something: it was taken for gone (silent
 * or not acknowledging past `--client-timeout`: its tasks were cancelled) or never connected here.
 * The client fails what it had pending with `ClientDroppedError` and connects again.
 */
export interface RejoinMsg {
  type: "rejoin";
  /** Why the controller let it go, if it did ("silent for more than 30000 ms"). */
  reason?: string;
}
export interface ResultsMsg {
  type: "results";
  results: TaskResult[];
  pf: number[];
}
export interface ReplyMsg {
  type: "reply";
  rid: number;
  ok: boolean;
  data?: unknown;
  error?: { code: string; message: string };
}

// ---- engine → hub -------------------------------------------------------------------------
export interface RegisterMsg {
  type: "register";
  v: string;
  pkg: string;
  uuid: string;
  host: string;
  pid: number;
  node: string;
  concurrency: number;
  requestedId?: number;
  /** The launch this engine belongs to (set by launchers; lets the controller tie a launcher's exit to its engines). */
  tag?: string;
  mpi?: MpiPlace;
  /** Its peer endpoint for `engine.comm`, `host:port` (absent: only the relay reaches it). */
  peer?: string;
  /** With `--curve`: the CURVE server public key (Z85) of that endpoint, made at start. */
  peerKey?: string;
  /** Its endpoint for clients' lean direct links, `host:port` (absent: clients use `peer`, or the controller). */
  lean?: string;
  /** It reads the controller's host token: it takes (and sends) large values as shared-memory files. */
  shm?: boolean;
}
export interface EngineResultsMsg {
  type: "engine_results";
  results: TaskResult[];
  pf: number[];
}
/**
 * `current`: the tasks running now, as `[task id, ms since it started]` (a duration rather than a
 * time, so the controller needs no clock in common with the engine): what `ptcluster status` shows.
 */
export interface HeartbeatMsg {
  type: "heartbeat";
  t: number;
  running?: number;
  done?: number;
  link?: LinkReport;
  current?: Array<[number, number]>;
}
export interface UnregisterMsg {
  type: "unregister";
  reason: string;
}
/** Tasks handed back after a `release`, not started. */
export interface ReleasedMsg {
  type: "released";
  ids: number[];
}
/** The executor was replaced (timeout or forced cancellation): the engine's namespace is empty again. */
export interface ExecutorResetMsg {
  type: "executor_reset";
  reason: string;
  /** The executor generation that ended: its shared-state holds are freed. */
  gen?: number;
}

// ---- hub → engine -------------------------------------------------------------------------
export interface RegisterReplyMsg {
  type: "register_reply";
  ok: boolean;
  id: number;
  heartbeatMs: number;
  error?: { code: string; message: string };
}
export interface TasksMsg {
  type: "tasks";
  tasks: EngineTask[];
  pf: number[];
}
export interface EngineShutdownMsg {
  type: "engine_shutdown";
  reason: string;
}
/** Cancel tasks (controller ids) on this engine; with `queuedOnly`, only those that have not started. */
export interface EngineCancelMsg {
  type: "engine_cancel";
  ids: number[];
  queuedOnly?: boolean;
}
/** Hand back up to `max` queued tasks that have not started (another engine is idle). */
export interface ReleaseMsg {
  type: "release";
  max: number;
}
/** The controller does not know this engine (it was declared dead): register again. */
export interface ReregisterMsg {
  type: "reregister";
}
/**
 * No client or task needs these functions any more: the engine drops their sources and compiled
 * code (a later task that names one brings its source again).
 */
export interface ForgetFnsMsg {
  type: "forget_fns";
  fns: string[];
}

export type ClientToHub =
  | ConnectMsg
  | SubmitMsg
  | RequestMsg
  | ByeMsg
  | CancelMsg
  | PingMsg
  | AdoptMsg
  | SharedCallMsg
  | SharedWithdrawMsg
  | PipeOpenMsg
  | PipeItemsMsg
  | PipeEndMsg
  | PipeCancelMsg;
export type HubToClient =
  ConnectReplyMsg | RejoinMsg | ResultsMsg | ReplyMsg | SharedReplyMsg | PipeOutMsg | PipeFailedMsg | PingMsg;
export type EngineToHub =
  | RegisterMsg
  | PingMsg
  | EngineResultsMsg
  | HeartbeatMsg
  | UnregisterMsg
  | ReleasedMsg
  | ExecutorResetMsg
  | SharedCallMsg
  | SharedWithdrawMsg
  | CommMsg
  | CommAbortMsg
  | PeerLookupMsg;
export type HubToEngine =
  | RegisterReplyMsg
  | TasksMsg
  | HeartbeatMsg
  | EngineShutdownMsg
  | EngineCancelMsg
  | ReleaseMsg
  | ReregisterMsg
  | ForgetFnsMsg
  | SharedReplyMsg
  | CommMsg
  | CommAbortMsg
  | PeerStateMsg
  | PeerEndpointMsg
  | DirectWholeMsg;

export type { Part } from "./part.js";
export { EMPTY_PART } from "./part.js";

/** Exhaustiveness helper for `switch` over message types. */
export function assertNever(x: never, what = "message"): never {
  throw new Error(`Unhandled ${what}: ${JSON.stringify(x)}`);
}
