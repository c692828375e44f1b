import "./engine-global.js";
export type { EngineGlobal } from "./engine-global.js";
export {
  Client,
  connect,
  type ClientState,
  type ClientEvents,
  type ClusterStatus,
  type DropCounts,
  type FaultCounts,
  type DirectCounts,
  type LinkReport,
  type MessageCounts,
  type QueueStatus,
  type AddEnginesOptions,
  type Abortable,
  type AbortSelector,
  type AbortSummary,
  type RunningTask,
} from "./client.js";
export type { ConnectOptions } from "./options.js";
export { DirectView, type ResultOf, type ArgLists } from "./views/direct-view.js";
export { EngineView } from "./views/engine-view.js";
export { LoadBalancedView, type AnyIterable, type ArgSources } from "./views/load-balanced-view.js";
export { MapRun, StreamConsumedError } from "./views/map-run.js";
export { MapResult } from "./results/map-result.js";
export { Pipeline } from "./pipeline/pipeline.js";
export type { PipelineOptions, StageOptions } from "./pipeline/options.js";
export type { PipelineErrorInfo } from "./pipeline/failure.js";
export type { LoadBalancedOptions, MapOptions } from "./views/lb-options.js";
export type { ViewOptions } from "./views/view-options.js";
export { AsyncResult, ResultTimeoutError, type TaskMetadata } from "./results/async-result.js";
export { startCluster, Cluster, type StartClusterOptions } from "./cluster/start-cluster.js";
export { moduleFunction, type ModuleFunction, type ModuleRef } from "./functions/module-function.js";
export {
  PtclusterError,
  RemoteError,
  UndefinedNameError,
  CompositeError,
  TaskTimeoutError,
  TaskCancelledError,
  EngineLostError,
  HubLostError,
  NoEnginesError,
  NoClusterError,
  ConnectionFileError,
  ProtocolError,
  AuthenticationError,
  VersionMismatchError,
  SerializationError,
  InvalidOptionError,
  ClientClosedError,
  ClientDroppedError,
  UnknownEngineError,
  ClusterStartError,
  MissingPeerError,
  DependencyError,
  PipelineUsageError,
  ResourceLimitError,
  TaskCrashedError,
  MessageTooLargeError,
  UnknownTaskError,
  SharedKindError,
  SharedTimeoutError,
  SharedCancelledError,
  QueueClosedError,
  BarrierBrokenError,
  SharedLimitError,
  SharedValueError,
  LockNotHeldError,
  SharedNamespace,
  SharedDict,
  SharedQueue,
  SharedCounter,
  SharedArray,
  SharedLock,
  SharedSemaphore,
  SharedEvent,
  SharedBarrier,
  Hold,
  type AckedItem,
  type UpdateOp,
  type WaitOptions,
  type NumericArray,
  type EngineInfo,
  type StageStats,
  type StageKind,
  type PipeOnError,
} from "@ptcluster/protocol";
