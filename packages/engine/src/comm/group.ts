import {
  CommCancelledError,
  CommPeerLostError,
  CommTimeoutError,
  CommUsageError,
  MessageTooLargeError,
  ProtocolError,
  commError,
  decodeValue,
  encodedSize,
  type CommAbortMsg,
  type CommGroup,
  type CommMsg,
  type Part,
  type PeerStateMsg,
} from "@ptcluster/protocol";
import { recycle } from "@ptcluster/protocol/lean";
import { decodeSmall, encodeSmall } from "./small-values.js";
import type { CallOptions, CollectiveMeta, Received, Wire } from "./wire.js";
import { RecentSet } from "../shared/recent-set.js";

/** Where a rank's messages go: to the supervisor, which relays them (through the controller, for now). */
export type CommOut = (msg: CommMsg | CommAbortMsg, parts: Part[]) => void;

interface Queued extends Received {
  source: number;
  ch: string;
}

interface Waiter {
  source: number | undefined;
  ch: string;
  settle(r: Queued | Error): void;
  /** Its call's signal or its task's aborted. */
  cancel(): void;
}

/** One group's mailbox on this engine: messages not yet received (FIFO per source and channel), and calls waiting. */
class Mailbox {
  readonly queue: Queued[] = [];
  readonly waiters: Waiter[] = [];
  readonly watchers = new Map<string, (source: number, value: unknown) => void>();
  error: Error | undefined;
  /** Engine ids by rank, once this engine's task of the group has started. */
  ranks: number[] | undefined;

  deliver(q: Queued): void {
    if (this.error) return;
    const watcher = this.watchers.get(q.ch);
    if (watcher) return watcher(q.source, q.value);
    const i = this.waiters.findIndex((w) => w.ch === q.ch && (w.source === undefined || w.source === q.source));
    if (i >= 0) this.waiters.splice(i, 1)[0]?.settle(q);
    else this.queue.push(q);
  }

  take(source: number | undefined, ch: string): Queued | undefined {
    const i = this.queue.findIndex((q) => q.ch === ch && (source === undefined || q.source === source));
    return i >= 0 ? this.queue.splice(i, 1)[0] : undefined;
  }

  fail(error: Error): void {
    if (this.error) return;
    this.error = error;
    this.queue.length = 0;
    for (const w of this.waiters.splice(0)) w.settle(error);
  }
}

/** Groups whose task ended here, remembered so their late messages are dropped (bounded). */
const FINISHED_KEPT = 4_096;
/** How long a new group waits for news that a member it names, gone when last heard of, is back (ms). */
const LOST_GRACE_MS = 300;
/** Groups with messages but no task here yet (it may never come: cancelled, or its engine reset); the oldest go first. */
const UNSTARTED_KEPT = 256;

/** What a channel is, for error messages: the user's tag, or a collective. */
function describe(ch: string): string {
  return ch.startsWith("u:") ? `tag ${ch.slice(2)}` : `collective ${ch.slice(2)}`;
}

/**
 * The mailboxes of every `engine.comm` group on this executor, and the `Wire` of each task's
 * rank. Messages may arrive before the task that reads them starts (they wait, bounded) or after
 * it ended (dropped). Each group is the group of one DirectView call, so two calls running at
 * once on the same engines never see each other's messages.
 */
export class CommGroups {
  private readonly boxes = new Map<string, Mailbox>();
  private readonly finished = new RecentSet<string>(FINISHED_KEPT);
  /** Engines the controller said are gone, with why (cleared when one registers again). */
  private readonly lost = new Map<number, string>();

