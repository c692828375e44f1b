import { CommUsageError, type CommMessage, type CommTag, type EngineComm, type RecvOptions } from "@ptcluster/protocol";
import type { Wire } from "../comm/wire.js";

function channelOf(tag: CommTag | undefined): string {
  const t = tag ?? 0;
  if (typeof t === "string" || (Number.isInteger(t) && t >= 0)) return `u:${t}`;
  throw new CommUsageError(`A tag is a non-negative integer or a string, not ${String(t)}.`);
}

/**
 * Builds `engine.comm` over one rank's `Wire`. The collectives (bcast, allreduce, …) are a pure
 * module over the same `Wire`: they are added here, `Object.assign(comm, collectivesOf(wire))`.
 */
export function commOf(wire: Wire): EngineComm {
  const recvFrom = async (options: RecvOptions = {}): Promise<CommMessage> => {
    const { source, tag, timeout, signal } = options;
    const ch = channelOf(tag);
    const call = { timeout, signal };
    if (source === undefined) {
      const r = await wire.recvAny(ch, call);
      return { value: r.value, source: r.source, tag: tag ?? 0 };
    }
    const r = await wire.recv(source, ch, call);
    return { value: r.value, source, tag: tag ?? 0 };
  };
  const comm: EngineComm = {
    rank: wire.rank,
    size: wire.size,
    send: async (dest, value, options = {}) => wire.send(dest, channelOf(options.tag), value),
    recv: async (options) => (await recvFrom(options)).value,
    recvFrom,
  };
  return comm;
}
