import type { StageKind, StageStats } from "@ptcluster/protocol";

/** Run times kept for the percentiles: the most recent items only, so the figures follow a change of pace. */
const RECENT = 1024;

/** One stage's counts and recent run times, for `pipeline.stats()`. */
export class StageCounters {
  done = 0;
  failed = 0;
  retried = 0;
  private readonly recent = new Float64Array(RECENT);
  private recorded = 0;
  private firstStart: number | undefined;
  private lastDone: number | undefined;

  /** The stage's first task went out. */
  started(now: number): void {
    this.firstStart ??= now;
  }

  /** An item finished here after `ms` on its engine. */
  finished(ms: number, now: number): void {
    this.done++;
    this.lastDone = now;
    this.recent[this.recorded++ % RECENT] = ms;
  }

  snapshot(stage: number, kind: StageKind, name: string, inFlight: number, now: number): StageStats {
    const n = Math.min(this.recorded, RECENT);
    const sorted = this.recent.slice(0, n).sort();
    const at = (q: number) => (n === 0 ? 0 : round(sorted[Math.min(n - 1, Math.floor(q * n))] as number));
    // A stage with nothing left to do is measured up to its last item, so its rate does not decay.
    const until = inFlight > 0 ? now : (this.lastDone ?? now);
    const secs = this.firstStart === undefined ? 0 : (until - this.firstStart) / 1000;
    return {
      stage,
      kind,
      name,
      inFlight,
      done: this.done,
      failed: this.failed,
      retried: this.retried,
      itemsPerSec: secs > 0 ? Math.round(this.done / secs) : 0,
      p50Ms: at(0.5),
      p95Ms: at(0.95),
    };
  }
}

function round(ms: number): number {
  return ms >= 10 ? Math.round(ms) : Math.round(ms * 1000) / 1000;
}
