import type { MessagePort } from "node:worker_threads";
import { PendingSharedCalls, SharedNamespace, type Part, type SharedReplyMsg } from "@ptcluster/protocol";
import type { FromExecutor } from "./protocol.js";

/** A part as it comes through `postMessage` (Buffers arrive as plain Uint8Arrays): Buffers again, without a copy. */
export function asPart(p: { body: Uint8Array; frames: Uint8Array[] }): Part {
  const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return { body: buf(p.body), frames: p.frames.map(buf) };
}

/**
 * `engine.shared` in the executor: calls go to the supervisor, which relays them to the controller
 * (adding this executor's generation) and posts the replies back here.
 */
export function sharedNamespace(port: MessagePort): {
  namespace: SharedNamespace;
  settle(msg: SharedReplyMsg, parts: Part[]): void;
} {
  const calls = new PendingSharedCalls((msg, parts) =>
    port.postMessage({ type: "shared", msg, parts: [...parts] } satisfies FromExecutor),
  );
  return {
    namespace: new SharedNamespace(calls),
    settle: (msg, parts) => calls.settle(msg, parts.map(asPart)),
  };
}
