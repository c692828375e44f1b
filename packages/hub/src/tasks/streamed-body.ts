import type { OutStream, StreamSink } from "@ptcluster/protocol";

/** What `rc.status()` shows of cut-through (`cut-through.ts`). */
export interface CutThroughCounts {
  /** Messages passed on fragment by fragment (task bodies, results). */
  streams: number;
  /** Fragments passed on before their message's last fragment had arrived. */
  forwardedEarly: number;
  /** Streams that ended without their last fragment (their sender forgotten or restarted). */
  aborted: number;
  /** Streams coming in now. */
  open: number;
  /** Bytes of fragments held for task bodies not placed yet, or kept whole to run again. */
  heldBytes: number;
}

/**
 * A load-balanced task's body whose binary frames arrive in fragments (cut-through): held until
 * the task is placed, then passed on to its engine (`attach`), and the rest as it comes. Passed on
 * before it was complete, it is gone from the controller (the task cannot run elsewhere); complete
 * before it was placed, it is held whole like any task body, and can be sent again (`reusable`).
 */
export class StreamedBody implements StreamSink {
  private held: Buffer[][] = [];
  private heldBytes = 0;
  /** Where pieces go as they come: attached before the last one arrived. */
  private passing: OutStream | undefined;
  private passedIncomplete = false;
  private ended = false;
  private aborted = false;
  /** Its task was cancelled while it was being passed on: the rest is dropped as it comes. */
  private dropping = false;

  constructor(
    readonly frameLengths: number[],
    private readonly counts: CutThroughCounts,
    private readonly onAbort: () => void,
  ) {
    counts.streams++;
    counts.open++;
  }

  /** Complete and held whole: it can be sent (again) to any engine. */
  get reusable(): boolean {
    return this.ended && !this.aborted && !this.passedIncomplete;
  }

  /** It can be sent: not aborted, and not passed on before it was complete. */
  get sendable(): boolean {
    return !this.aborted && !this.passedIncomplete;
  }

  pieces(pieces: Buffer[], last: boolean): void {
    if (last) {
      this.ended = true;
      this.counts.open--;
    }
    if (this.dropping) return;
    if (this.passing) {
      this.passing.pieces(pieces, last);
      if (last) this.passing = undefined;
      else this.counts.forwardedEarly++;
      return;
    }
    this.held.push(pieces);
    for (const p of pieces) this.heldBytes += p.length;
    for (const p of pieces) this.counts.heldBytes += p.length;
  }

  /** Sends what came so far on `out`, then the rest as it comes (a complete body is sent whole and kept). */
  attach(out: OutStream): void {
    const held = this.held;
    if (this.ended) {
      held.forEach((p, i) => out.pieces(p, i === held.length - 1));
      return;
    }
    for (const p of held) out.pieces(p, false);
    this.release();
    this.passing = out;
    this.passedIncomplete = true;
  }

  /**
   * Its task is cancelled: if its engine is still receiving it, that stream is aborted (the engine
   * drops its half, never runs it) and true is returned; the rest is dropped as it comes.
   */
  cut(): boolean {
    if (!this.passing) return false;
    this.passing.abort();
    this.passing = undefined;
    this.dropping = true;
    return true;
  }

  abort(): void {
    if (this.aborted || this.ended) return;
    this.aborted = true;
    this.counts.open--;
    this.counts.aborted++;
    this.release();
    this.passing?.abort();
    this.passing = undefined;
    this.onAbort();
  }

  /** Its task ended: nothing more to hold. */
  drop(): void {
    this.release();
  }

  private release(): void {
    this.counts.heldBytes -= this.heldBytes;
    this.heldBytes = 0;
    this.held = [];
  }
}
