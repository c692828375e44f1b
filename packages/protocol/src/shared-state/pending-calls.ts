import { sharedStateError } from "../shared-state-errors.js";
import { partFrameCounts } from "../codec/wire.js";
import type { Part } from "../part.js";
import type { SharedCallMsg, SharedReplyMsg, SharedWithdrawMsg } from "./messages.js";
import type { OpenSpec, SharedAnswer, SharedArgs, SharedTransport } from "./wire.js";

interface Pending {
  resolve(a: SharedAnswer): void;
  reject(e: Error): void;
}

/**
 * The calls a proxy side has sent and not yet had answered, matched to replies by request id: the
 * `SharedTransport` of a client session and of an engine's executor. An aborted signal sends a
 * withdrawal (the controller answers the call as cancelled); a lost connection fails them all.
 */
export class PendingSharedCalls implements SharedTransport {
  private nextRid = 1;
  private readonly pending = new Map<number, Pending>();
  /** `open` calls (an array's initial values) not answered yet, and who waits for none to be left. */
  private opens = 0;
  private readonly openWaiters: Array<() => void> = [];

  /**
   * `send` puts a message on its way (to the controller, or to the supervisor that relays it);
   * `changed` is told when calls start or stop being pending (a client holds its process meanwhile).
   */
  constructor(
    private readonly send: (msg: SharedCallMsg | SharedWithdrawMsg, parts: readonly Part[]) => void,
    private readonly changed: () => void = () => undefined,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * While an object is being created (`shared.array(name, values)`) and the controller has not
   * answered: a promise that resolves once no `open` call is pending (answered or failed).
   */
  opensPending(): Promise<void> | undefined {
    return this.opens === 0 ? undefined : new Promise((resolve) => this.openWaiters.push(resolve));
  }

  call(
    name: string,
    spec: OpenSpec,
    op: string,
    args: SharedArgs,
    parts: readonly Part[],
    signal?: AbortSignal,
  ): Promise<SharedAnswer> {
    const rid = this.nextRid++;
    const opens = op === "open";
    if (opens) this.opens++;
    return new Promise<SharedAnswer>((resolve, reject) => {
      const onAbort = () => this.send({ type: "shared_withdraw", rid }, []);
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(rid);
        if (this.pending.size === 0) this.changed();
        if (opens && --this.opens === 0) for (const w of this.openWaiters.splice(0)) w();
      };
      this.pending.set(rid, {
        resolve: (a) => {
          done();
          resolve(a);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      if (this.pending.size === 1) this.changed();
      signal?.addEventListener("abort", onAbort, { once: true });
      const msg: SharedCallMsg = { type: "shared", rid, name, spec, op, args };
      if (parts.length > 0) msg.pf = partFrameCounts(parts);
      try {
        this.send(msg, parts);
      } catch (err) {
        this.pending.get(rid)?.reject(err as Error);
      }
    });
  }

  /** A reply came: settles its call (one nobody waits for any more is dropped). */
  settle(msg: SharedReplyMsg, parts: readonly Part[]): void {
    const p = this.pending.get(msg.rid);
    if (!p) return;
    if (msg.ok) p.resolve({ value: msg.value, parts });
    else
      p.reject(
        sharedStateError(msg.error?.code ?? "ERR_PTC_PROTOCOL", msg.error?.message ?? "shared-state call failed"),
      );
  }

  /** Fails every pending call (the connection is gone, or the executor is being replaced). */
  failAll(err: Error): void {
    for (const p of [...this.pending.values()]) p.reject(err);
  }
}
