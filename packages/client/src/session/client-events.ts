import type { EngineInfo, HubLostError } from "@ptcluster/protocol";

/** What a `Client` emits. */
export interface ClientEvents {
  engine_up: [EngineInfo];
  engine_down: [{ id: number; reason: string }];
  /** An engine's namespace was reset (its executor replaced after a timeout or a forced cancel). */
  engine_reset: [{ id: number; reason: string }];
  hub_lost: [HubLostError];
  close: [];
}

/** Where the session reports events: the `Client` itself, an `EventEmitter<ClientEvents>`. */
export interface ClientEmitter {
  emit<K extends keyof ClientEvents>(event: K, ...args: ClientEvents[K]): boolean;
}
