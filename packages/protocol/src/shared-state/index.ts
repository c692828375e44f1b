export * from "./wire.js";
export { SharedNamespace } from "./namespace.js";
export { SharedDict, type UpdateOp } from "./dict.js";
export { SharedQueue, type AckedItem } from "./queue.js";
export { SharedCounter } from "./counter.js";
export { SharedArray, type NumericArray, type NumericArrayCtor } from "./array.js";
export { Hold, SharedLock, SharedSemaphore, SharedEvent, SharedBarrier } from "./sync.js";
export * from "./messages.js";
export { PendingSharedCalls } from "./pending-calls.js";
