import type { Part, PtclusterError, SharedArgs } from "@ptcluster/protocol";

/**
 * Who uses shared state: a client session (`c:<key>`) or an engine (`e:<id>`). Locks, permits,
 * unacknowledged queue items and waiting calls belong to one; when it is gone they are freed.
 */
export type Holder = string;

/** The answer to one operation: a value (header-sized data, plus stored values as parts), or an error. */
export type SharedReply =
  | { readonly ok: true; readonly value?: unknown; readonly parts?: readonly Part[] }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** One operation in flight: answered once, now or (for a blocking call) later. */
export interface Call {
  readonly holder: Holder;
  /** The caller's request id: with `holder`, what a withdrawal (`signal`) names. */
  readonly rid: number;
  reply(r: SharedReply): void;
}

/** An operation's scalar arguments (as they came over the wire) and its values, as parts. */
export type StoreArgs = SharedArgs & {
  /** The value set or put (`parts[0]`), the expected and new ones of `compareAndSet`, or many for `putMany`. */
  parts?: readonly Part[];
};

export const answer = (call: Call, value?: unknown, parts?: readonly Part[]): void =>
  call.reply(parts === undefined ? { ok: true, value } : { ok: true, value, parts });

export const refuse = (call: Call, err: PtclusterError): void =>
  call.reply({ ok: false, code: err.code, message: err.message });

/** What every kind of object does besides its own operations. */
export interface SharedObject {
  readonly kind: string;
  /** Runs `op`; answers `call` now, or keeps it waiting. */
  handle(op: string, call: Call, args: StoreArgs): void;
  /** Withdraws a waiting call (its `signal` aborted); true if it was waiting here. */
  withdraw(holder: Holder, rid: number, why: PtclusterError): boolean;
  /** Its holder is gone: frees what it held and drops its waiting calls (no one to answer). */
  holderGone(holder: Holder): void;
  /** Deleted: every waiting call fails with `why`; what it stored is freed. */
  dispose(why: PtclusterError): void;
  /** Holds nothing anyone stored or waits for (empty, unheld, unset): it may go once no one uses it. */
  idle(): boolean;
  /** For `status`: entries, items or elements; bytes stored; calls waiting. */
  describe(): { size: number; bytes: number; waiting: number };
}
