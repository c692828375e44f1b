import {
  EMPTY_PART,
  ProtocolError,
  RemoteError,
  type Part,
  type PipeFailedMsg,
  type TaskResult,
} from "@ptcluster/protocol";
import { failureToError } from "../results/remote-errors.js";

/** Where a pipeline failed, set on the error it rejects with. */
export interface PipelineErrorInfo {
  /** Index of the stage that failed (0 for the first `.map`/`.filter`/`.flatMap`). */
  stage: number;
  /** Its function's name (`anonymous` when it has none). */
  stageName: string;
  /** Index, in the pipeline's input, of the item that failed. */
  item: number;
}

/**
 * The error of a `pipe_failed`: the user's error (`RemoteError` and its kin) or the one ptcluster
 * raised (`TaskTimeoutError`, `EngineLostError`, …), as for a task, with the stage and the item
 * named in its message and set as properties (see {@link PipelineErrorInfo}).
 */
export function pipeFailure(
  msg: PipeFailedMsg,
  parts: Part[],
  stages: ReadonlyArray<{ name: string; timeout: number | undefined }>,
): Error {
  const at = msg.stage === undefined ? undefined : stages[msg.stage];
  const result: TaskResult = { id: 0, ok: false, engine: msg.engine ?? -1, started: 0, completed: 0 };
  if (msg.sysError) result.sysError = msg.sysError;
  let err: Error;
  if (msg.remote || msg.sysError) {
    err = failureToError(result, msg.remote ? (parts[0] ?? EMPTY_PART) : EMPTY_PART, {
      timeout: at?.timeout,
      item: msg.item,
    });
  } else {
    err = new ProtocolError("The controller reported that the pipeline failed without saying why; check its log.");
  }
  if (msg.stage === undefined && msg.item === undefined) return err;
  return nameStage(err, msg.stage, at?.name, msg.item);
}

/** Puts the stage and item into the error's message and properties; its class and cause stay. */
export function nameStage(
  err: Error,
  stage: number | undefined,
  name: string | undefined,
  item: number | undefined,
): Error {
  const where =
    stage === undefined
      ? `Pipeline item ${item}`
      : `Pipeline stage ${stage} (${name ?? "anonymous"})${item === undefined ? "" : ` failed on item ${item}`}`;
  // A RemoteError's own message names the item too ("(item 17)"): say it once.
  const own =
    err.constructor === RemoteError
      ? `${(err as RemoteError).remoteName} on engine ${(err as RemoteError).engineId}: ${(err as RemoteError).remoteMessage}`
      : err.message;
  const props: PropertyDescriptorMap = {
    message: { value: `${where}: ${own}`, writable: true, configurable: true },
  };
  if (stage !== undefined) {
    props["stage"] = { value: stage, enumerable: true, configurable: true };
    props["stageName"] = { value: name ?? "anonymous", enumerable: true, configurable: true };
  }
  if (item !== undefined) props["item"] = { value: item, enumerable: true, configurable: true };
  return Object.defineProperties(err, props);
}
