import {
  EngineLostError,
  ProtocolError,
  RemoteError,
  ResourceLimitError,
  SerializationError,
  TaskCancelledError,
  TaskCrashedError,
  UnknownTaskError,
  TaskTimeoutError,
  UndefinedNameError,
  UnknownEngineError,
  decodeValue,
  type FailureInfo,
  type Part,
  type TaskResult,
} from "@ptcluster/protocol";

/** What the caller knows about the task, to word the error. */
export interface FailureContext {
  /** The task's run-time limit (ms), if it had one. */
  timeout?: number | undefined;
  /** Index in the map input of the chunk's first item. */
  itemOffset?: number | undefined;
  /** The failing item's index in the input, when the caller knows it (a pipeline's): overrides the chunk's. */
  item?: number | undefined;
}

/** Rebuilds the error of a failed task: the engine's own (`RemoteError`) or one ptcluster raised. */
export function failureToError(result: TaskResult, part: Part, ctx: FailureContext = {}): Error {
  if (result.sysError) {
    const { code, message } = result.sysError;
    switch (code) {
      case "ERR_PTC_ENGINE_LOST":
      case "ERR_PTC_EXECUTOR_RESET":
      case "ERR_PTC_RESULT_LOST":
        return new EngineLostError(result.engine, message);
      case "ERR_PTC_UNKNOWN_ENGINE":
        return Object.assign(new UnknownEngineError(result.engine, []), { message });
      case "ERR_PTC_TASK_TIMEOUT":
        return new TaskTimeoutError(ctx.timeout ?? Number.NaN, result.engine);
      case "ERR_PTC_TASK_CANCELLED":
        return new TaskCancelledError(message, result.engine >= 0 ? { engineId: result.engine } : undefined);
      case "ERR_PTC_UNKNOWN_TASK":
        return new UnknownTaskError(message);
      case "ERR_PTC_TASK_CRASHED":
        return new TaskCrashedError(result.engine, message);
      case "ERR_PTC_OUT_OF_MEMORY":
        return new ResourceLimitError(result.engine, message);
      default:
        return new ProtocolError(message, { code });
    }
  }
  let info: FailureInfo;
  try {
    info = decodeValue(part.body, part.frames) as FailureInfo;
  } catch (err) {
    return new ProtocolError(
      `Engine ${result.engine} reported a failure that could not be decoded: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const item = ctx.item ?? (info.item === undefined ? undefined : info.item + (ctx.itemOffset ?? 0));
  const base = {
    engineId: result.engine,
    name: info.name,
    message: info.message,
    stack: info.stack,
    code: info.code,
    item,
  };
  // The task ran, but its value could not travel back: the same error a value refused on the way out gets.
  if (info.unsendable)
    return new SerializationError(info.unsendable.path, info.unsendable.reason, { engineId: result.engine, item });
  if (info.undefinedName) return new UndefinedNameError(base, info.undefinedName, info.shippedFunction);
  return new RemoteError(base);
}
