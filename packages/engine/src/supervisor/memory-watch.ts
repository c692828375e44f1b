/**
 * The supervisor's watch on its executor's memory. `resourceLimits` bound only the V8 heap of the
 * executor thread; Buffers, typed arrays and ArrayBuffers live outside it and could grow until the
 * kernel kills the engine (or the machine stalls). The executor is a thread, so its memory is the
 * process's resident memory less the supervisor's own, measured before the first executor started
 * (`process.memoryUsage.rss()`: one read of /proc, a few µs). The supervisor's thread is never
 * blocked by user code, so the watch runs whatever the task does.
 *
 * Samples come more often the closer the executor is to its limit: the next one is due when memory
 * growing at `GROWTH_BYTES_PER_MS` (faster than a task filling Buffers manages) could reach the
 * limit, between `MIN_MS` and `MAX_MS`. Far from the limit the watch costs one read per `MAX_MS`.
 */
export const MIN_MS = 5;
export const MAX_MS = 200;
export const GROWTH_BYTES_PER_MS = 4 * 2 ** 20;

/** When to sample next, given the room left before the limit (bytes). */
export function nextSampleMs(headroom: number): number {
  return Math.min(MAX_MS, Math.max(MIN_MS, Math.floor(headroom / GROWTH_BYTES_PER_MS)));
}

export interface MemoryWatchOptions {
  limitMb: number;
  /** Resident memory of the process (bytes); tests pass their own. */
  rss?: (() => number) | undefined;
  /** The executor is over its limit (MB used): replace it. The watch stays off until `executorReady`. */
  onOver(usedMb: number): void;
}

export class MemoryWatch {
  private readonly rss: () => number;
  private readonly limit: number;
  /** The supervisor alone (bytes), taken before the first executor started. */
  private readonly supervisorOnly: number;
  /** Resident memory a fresh executor adds (bytes), measured on the first one. */
  private freshCost: number | undefined;
  /** What is subtracted from the process's memory to get the executor's. */
  private baseline: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: MemoryWatchOptions) {
    this.rss = opts.rss ?? (() => process.memoryUsage.rss());
    this.limit = opts.limitMb * 2 ** 20;
    this.supervisorOnly = this.baseline = this.rss();
  }

  /** The executor's memory now (bytes). */
  used(): number {
    return Math.max(0, this.rss() - this.baseline);
  }

  /**
   * A new executor is ready: watch it. After a replacement, memory the old one freed but the
   * allocator kept (not given back to the system) would count against the new one, and could have
   * it replaced again and again: the baseline rises by what is resident beyond a fresh executor.
   */
  executorReady(): void {
    const now = this.rss();
    if (this.freshCost === undefined) this.freshCost = Math.max(0, now - this.supervisorOnly);
    else this.baseline = Math.max(this.supervisorOnly, now - this.freshCost);
    this.schedule(0);
  }

  /** Stops watching (the executor is being replaced, or the engine stops). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.sample(), ms);
    // The watch alone never keeps the engine process alive.
    this.timer.unref();
  }

  private sample(): void {
    const used = this.used();
    if (used > this.limit) {
      this.stop();
      this.opts.onOver(Math.round(used / 2 ** 20));
      return;
    }
    this.schedule(nextSampleMs(this.limit - used));
  }
}
