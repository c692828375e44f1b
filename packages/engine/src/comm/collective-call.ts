import { CommCancelledError, CommMismatchError, CommTimeoutError, CommUsageError } from "@ptcluster/protocol";
import type { CallOptions, CollectiveMeta, Wire } from "./wire.js";

/**
 * One collective call on one rank: its channel (`c:<seq>`), the meta its messages carry, and the
 * deadline that covers the whole call. Every message of the call goes through `send` and `recv`
 * here, so each received message is checked against this call, and every wait gets what is left
 * of the call's `timeout` and its `signal`.
 */
export class CollectiveCall {
  readonly channel: string;
  readonly meta: CollectiveMeta;
  private readonly deadline: number | undefined;

  constructor(
    readonly wire: Wire,
    readonly seq: number,
    op: string,
    root: number | undefined,
    private readonly options: CallOptions,
  ) {
    this.channel = `c:${seq}`;
    this.meta = root === undefined ? { op } : { op, root };
    this.deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout;
    if (options.signal?.aborted) {
      throw new CommCancelledError(
        `${this.name} on rank ${wire.rank} was cancelled before it started: its signal was aborted.`,
      );
    }
  }

  get rank(): number {
    return this.wire.rank;
  }

  get size(): number {
    return this.wire.size;
  }

  /** `allreduce (collective #3)`, for messages. */
  get name(): string {
    return `${this.meta.op} (collective #${this.seq})`;
  }

  send(dest: number, value: unknown): Promise<void> {
    return this.wire.send(dest, this.channel, value, this.meta);
  }

  /** The next message of this call from `source`, after checking it was sent by the same collective. */
  async recv(source: number): Promise<unknown> {
    const timeout = this.remaining(source);
    let received;
    try {
      received = await this.wire.recv(source, this.channel, { timeout, signal: this.options.signal });
    } catch (error) {
      throw this.translate(error, source);
    }
    this.check(source, received.meta);
    return received.value;
  }

  /** This call is done with `value`, a chunk it received and combined: its bytes may be reused. */
  release(value: unknown): void {
    this.wire.release(value);
  }

  /** Sends to `dest` and receives from `source` at the same time (the step of a ring or a pairwise exchange). */
  async exchange(dest: number, value: unknown, source: number): Promise<unknown> {
    const [, received] = await Promise.all([this.send(dest, value), this.recv(source)]);
    return received;
  }

  /**
   * Ends the call on every rank: the others would otherwise wait for ever on this one. Used for a
   * mismatch seen here, and for a usage error (a bad root or length) that the others cannot see.
   */
  fail(error: CommMismatchError | CommUsageError): never {
    this.wire.abort({ code: error.code, message: error.message });
    throw error;
  }

  private check(source: number, meta: CollectiveMeta | undefined): void {
    if (meta !== undefined && meta.op === this.meta.op && meta.root === this.meta.root) return;
    this.fail(
      new CommMismatchError(
        `Collective #${this.seq} was called differently: rank ${this.rank} called ${describeMeta(this.meta)}, ` +
          `rank ${source} called ${meta ? describeMeta(meta) : "something else"}. ` +
          `Every rank must call the same collectives, in the same order, with the same root.`,
      ),
    );
  }

  /** Milliseconds left before the deadline, or `undefined` without a timeout. */
  private remaining(source: number): number | undefined {
    if (this.deadline === undefined) return undefined;
    const left = this.deadline - Date.now();
    if (left <= 0) throw this.timeoutError(source);
    return left;
  }

  private translate(error: unknown, source: number): unknown {
    if ((error as { code?: unknown } | null)?.code === "ERR_PTC_COMM_TIMEOUT") return this.timeoutError(source);
    return error;
  }

  private timeoutError(source: number): CommTimeoutError {
    return new CommTimeoutError(
      `${this.name} on rank ${this.rank} did not complete within its timeout of ${this.options.timeout} ms: ` +
        `it was still waiting for rank ${source}. Check that every rank of the group makes this call, or raise \`timeout\`.`,
    );
  }
}

/** `bcast (root 0)`, `allreduce`. */
export function describeMeta(meta: CollectiveMeta): string {
  return meta.root === undefined ? meta.op : `${meta.op} (root ${meta.root})`;
}
