import type { Part, TaskResult } from "@ptcluster/protocol";

interface Entry {
  results: Array<{ result: TaskResult; part: Part }>;
  /** Results still to come under this id (tasks still running). */
  pending: number;
  bytes: number;
  expires: number;
}

/**
 * Results of clients that went away, kept for a while so a new client can fetch them by task id
 * (`rc.getResult`). Bounded by age, count and size; the oldest go first.
 */
export class ResultStore {
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  /**
   * Makes a kept result's bytes its own: a result that went through shared memory holds only a
   * reference to a file that goes with its client (the controller reads it in, `ShmFolder.keepBytes`).
   */
  ownBytes: (clientKey: string, part: Part) => Part = (_key, part) => part;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 100_000,
    private readonly maxBytes = 512 * 1024 * 1024,
  ) {}

  private static key(clientKey: string, localId: number): string {
    return `${clientKey}:${localId}`;
  }

  /** Keeps a result; `pending` is how many more are still running under the same id. */
  put(clientKey: string, localId: number, result: TaskResult, kept: Part, pending: number): void {
    const part = this.ownBytes(clientKey, kept);
    const k = ResultStore.key(clientKey, localId);
    let e = this.entries.get(k);
    if (!e) {
      e = { results: [], pending, bytes: 0, expires: 0 };
      this.entries.set(k, e);
    }
    const size = part.body.length + part.frames.reduce((n, f) => n + f.length, 0);
    e.results.push({ result, part });
    e.pending = pending;
    e.bytes += size;
    e.expires = Date.now() + this.ttlMs;
    this.total += size;
    this.trim();
  }

  /** Removes and returns what is kept under this id. */
  take(clientKey: string, localId: number): Entry | undefined {
    const k = ResultStore.key(clientKey, localId);
    const e = this.entries.get(k);
    if (!e) return undefined;
    this.entries.delete(k);
    this.total -= e.bytes;
    return e;
  }

  /** Bytes of the results kept. */
  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops what has expired, then the oldest while over the bounds. */
  purge(now = Date.now()): void {
    for (const [k, e] of this.entries) {
      if (e.expires <= now) {
        this.entries.delete(k);
        this.total -= e.bytes;
      }
    }
  }

  private trim(): void {
    while (this.entries.size > this.maxEntries || this.total > this.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.total -= this.entries.get(oldest)?.bytes ?? 0;
      this.entries.delete(oldest);
    }
  }
}
