import {
  ShmEndpoint,
  ShmHostDir,
  deriveShmKey,
  hasRefs,
  type Logger,
  type Part,
  type ProfilePaths,
} from "@ptcluster/protocol";

/** How long the controller waits for a result file still being written when it keeps it (ms). */
const KEEP_WAIT_MS = 500;

/**
 * The controller's shared-memory folder (docs/architecture.md, "Same-host data"): made at start
 * with its host token (or not at all with a threshold of 0), swept of what a killed controller
 * left, and removed at stop. On the way to clients the controller never reads the files; it reads
 * one only to keep a result for a client that left ({@link keepBytes}), and removes those of
 * clients and engines it declared gone.
 */
export class ShmFolder {
  private readonly host: ShmHostDir | undefined;
  private readonly key: Buffer;

  constructor(
    paths: ProfilePaths,
    threshold: number,
    clusterKey: Buffer,
    private readonly log: Logger,
  ) {
    this.key = deriveShmKey(clusterKey);
    if (threshold <= 0) return;
    try {
      this.host = ShmHostDir.open(paths, threshold);
    } catch (err) {
      // Values still arrive, through the controller: only speed is lost.
      log.warn({ err }, "no shared-memory folder; large values travel over the network");
    }
  }

  /** For the connection files. */
  get advert(): ShmHostDir["advert"] | undefined {
    return this.host?.advert;
  }

  /**
   * A result kept for `rc.getResult` after its client left: its files were written for that client
   * and go with it, so their bytes are read into the controller (checked, as any reader does) and
   * kept with the result, to reach whichever client asks, on any host. A file that cannot be read
   * (its writer died mid-write, or the client read it before it went) leaves the reference, and
   * the asking client gets `ShmUnavailableError`.
   */
  keepBytes(clientKey: string, part: Part): Part {
    const advert = this.host?.advert;
    if (!advert || !hasRefs(part)) return part;
    const reader = new ShmEndpoint({ ...advert, key: this.key, waitMs: KEEP_WAIT_MS }, `c${clientKey}`);
    try {
      return reader.materialize(part);
    } catch (err) {
      this.log.warn({ err }, "a result kept for a client that left could not be read from shared memory");
      return part;
    }
  }

  /**
   * Removes what is of no use any more: files written by or for clients and engines that are gone
   * (rules in `reclaimable`, protocol/src/shm/shm-dir.ts): called when one goes, and each tick.
   */
  reclaim(engine: (id: number) => boolean, client: (key: string) => boolean): void {
    this.host?.reclaim((p) => (p[0] === "e" ? engine(Number(p.slice(1))) : client(p.slice(1))));
  }

  close(): void {
    this.host?.close();
  }
}
