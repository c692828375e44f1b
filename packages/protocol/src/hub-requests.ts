/** What a client may ask the controller (`request` messages), and what some answers hold. */
export type HubRequest =
  /** `gc`: run a full garbage collection first, so `memory` is what is live (a diagnostic). */
  | { what: "status"; gc?: boolean }
  | { what: "queue_status" }
  | { what: "shutdown"; engines?: number[] }
  /** Start `n` more engines with the controller's launchers (`ptcluster engines`). */
  | { what: "launch"; n: number; launcher: string; options: Record<string, unknown> }
  /**
   * Cancel tasks of any client (`rc.abort`, `ptcluster abort`): this client's `ids`, `tasks` by
   * msg id (`"<client id>:<n>"`, from `ar.msgIds`), every task queued or running on `engines`, or
   * `all` of them. Queued ones are dropped, running ones signalled, then forced; each owner's
   * result rejects with `TaskCancelledError`. Answered with an {@link AbortSummary}.
   */
  | { what: "abort"; ids?: number[]; tasks?: string[]; engines?: number[]; all?: boolean };

/** What an `abort` request cancelled: tasks (one per engine for a task sent to several) by where they were. */
export interface AbortSummary {
  /** Running on an engine (as of its last heartbeat): signalled, then forced after the grace period. */
  running: number;
  /** Not started: dropped from the controller's queue or an engine's. */
  queued: number;
  /** Engines that held any of them, sorted. */
  engines: number[];
  /**
   * Tasks named by msg id that the controller had not heard of (absent when none): a direct task
   * whose header is still on its way is cancelled when it comes within 1 s; otherwise the id named
   * a task that finished or was never sent, and nothing is done.
   */
  awaited?: number;
}
