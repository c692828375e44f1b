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
   * A client sent `src` as the source of `hash`: stores it if it really hashes to it (no client can
   * change what another's hash runs), and the client holds it. False for a source that does not match.
   */
  offer(hash: string, src: string): boolean {
    let e = this.entries.get(hash);
    if (!e) {
      if (sourceHash(src) !== hash) return false;
      this.entries.set(hash, (e = { src, holders: 0 }));
    }
    e.holders++;
    return true;
  }

  get(hash: string): string | undefined {
    return this.entries.get(hash)?.src;
  }

  /** One more holder of `hash`, if its source is kept (true); only a holder may `release`. */
  hold(hash: string): boolean {
    const e = this.entries.get(hash);
    if (e) e.holders++;
    return e !== undefined;
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
