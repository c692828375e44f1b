import type { EngineInfo } from "@ptcluster/protocol";
import type { ClientEmitter } from "./client-events.js";

/**
 * The engines this client knows, kept current from the controller's notifications, and caught up
 * from a `status` request when a notification was missed (they are not reliable: those sent before
 * the subscription took effect are lost).
 */
export class Roster {
  readonly #engines = new Map<number, EngineInfo>();
  #refreshing = false;
  #seeded = false;
  readonly #events: ClientEmitter;

  constructor(events: ClientEmitter) {
    this.#events = events;
  }

  /** Engine ids, sorted. */
  get ids(): number[] {
    return [...this.#engines.keys()].sort((a, b) => a - b);
  }

  get size(): number {
    return this.#engines.size;
  }

  info(id: number): EngineInfo | undefined {
    return this.#engines.get(id);
  }

  /**
   * The engines the controller listed when this client connected: no events the first time
   * (nobody listens yet); when it connects again after the controller was lost, the differences
   * are events, as if notified.
   */
  seed(engines: readonly EngineInfo[]): void {
    if (this.#seeded) return this.#reconcile(engines);
    this.#seeded = true;
    for (const e of engines) this.#engines.set(e.id, e);
  }

  up(e: EngineInfo): void {
    this.#engines.set(e.id, e);
    this.#events.emit("engine_up", e);
  }

  down(id: number, reason: string): void {
    if (this.#engines.delete(id)) this.#events.emit("engine_down", { id, reason });
  }

  /** The controller's tick says how many engines it has: if that is not what we know, catch up. */
  tick(engines: number, status: () => Promise<{ engines: readonly EngineInfo[] }>): void {
    if (engines !== this.#engines.size) void this.#catchUp(status);
  }

  async #catchUp(status: () => Promise<{ engines: readonly EngineInfo[] }>): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      this.#reconcile((await status()).engines);
    } catch {
      /* the liveness check reports a lost controller */
    } finally {
      this.#refreshing = false;
    }
  }

  /** Engines listed and not known are up (known ones take the listed info); known and not listed are down. */
  #reconcile(engines: readonly EngineInfo[]): void {
    const seen = new Set<number>();
    for (const e of engines) {
      seen.add(e.id);
      if (this.#engines.has(e.id)) this.#engines.set(e.id, e);
      else this.up(e);
    }
    for (const id of [...this.#engines.keys()]) if (!seen.has(id)) this.down(id, "no longer registered");
  }
}
