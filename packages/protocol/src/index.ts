export * from "./version.js";
export * from "./errors.js";
export * from "./shared-state-errors.js";
export * from "./comm-errors.js";
export * from "./messages.js";
export * from "./comm-messages.js";
export * from "./direct-messages.js";
export * from "./peer-messages.js";
export * from "./comm-api.js";
export * from "./codec/value-codec.js";
export {
  assertCloneable,
  mergeChecks,
  type CloneCheck,
  type CloneOptions,
  type FunctionRecord,
} from "./codec/clone-check.js";
export { TAG, AUTH_FAILED, encodeBody, decodeBody, partFrameCounts, MalformedMessageError } from "./codec/wire.js";
export * from "./auth/session.js";
export * from "./transport/channel.js";
export { Link } from "./transport/link.js";
export {
  DEFAULT_LINK_LIMITS,
  outgoing,
  transferAllowance,
  type LinkLimits,
  type Outgoing,
} from "./transport/send-window.js";
export type { Early } from "./transport/gap-buffer.js";
export { zmqContext } from "./transport/zmq-context.js";
export { FAULTS_ENV, FaultShim, faultsFromEnv, parseFaults, seededRandom, type FaultSpec } from "./transport/faults.js";
export { FRAGMENT_ENV, fragmentMinFromEnv } from "./transport/fragments.js";
export type { OutStream, StreamPart, StreamSink, StreamStart } from "./transport/streams.js";
export * from "./files/profile.js";
export * from "./files/connection-file.js";
export * from "./files/cluster-state.js";
export * from "./log.js";
export * from "./util/fn-hash.js";
export { Deque } from "./util/deque.js";
export * from "./security/curve.js";
export * from "./security/z85.js";
export * from "./options/option-spec.js";
export * from "./options/cluster-options.js";
export * from "./options/controller-entry.js";
export * from "./shared-state/index.js";
export * from "./pipeline/index.js";
export * from "./shm/index.js";
