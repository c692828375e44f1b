import type { MessagePort } from "node:worker_threads";
import { PendingSharedCalls, SharedNamespace, type SharedReplyMsg } from "@ptcluster/protocol";
import { packPartList, unpackPartList, type PackedParts } from "../shared/part-bytes.js";
import type { FromExecutor } from "./protocol.js";

/**
 * `engine.shared` in the executor: calls go to the supervisor, which relays them to the controller
 * (adding this executor's generation) and posts the replies back here.
 */
export function sharedNamespace(port: MessagePort): {
  namespace: SharedNamespace;
  settle(msg: SharedReplyMsg, data: PackedParts): void;
} {
  const calls = new PendingSharedCalls((msg, parts) => {
    const data = packPartList(parts);
    port.postMessage({ type: "shared", msg, data } satisfies FromExecutor, data.data.buffers);
  });
  return {
    namespace: new SharedNamespace(calls),
    settle: (msg, data) => calls.settle(msg, unpackPartList(data)),
  };
}