  constructor(
    private readonly out: CommOut,
    private readonly selfId: () => number,
    /** Largest message the controller accepts: a larger one fails at `send` rather than vanish on the way. */
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * The group of a task starting now: its `Wire` (undefined if this engine is not among the
   * targets) and `close`, to call when the task ends.
   */
  open(
    group: CommGroup,
    taskSignal: AbortSignal,
  ): { wire: Wire | undefined; failed(error: unknown): void; close(): void } {
    const box = this.box(group.g) ?? new Mailbox();
    this.boxes.set(group.g, box);
    box.ranks = group.ranks;
    const rank = group.ranks.indexOf(this.selfId());
    let wire: GroupWire | undefined;
    let verdict: NodeJS.Timeout | undefined;
    const close = () => {
      clearTimeout(verdict);
      wire?.detach();
      this.boxes.delete(group.g);
      this.finished.add(group.g);
    };
    // A member this engine was told is gone: the group fails, unless the news that it is back
    // comes within LOST_GRACE_MS. The controller tells this engine and the clients at once, on two
    // paths, so a client may send a call with a member back from a freeze (or a cut) before this
    // engine has heard it is back.
    if (group.ranks.some((id) => this.lost.has(id)))
      verdict = setTimeout(() => {
        for (const id of group.ranks) {
          const reason = this.lost.get(id);
          if (reason !== undefined) box.fail(this.peerLost(group, id, reason));
        }
      }, LOST_GRACE_MS);
    if (rank < 0) return { wire: undefined, failed: () => undefined, close };
    wire = new GroupWire(group, rank, box, this.out, taskSignal, this.maxBytes);
    // A failed task ends its group for everyone (ranks waiting on it would otherwise hang): unless
    // the group had already failed, in which case every member has heard why.
    const failed = (error: unknown) => {
      if (box.error || group.ranks.length < 2) return;
      const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      wire?.abort({
        code: "ERR_PTC_COMM_PEER_LOST",
        message: `Rank ${rank} (engine ${this.selfId()}) of this call failed (${what.split("\n")[0]}): it will send no more messages. See its own error for the cause.`,
      });
    };
    return { wire, failed, close };
  }

  /** True while no task of group `g` has started (or ended) on this engine: its messages wait for it. */
  awaits(g: string): boolean {
    return !this.finished.has(g) && this.boxes.get(g)?.ranks === undefined;
  }

  /** A message from the supervisor: a rank's message, a group's abort, or an engine gone or back. */
  incoming(msg: CommMsg | CommAbortMsg | PeerStateMsg, parts: Part[]): void {
    switch (msg.type) {
      case "comm": {
        const box = this.boxFor(msg.g);
        const part = parts[0];
        if (!box || !part) return;
        let value: unknown;
        try {
          value = decodeSmall(part);
        } catch (err) {
          // Not this thread's to die of: the group cannot go on, its members hear why.
          box.fail(new ProtocolError(`A message of rank ${msg.from} could not be decoded: ${(err as Error).message}`));
          return;
        }
        box.deliver({ value, source: msg.from, ch: msg.ch, ...(msg.meta ? { meta: msg.meta } : {}) });
        break;
      }
      case "comm_abort":
        this.boxFor(msg.g)?.fail(commError(msg.error.code, msg.error.message));
        break;
      case "peer_state":
        if (msg.up) {
          this.lost.delete(msg.id);
          break;
        }
        this.lost.set(msg.id, msg.reason);
        for (const [g, box] of this.boxes) {
          if (box.ranks?.includes(msg.id) && msg.id !== this.selfId())
            box.fail(this.peerLost({ g, ranks: box.ranks }, msg.id, msg.reason));
        }
        break;
    }
  }

  private peerLost(group: CommGroup, id: number, reason: string): Error {
    return new CommPeerLostError(
      `Engine ${id} (rank ${group.ranks.indexOf(id)} of this call's ${group.ranks.length}) is gone (${reason}): ` +
        "no message will come from it, and none can reach it. Run the call again on the engines left (rc.ids).",
    );
  }

  private box(g: string): Mailbox | undefined {
    return this.boxes.get(g);
  }

  /** The mailbox of `g`, made for a message that came before its task (none for a finished group). */
  private boxFor(g: string): Mailbox | undefined {
    if (this.finished.has(g)) return undefined;
    let box = this.boxes.get(g);
    if (box) return box;
    box = new Mailbox();
    this.boxes.set(g, box);
    let unstarted = 0;
    for (const b of this.boxes.values()) if (!b.ranks) unstarted++;
    if (unstarted > UNSTARTED_KEPT) {
      for (const [k, b] of this.boxes) {
        if (b.ranks) continue;
        this.boxes.delete(k);
        break;
      }
    }
    return box;
  }
}

const SENT = Promise.resolve();

/** One rank's `Wire`: sends go out through the supervisor, receives read this group's mailbox. */
class GroupWire implements Wire {
  readonly size: number;

  constructor(
    private readonly group: CommGroup,
    readonly rank: number,
    private readonly box: Mailbox,
    private readonly out: CommOut,
    private readonly taskSignal: AbortSignal,
    private readonly maxBytes: number,
  ) {
    this.size = group.ranks.length;
    // One listener for the task, not one per receive (EventTarget's bookkeeping costs more than the
    // rest of a receive); removed when the task ends, so a signal that outlives it keeps none.
    taskSignal.addEventListener("abort", this.onTaskAbort, { once: true });
  }

