/**
 * The starts of an executor's tasks, in memory both threads share: those it took from clients'
 * own links (`executor/client-tasks.ts`) and those the supervisor posted (`executor/worker.ts`).
 * The executor reports starts in batches (per turn, or every 20 ms for its links' tasks), so an
 * executor that ends without warning (out of memory, terminated) can take starts the supervisor
 * never heard of; their clients then send the tasks again on the lean link, and the supervisor
 * would post its own again. The supervisor reads this journal once the executor has ended: a task
 * written here ran (or runs) and must not run again (`TaskRunner.reset`, `direct-exec-end.ts`). It also reads the starts not reported yet while the executor runs, to
 * show that a task cancelled behind one that holds the thread never started (`ExecCancels`). The write is two stores before the task's code runs (no message, no
 * lock: only this executor writes, and it is read only once the executor is gone).
 *
 * Layout: an int32 count of writes (8 bytes with padding), then a ring of `SIZE` float64 task ids.
 */
export class ExecJournal {
  /** Starts kept: far more than an executor makes between two reports (20 ms). */
  static readonly SIZE = 4096;
  private readonly count: Int32Array;
  private readonly ids: Float64Array;

  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(8 + 8 * ExecJournal.SIZE);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.count = new Int32Array(buffer, 0, 1);
    this.ids = new Float64Array(buffer, 8, ExecJournal.SIZE);
  }

  /** Executor: task `id` starts now. */
  started(id: number): void {
    const n = this.count[0] as number;
    this.ids[n % ExecJournal.SIZE] = id;
    Atomics.store(this.count, 0, n + 1);
  }

  /** How many starts were written (a report that carries it covers every start before). */
  get written(): number {
    return Atomics.load(this.count, 0);
  }

  /**
   * Supervisor, while the executor runs: the ids of the starts from the `from`th on, oldest
   * first, or undefined if the ring no longer holds them all.
   */
  since(from: number): number[] | undefined {
    const n = Atomics.load(this.count, 0);
    if (n - from > ExecJournal.SIZE) return undefined;
    const out: number[] = [];
    for (let i = from; i < n; i++) out.push(this.ids[i % ExecJournal.SIZE] as number);
    // Still there after the read (the executor writes on while this runs).
    return Atomics.load(this.count, 0) - from > ExecJournal.SIZE ? undefined : out;
  }

  /** Supervisor, once the executor ended: the ids of the last `SIZE` starts, oldest first. */
  read(): number[] {
    const n = Atomics.load(this.count, 0);
    const out: number[] = [];
    for (let i = Math.max(0, n - ExecJournal.SIZE); i < n; i++) out.push(this.ids[i % ExecJournal.SIZE] as number);
    return out;
  }
}
