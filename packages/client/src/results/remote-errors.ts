import {
  EngineLostError, ProtocolError, RemoteError, UndefinedNameError, UnknownEngineError, decodeValue,
  type FailureInfo, type Part, type TaskResult,
} from "@ptcluster/protocol";

/** Rebuilds the error of a failed task: the engine's own (`RemoteError`) or one the controller raised. */
export function failureToError(result: TaskResult, part: Part): Error {
  if (result.hubError) {
    const { code, message } = result.hubError;
    switch (code) {
      case "ERR_PTC_ENGINE_LOST":
        return new EngineLostError(result.engine, message);
      case "ERR_PTC_UNKNOWN_ENGINE":
        return Object.assign(new UnknownEngineError(result.engine, []), { message });
      default:
        return new ProtocolError(message, { code });
    }
  }
  let info: FailureInfo;
  try {
    info = decodeValue(part.body, part.frames) as FailureInfo;
  } catch (err) {
    return new ProtocolError(`Engine ${result.engine} reported a failure that could not be decoded: ${(err as Error).message}`, { cause: err });
  }
  const base = { engineId: result.engine, name: info.name, message: info.message, stack: info.stack, code: info.code };
  if (info.undefinedName) return new UndefinedNameError(base, info.undefinedName);
  return new RemoteError(base);
}
