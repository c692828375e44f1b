/**
 * The starts of an executor's tasks, in memory both threads share: the executor writes each task's
 * id here before its code runs (two stores, no message, no lock: only it writes). Its reports of
 * starts go in batches (per turn; every 20 ms for its clients' links' tasks), and a task that
 * holds the thread holds them back, so the supervisor reads this journal:
 * - once the executor has ended (`TaskRunner.reset`, `direct-exec-end.ts`): a task written here
 *   ran, or runs, and must not run again;
 * - while it runs, the starts not reported yet (`since`): a task cancelled behind one that holds
 *   the thread and not among them never started (`direct-cancels.ts`); one in the journal ran
 *   (`TaskRunner.forceStop`).
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
