import { CommMismatchError, CommUsageError } from "@ptcluster/protocol";
import type { Wire } from "./wire.js";

/**
 * Checks that every rank makes the same collective calls, also where no message would show it.
 *
 * A receiver compares each message's meta with its own call, but some mismatches never put a
 * message in front of a receiver that could see them: rank 0 waiting in `reduce` for rank 1
 * while rank 1 waits in `bcast` for rank 0 is a deadlock with no message in flight, and the root
 * of a `bcast` receives nothing at all. So every rank also tells rank 0 what it called at each
 * sequence number (one small message per rank and collective, sent without waiting, off the
 * critical path), and rank 0 compares them all and aborts the group on the first difference.
 */

/** What one rank called at one sequence number. */
export interface CallDescription {
  seq: number;
  /** `bcast (root 0)`: compared for `CommMismatchError`. */
  call: string;
  /** `Float64Array[1024]`, for built-in reductions: compared for `CommUsageError`. */
  shape?: string | undefined;
}

interface Seen {
  rank: number;
  description: CallDescription;
  count: number;
}

export const CHECK_CHANNEL = "c:check";

export class CallChecker {
  private readonly seen = new Map<number, Seen>();
  private unwatch: (() => void) | undefined;
  private failed = false;

  constructor(private readonly wire: Wire) {}

  /** Records this rank's call (rank 0) or sends it to rank 0 (the others). */
  announce(description: CallDescription): void {
    if (this.wire.size === 1 || this.failed) return;
    if (this.wire.rank !== 0) {
      // The send may fail once the group is aborted; the call itself reports that.
      // As a short string: it skips the value codec (comm/small-values.ts), a good part of a small allreduce.
      const text = JSON.stringify([description.seq, description.call, description.shape ?? null]);
      this.wire.send(0, CHECK_CHANNEL, text).catch(() => {});
      return;
    }
    this.start();
    this.note(0, description);
  }

  /** Stops rank 0's listening (at the end of the task). */
  close(): void {
    this.unwatch?.();
  }

  /**
   * Checks are handled as they are delivered, before any later message of the group: a rank
   * whose next call would complete on messages that came after a mismatched check (all of them
   * in one read of a link) fails instead.
   */
  private start(): void {
    this.unwatch ??= this.wire.watch(CHECK_CHANNEL, (source, value) => {
      if (!this.failed) this.note(source, parseCheck(value));
    });
  }

  private note(rank: number, description: CallDescription): void {
    const seen = this.seen.get(description.seq);
    if (!seen) {
      this.seen.set(description.seq, { rank, description, count: 1 });
      return;
    }
    seen.count++;
    if (seen.count === this.wire.size) this.seen.delete(description.seq);
    const first = seen.description;
    if (first.call !== description.call) {
      this.abort(
        new CommMismatchError(
          `Collective #${description.seq} was called differently: rank ${seen.rank} called ${first.call}, rank ${rank} called ${description.call}. ` +
            `Every rank must call the same collectives, in the same order, with the same root.`,
        ),
      );
    } else if (first.shape !== description.shape) {
      this.abort(
        new CommUsageError(
          `${first.call} (collective #${description.seq}): rank ${seen.rank} passed ${first.shape}, rank ${rank} passed ${description.shape}. ` +
            `Built-in reductions combine values of one kind (and, for typed arrays, one length) on every rank.`,
        ),
      );
    }
  }

  private abort(error: CommMismatchError | CommUsageError): void {
    this.failed = true;
    this.seen.clear();
    this.wire.abort({ code: error.code, message: error.message });
  }
}

/** A check as sent (`[seq, call, shape]` as JSON); one that does not parse (only a key holder could send it) is set aside under a number no call has. */
function parseCheck(value: unknown): CallDescription {
  try {
    const [seq, call, shape] = JSON.parse(value as string) as [number, string, string | null];
    return { seq, call: String(call), shape: shape ?? undefined };
  } catch {
    return { seq: -1, call: `an unreadable call check (${typeof value})` };
  }
}
