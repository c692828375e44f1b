import { ShmHostDir, type Logger, type ProfilePaths } from "@ptcluster/protocol";

/**
 * The controller's shared-memory folder (docs/architecture.md, "Same-host data"): made at start
 * with its host token (or not at all with a threshold of 0), swept of what a killed controller
 * left, and removed at stop. The controller never reads the files: it only removes those of
 * clients and engines it declared gone.
 */
export class ShmFolder {
  private readonly host: ShmHostDir | undefined;

  constructor(paths: ProfilePaths, threshold: number, log: Logger) {
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
   * Removes the files written by or for a party that is gone (`e<id>` an engine, `c<key>` a
   * client): called when one goes, and each tick for files written after that (a result an engine
   * wrote for a client that left).
   */
  reclaim(engine: (id: number) => boolean, client: (key: string) => boolean): void {
    this.host?.reclaim((p) => (p[0] === "e" ? engine(Number(p.slice(1))) : client(p.slice(1))));
  }

  close(): void {
    this.host?.close();
  }
}
