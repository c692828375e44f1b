import { DEFAULT_MAX_MESSAGE_BYTES } from "@ptcluster/protocol";
import type { CommSetup } from "../executor/protocol.js";
import { unpackComm } from "../shared/comm-bytes.js";
import type { CommPaths } from "./comm-paths.js";
import type { CommTasks } from "./comm-tasks.js";
import type { CommLinksMsg, ExecutorSlot } from "./executor-slot.js";

/**
 * The supervisor's part in its executors' own `engine.comm` links (docs/comm-transport.md): it
 * turns them on, answers an executor's "how do I reach engine N?" from its own path to that
 * engine, and keeps the messages that reached the executor first for a group not started yet.
 */

/**
 * What executors need to own their links, where this engine has direct paths at all (not with
 * `PTCLUSTER_COMM_PATH=relay`) and no CURVE: executor links are plain TCP, signed with the cluster
 * key but not encrypted, so a CURVE cluster keeps its messages on the supervisors' CURVE sockets.
 */
export function commLinksSetup(
  paths: CommPaths | undefined,
  opts: { key: Buffer; curve?: unknown; maxMessageBytes?: number | undefined },
  heartbeatMs: number,
): Omit<CommSetup, "counts"> | undefined {
  if (!paths || opts.curve) return undefined;
  return {
    ip: paths.ip,
    key: new Uint8Array(opts.key),
    maxBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    // A link unacknowledged this long is given up, as the supervisors' direct links are.
    linkLimitMs: heartbeatMs * 6,
  };
}

/**
 * `comm_route`: the peer executor's address if this engine's path to the peer is direct and its
 * hello gave one, else none (the executor sends through this supervisor). `comm_keep`: kept as
 * the messages this supervisor posts are, for an executor that would replace this one.
 */
export function answerCommLinks(
  m: CommLinksMsg,
  gen: number,
  d: { paths: CommPaths | undefined; slot: ExecutorSlot; commTasks: CommTasks },
): void {
  if (m.type === "comm_keep") {
    d.commTasks.posted(m.msg, unpackComm(m.data), gen);
    return;
  }
  const answer = (address: string | undefined) => d.slot.commRoute(gen, m.id, address);
  if (d.paths) d.paths.transport.route(m.id, answer);
  else answer(undefined);
}
