/**
 * The tasks an executor is running, in memory both threads share: the executor writes a task's
 * id and start time into a free slot before the task's code runs, and clears it when the task
 * ends. Starts also travel in the executor's batched reports, but a report waits for a turn of
 * the executor's event loop, which a task that never yields never gives: the supervisor reads
 * this table when it must know (heartbeat, timeouts, replacing the executor).
 *
 * Layout: per slot two float64 (id or -1, start time), then an int32 sequence counter that makes
 * each read see whole slots (a seqlock: odd while the executor writes).
 */
export class StartTable {
  private readonly slots: Float64Array;
  private readonly seq: Int32Array;

  /** Memory for `concurrency` slots, to hand to the executor thread. */
  static allocate(concurrency: number): SharedArrayBuffer {
    const buf = new SharedArrayBuffer(16 * concurrency + 4);
    new Float64Array(buf, 0, 2 * concurrency).fill(-1);
    return buf;
  }

  constructor(buffer: SharedArrayBuffer) {
    const n = (buffer.byteLength - 4) / 16;
    this.slots = new Float64Array(buffer, 0, 2 * n);
    this.seq = new Int32Array(buffer, 16 * n, 1);
  }

  get size(): number {
    return this.slots.length / 2;
  }

  /** Executor: task `id` starts in `slot` at `at`. */
  set(slot: number, id: number, at: number): void {
    Atomics.add(this.seq, 0, 1);
    this.slots[2 * slot] = id;
    this.slots[2 * slot + 1] = at;
    Atomics.add(this.seq, 0, 1);
  }

  /** Executor: the task in `slot` has ended. */
  clear(slot: number): void {
    this.set(slot, -1, -1);
  }

  /** Supervisor: the tasks running now, as `[id, started]`. */
  read(): Array<[number, number]> {
    // An executor stopped in the middle of a write leaves the counter odd for good: after a
    // while, take the slots as they are rather than wait forever.
    for (let attempt = 0; ; attempt++) {
      const before = Atomics.load(this.seq, 0);
      if (before % 2 === 0 || attempt >= 1_000) {
        const out: Array<[number, number]> = [];
        for (let i = 0; i < this.slots.length; i += 2) {
          const id = this.slots[i] as number;
          if (id >= 0) out.push([id, this.slots[i + 1] as number]);
        }
        if (Atomics.load(this.seq, 0) === before) return out;
      }
    }
  }
}