  private readonly onTaskAbort = (): void => {
    for (const w of [...this.box.waiters]) w.cancel();
  };

  /** The task ended: its signal no longer reaches this group. */
  detach(): void {
    this.taskSignal.removeEventListener("abort", this.onTaskAbort);
  }

  send(dest: number, channel: string, value: unknown, meta?: CollectiveMeta): Promise<void> {
    // Not an async function: one promise less per message (each costs the task's async context hooks).
    try {
      this.post(dest, channel, value, meta);
      return SENT;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private post(dest: number, channel: string, value: unknown, meta?: CollectiveMeta): void {
    this.checkRank(dest, "send to");
    if (this.box.error) throw this.box.error;
    const { body, frames } = encodeSmall(value);
    const bytes = encodedSize({ body, frames });
    if (bytes > this.maxBytes) throw new MessageTooLargeError(`The message to rank ${dest}`, bytes, this.maxBytes);
    if (dest === this.rank) {
      // To itself: the same copy semantics as any other rank, without the trip.
      const copy = decodeValue(body, frames);
      this.box.deliver({ value: copy, source: dest, ch: channel, ...(meta ? { meta } : {}) });
      return;
    }
    const msg: CommMsg = {
      type: "comm",
      g: this.group.g,
      to: this.group.ranks[dest] as number,
      from: this.rank,
      ch: channel,
      pf: [frames.length],
      ...(meta ? { meta: { op: meta.op, ...(meta.root !== undefined ? { root: meta.root } : {}) } } : {}),
    };
    this.out(msg, [{ body, frames }]);
  }

  recv(source: number, channel: string, options?: CallOptions): Promise<Received> {
    try {
      this.checkRank(source, "receive from");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.wait(source, channel, options);
  }

  recvAny(channel: string, options?: CallOptions): Promise<Received & { source: number }> {
    return this.wait(undefined, channel, options);
  }

  watch(channel: string, handler: (source: number, value: unknown) => void): () => void {
    const box = this.box;
    box.watchers.set(channel, handler);
    for (let q = box.take(undefined, channel); q && !box.error; q = box.take(undefined, channel))
      handler(q.source, q.value);
    return () => {
      if (box.watchers.get(channel) === handler) box.watchers.delete(channel);
    };
  }

  release(value: unknown): void {
    if (ArrayBuffer.isView(value)) recycle(value.buffer);
  }

  abort(error: { code: string; message: string }): void {
    this.box.fail(commError(error.code, error.message));
    const to = this.group.ranks.filter((_, r) => r !== this.rank);
    if (to.length)
      this.out({ type: "comm_abort", g: this.group.g, to, error: { code: error.code, message: error.message } }, []);
  }

  private checkRank(r: number, what: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size)
      throw new CommUsageError(`Cannot ${what} rank ${String(r)}: this call's ranks are 0 to ${this.size - 1}.`);
  }

  private wait(source: number | undefined, ch: string, options: CallOptions = {}): Promise<Queued> {
    const box = this.box;
    if (box.error) return Promise.reject(box.error);
    const ready = box.take(source, ch);
    if (ready) return Promise.resolve(ready);
    const { timeout, signal } = options;
    if (signal?.aborted || this.taskSignal.aborted)
      return Promise.reject(new CommCancelledError(`${this.where(source, ch)} was cancelled before it began.`));
    return new Promise<Queued>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        source,
        ch,
        settle: (r) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", waiter.cancel);
          const i = box.waiters.indexOf(waiter);
          if (i >= 0) box.waiters.splice(i, 1);
          if (r instanceof Error) reject(r);
          else resolve(r);
        },
        cancel: () =>
          waiter.settle(new CommCancelledError(`${this.where(source, ch)} was cancelled: its signal aborted.`)),
      };
      if (timeout !== undefined) {
        timer = setTimeout(
          () =>
            waiter.settle(
              new CommTimeoutError(
                `${this.where(source, ch)} got no message within ${timeout} ms. Check that the sender sends with the same tag, or allow a longer timeout.`,
              ),
            ),
          timeout,
        );
      }
      signal?.addEventListener("abort", waiter.cancel, { once: true });
      box.waiters.push(waiter);
    });
  }

  /** `recv from rank 1 on tag 3 (rank 0 of 2)`, for errors (made only when one is). */
  private where(source: number | undefined, ch: string): string {
    const from = source === undefined ? "any rank" : `rank ${source}`;
    return `recv from ${from} on ${describe(ch)} (rank ${this.rank} of ${this.size})`;
  }
}
