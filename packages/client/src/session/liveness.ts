/**
 * Whether the controller is still there. The client pings every heartbeat period (so the
 * controller never takes an idle client for dead) and judges the controller by two signs: it has
 * been silent too long, or it has left this client's messages unacknowledged too long (a link cut
 * one way). The decision is a pure function, `judgeLiveness`; `Liveness` runs it on a timer.
 */
import { HubLostError } from "@ptcluster/protocol";

export type LivenessVerdict =
  | { kind: "alive" }
  /** This event loop was blocked: what arrived meanwhile is unread, so judge next time. */
  | { kind: "stalled" }
  /** Nothing heard for `limitMs`. */
  | { kind: "silent"; limitMs: number }
  /** Messages unacknowledged for `limitMs`. */
  | { kind: "unacknowledged"; limitMs: number };

export interface LivenessFacts {
  now: number;
  /** When the previous check ran. */
  lastCheck: number;
  /** When anything last came from the controller. */
  lastHeard: number;
  /** The controller's heartbeat period (ms). */
  heartbeatMs: number;
  /** Whether a message sent has gone unacknowledged for `ms` (asked only when needed). */
  overdue(ms: number): boolean;
}

/** The period of pings and checks. */
export const checkPeriod = (heartbeatMs: number): number => Math.max(250, heartbeatMs);

export function judgeLiveness(f: LivenessFacts): LivenessVerdict {
  // After this client's own event loop was blocked (a long synchronous loop, a busy machine),
  // timers run before the socket is read: what the controller sent meanwhile is still unread.
  if (f.now - f.lastCheck > 2 * checkPeriod(f.heartbeatMs)) return { kind: "stalled" };
  const limitMs = Math.max(3_000, f.heartbeatMs * 8);
  if (f.now - f.lastHeard > limitMs) return { kind: "silent", limitMs };
  // Twice the silence limit: a message lost several times over is resent within it.
  if (f.overdue(2 * limitMs)) return { kind: "unacknowledged", limitMs: 2 * limitMs };
  return { kind: "alive" };
}

export interface LivenessOptions {
  heartbeatMs: number;
  ping(): void;
  overdue(ms: number): boolean;
  lost(verdict: Exclude<LivenessVerdict, { kind: "alive" | "stalled" }>): void;
}

/** Pings and judges every heartbeat period, while the process lives (the timer does not hold it). */
export class Liveness {
  #lastHeard = Date.now();
  #lastCheck = Date.now();
  #timer: NodeJS.Timeout | undefined;
  readonly #opts: LivenessOptions;

  constructor(opts: LivenessOptions) {
    this.#opts = opts;
  }

  /** Something came from the controller. */
  heard(): void {
    this.#lastHeard = Date.now();
  }

  start(): void {
    this.#lastHeard = this.#lastCheck = Date.now();
    this.#timer = setInterval(() => this.#check(), checkPeriod(this.#opts.heartbeatMs));
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    this.#opts.ping();
    const now = Date.now();
    const verdict = judgeLiveness({
      now,
      lastCheck: this.#lastCheck,
      lastHeard: this.#lastHeard,
      heartbeatMs: this.#opts.heartbeatMs,
      overdue: this.#opts.overdue,
    });
    this.#lastCheck = now;
    if (verdict.kind === "silent" || verdict.kind === "unacknowledged") this.#opts.lost(verdict);
  }
}

/** The error pending work fails with when the controller at `where` is judged gone. */
export function hubLostError(v: Extract<LivenessVerdict, { limitMs: number }>, where: string): HubLostError {
  return new HubLostError(
    (v.kind === "silent"
      ? `The controller at ${where} has been silent for ${v.limitMs} ms; it is presumed dead. `
      : `The controller at ${where} has not acknowledged this client's messages for ${v.limitMs} ms (it is stuck, or the link to it is cut one way); it is presumed lost. `) +
      "Pending calls failed (each may or may not have run). If the controller answers again, this client connects again by itself (event `reconnected`); if it exited, restart the cluster.",
  );
}

/** The error pending work fails with when the controller says it is shutting down (`reason`). */
export function hubStoppedError(reason: string): HubLostError {
  return new HubLostError(`The controller shut down (${reason}); pending work was not completed.`, { notice: reason });
}
