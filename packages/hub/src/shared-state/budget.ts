import { SharedLimitError } from "@ptcluster/protocol";

/** Bytes of shared state the controller holds, against the limit the user set (`--max-shared-mb`). */
export class MemoryBudget {
  used = 0;

  constructor(readonly maxBytes: number) {}

  /** Counts `bytes` more; or, past the limit, counts nothing and returns the error to answer with. */
  take(bytes: number, what: string): SharedLimitError | undefined {
    if (this.used + bytes > this.maxBytes) {
      const mb = (n: number) => (n / 2 ** 20).toFixed(1);
      return new SharedLimitError(
        `Storing ${what} (${mb(bytes)} MB) would take the controller's shared state past its limit of ${mb(this.maxBytes)} MB (${mb(this.used)} MB in use). Delete objects you no longer need, keep large data out of shared state (push it, or pass it as an argument), or start the cluster with a larger --max-shared-mb.`,
      );
    }
    this.used += bytes;
    return undefined;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
