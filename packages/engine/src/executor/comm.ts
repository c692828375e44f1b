import { CommUsageError } from "@ptcluster/protocol";
import type { CallOptions, Wire } from "../comm/wire.js";

/** A message's tag: a non-negative integer or a string (default 0). Messages of one tag never match a `recv` of another. */
export type CommTag = number | string;

export interface RecvOptions extends CallOptions {
  /** The rank to receive from; without it, the first message of the tag from any rank. */
  source?: number | undefined;
  tag?: CommTag | undefined;
}

/** A message with where it came from (`recvFrom`). */
export interface CommMessage {
  value: unknown;
  source: number;
  tag: CommTag;
}

/** `engine.comm` in a task of a DirectView call: this engine's rank in the call's targets, and messages between them. */
export interface EngineComm {
  /** This engine's index in the call's targets, in the order given. */
  readonly rank: number;
  /** How many targets the call has. */
  readonly size: number;
  /** Sends `value` to rank `dest`; resolves once it is on its way (it does not wait for the matching `recv`). */
  send(dest: number, value: unknown, options?: { tag?: CommTag }): Promise<void>;
  /** The next message of `tag` from `source` (any rank without one): its value. */
  recv(options?: RecvOptions): Promise<unknown>;
  /** As `recv`, with the rank it came from and its tag. */
  recvFrom(options?: RecvOptions): Promise<CommMessage>;
}

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
