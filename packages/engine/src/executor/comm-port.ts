import type { MessagePort } from "node:worker_threads";
import type { CommAbortMsg, CommMsg, Part } from "@ptcluster/protocol";
import type { CommGroups } from "../comm/group.js";
import { packComm, unpackComm } from "../shared/comm-bytes.js";
import { PeerLinks } from "./peer-links.js";
import type { FromExecutor, ToExecutor } from "./protocol.js";

/** The supervisor's `engine.comm` messages to the executor. */
export type CommToExecutor = Extract<ToExecutor, { type: "comm_in" | "comm_setup" | "comm_route" }>;

/**
 * The executor's side of `engine.comm` transport: its own links (`PeerLinks`) once the
 * supervisor turns them on, and the supervisor's paths (its peer socket, the relay) otherwise.
 */
export function commPort(
  port: MessagePort,
  groups: () => CommGroups,
  selfId: () => number,
): { send(msg: CommMsg | CommAbortMsg, parts: Part[]): void; fromSupervisor(msg: CommToExecutor): void } {
  const post = (msg: CommMsg | CommAbortMsg, parts: Part[], type: "comm_out" | "comm_keep", relay = false) => {
    const data = packComm(parts);
    port.postMessage({ type, msg, data, ...(relay ? { relay } : {}) } satisfies FromExecutor, data?.buffers);
  };
  const links = new PeerLinks({
    selfId,
    viaSupervisor: (msg, parts, relay) => post(msg, parts, "comm_out", relay),
    ask: (id) => port.postMessage({ type: "comm_route", id } satisfies FromExecutor),
    listening: (address) => port.postMessage({ type: "comm_listen", address } satisfies FromExecutor),
    deliver: (msg, parts, own) => {
      // The supervisor keeps what it posts for a replacement of this executor; what came here
      // directly for a group not started yet, it keeps too.
      if (own && groups().awaits(msg.g)) post(msg, parts, "comm_keep");
      groups().incoming(msg, parts);
    },
  });
  return {
    send: (msg, parts) => links.send(msg, parts),
    fromSupervisor(msg) {
      switch (msg.type) {
        case "comm_in":
          if (msg.msg.type === "peer_state") {
            links.peerState(msg.msg);
            groups().incoming(msg.msg, []);
          } else links.incoming(msg.msg, unpackComm(msg.data));
          break;
        case "comm_setup":
          void links.start(msg.setup);
          break;
        case "comm_route":
          links.route(msg.id, msg.address);
          break;
      }
    },
  };
}
