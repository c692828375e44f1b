import { CommUsageError, type CommMessage, type CommTag, type EngineComm, type RecvOptions } from "@ptcluster/protocol";
import type { Wire } from "../comm/wire.js";
import { Collectives, type ReduceOp } from "../comm/collectives.js";

function channelOf(tag: CommTag | undefined): string {
  const t = tag ?? 0;
  if (typeof t === "string" || (Number.isInteger(t) && t >= 0)) return `u:${t}`;
  throw new CommUsageError(`A tag is a non-negative integer or a string, not ${String(t)}.`);
}

const valueOf = (r: { value: unknown }): unknown => r.value;

/**
 * Builds `engine.comm` over one rank's `Wire`: point to point here, the collectives (bcast,
 * allreduce, …) from the pure module over the same `Wire`. `close` at the end of the task.
 */
export function commOf(wire: Wire): { comm: EngineComm; close(): void } {
  // Not async functions: each promise costs the task's async context hooks, per message.
  const receive = (options: RecvOptions = {}) => {
    const { source, tag, timeout, signal } = options;
    const ch = channelOf(tag);
    const call = { timeout, signal };
    return source === undefined ? wire.recvAny(ch, call) : wire.recv(source, ch, call);
  };
  const recvFrom = async (options: RecvOptions = {}): Promise<CommMessage> => {
    const r = await receive(options);
    const source = options.source ?? (r as { source?: number }).source ?? -1;
    return { value: r.value, source, tag: options.tag ?? 0 };
  };
  const c = new Collectives(wire);
  const comm: EngineComm = {
    rank: wire.rank,
    size: wire.size,
    send: (dest, value, options = {}) => {
      try {
        return wire.send(dest, channelOf(options.tag), value);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    recv: (options) => {
      try {
        return receive(options).then(valueOf);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    recvFrom,
    bcast: (value, options) => c.bcast(value, options),
    // The user's function of two values: the module applies it to whatever values the ranks give.
    reduce: (value, op, options) => c.reduce(value, op as ReduceOp, options),
    allreduce: (value, op, options) => c.allreduce(value, op as ReduceOp, options),
    gather: (value, options) => c.gather(value, options),
    allgather: (value, options) => c.allgather(value, options),
    scatter: (values, options) => c.scatter(values, options),
    alltoall: (values, options) => c.alltoall(values, options),
    barrier: (options) => c.barrier(options),
  };
  return { comm, close: () => c.close() };
}
