import type { CommAbortMsg, CommMsg } from "@ptcluster/protocol";

/**
 * The receiving side of `ps`: the highest number delivered per direct link, so a message resent by
 * relay after its link failed, which may have arrived directly already, is delivered once. The two
 * paths each keep order and the resend starts at the first unacknowledged message, so a message
 * is fresh exactly when its number is above the highest seen. Bounded: the oldest links go first.
 */
export class SeenLinks {
  private readonly last = new Map<string, number>();

  constructor(private readonly max = 4_096) {}

  fresh(msg: CommMsg | CommAbortMsg): boolean {
    if (!msg.ps) return true;
    const [lid, n] = msg.ps;
    const seen = this.last.get(lid) ?? 0;
    if (n <= seen) return false;
    this.last.delete(lid);
    this.last.set(lid, n);
    if (this.last.size > this.max) this.last.delete(this.last.keys().next().value as string);
    return true;
  }
}
