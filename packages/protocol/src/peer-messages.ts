import type { CommAbortMsg, CommMsg, PeerHelloMsg, PeerHelloReplyMsg } from "./comm-messages.js";
import type {
  ClientTask,
  ClientToHub,
  EngineToHub,
  HubToClient,
  HubToEngine,
  Notification,
  TaskResult,
} from "./messages.js";

/*
 * The messages of engines' peer endpoints (clients' direct tasks, `engine.comm`), and the union of
 * every message on the wire, which the channel and the wire codec carry.
 */

/** Client → engine's peer endpoint: tasks for this engine, one part each (`pf`: its frames). */
export interface DirectSubmitMsg {
  type: "dsubmit";
  tasks: ClientTask[];
  pf: number[];
}

/** Engine → client over the direct link: results of its direct tasks, by the client's task ids. */
export interface DirectResultsMsg {
  type: "dresults";
  results: TaskResult[];
  pf: number[];
}
/**
 * Client → engine on its lean link: this client would send its tasks to the engine's executor's
 * own endpoint. The executor binds one on the first such ask (none while no client wants it),
 * and the engine answers with `dexec`.
 */
export interface DirectExecAskMsg {
  type: "dexec_ask";
}

/** What a peer endpoint (ROUTER) receives, and what it sends back (`engine.comm`, clients' direct tasks). */
export type ToPeer = CommMsg | CommAbortMsg | PeerHelloMsg | DirectSubmitMsg | DirectExecAskMsg;

/**
 * Engine → client on its lean link: the engine's executor's own endpoint for clients' links
 * (`host:port`), where the client may send its tasks and get their results without the engine's
 * supervisor on the way; sent again when the executor is replaced (none while it starts).
 */
export interface DirectExecMsg {
  type: "dexec";
  address?: string;
}

export type FromPeer = PeerHelloReplyMsg | DirectResultsMsg | DirectExecMsg;
export type Message = ClientToHub | HubToClient | Notification | EngineToHub | HubToEngine | ToPeer | FromPeer;
