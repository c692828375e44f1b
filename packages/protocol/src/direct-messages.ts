/**
 * The direct path of DirectView tasks (docs/architecture.md, "The direct path"): a client that
 * reaches an engine's peer endpoint sends its tasks for that engine there and gets their results
 * from there, over the same authenticated channel as every socket. The controller still gets each
 * task's header (`ClientTask.dx`: no body) in the client's `submit`, keeps the task's record, and
 * hands it to the engine as usual (`EngineTask.dx`), so status, cancellation, `rc.abort`, engine
 * deaths and adoption work as on the controller path; the engine runs whichever copy has a body
 * first, once. The messages between a client and an engine's peer endpoint (`dsubmit`,
 * `dresults`) are in `messages.ts`, with the peer endpoint's union.
 */
/**
 * Controller → engine: another client adopted these direct tasks (`rc.getResult`): their results
 * go to the controller whole, as well as to the client that sent them.
 */
export interface DirectWholeMsg {
  type: "direct_whole";
  ids: number[];
}
