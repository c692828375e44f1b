import { sourceHash } from "@ptcluster/protocol";

/**
 * Sources of shipped functions, by hash, for engines that have not compiled them yet (a task
 * names its function by hash; a client sends each source once per connection).
 *
 * A source is kept while something may still need it: each connected client that sent it (it
 * will name the hash again without the source) and each load-balanced task that uses it (it may
 * run again on another engine). When the last holder lets go the source is dropped, so clients
 * that come and go with functions of their own leave nothing behind.
 */
export class FunctionSources {
  private readonly entries = new Map<string, { src: string; holders: number }>();

  /** `dropped` hears of each source let go. */
  constructor(private readonly dropped?: (hash: string) => void) {}

  /**
   * Stores `src` under `hash` if it really hashes to it (no client can change what another's hash
   * runs); the caller then holds it. False for a source that does not match its hash.
   */
  offer(hash: string, src: string): boolean {
    if (this.entries.has(hash)) return true;
    if (sourceHash(src) !== hash) return false;
    this.entries.set(hash, { src, holders: 0 });
    return true;
  }

  get(hash: string): string | undefined {
    return this.entries.get(hash)?.src;
  }

  /** One more holder of `hash` (if its source is kept). */
  hold(hash: string): void {
    const e = this.entries.get(hash);
    if (e) e.holders++;
  }

  /** One holder fewer; the source goes with the last one. */
  release(hash: string): void {
    const e = this.entries.get(hash);
    if (e && --e.holders <= 0) {
      this.entries.delete(hash);
      this.dropped?.(hash);
    }
  }

  /** Sources kept. */
  get size(): number {
    return this.entries.size;
  }
}
