import type { EngineInfo, HubLostError } from "@ptcluster/protocol";

/** What a `Client` emits. */
export interface ClientEvents {
  engine_up: [EngineInfo];
  engine_down: [{ id: number; reason: string }];
  /** An engine's namespace was reset (its executor replaced after a timeout or a forced cancel). */
  engine_reset: [{ id: number; reason: string }];
  /** The controller was judged lost: pending work failed with this error; calls fail until `reconnected`. */
  hub_lost: [HubLostError];
  /** The controller answers again after `hub_lost`: this client connected anew (a new `id`) and takes calls. */
  reconnected: [];
  close: [];
}

/** Where the session reports events: the `Client` itself, an `EventEmitter<ClientEvents>`. */
export interface ClientEmitter {
  emit<K extends keyof ClientEvents>(event: K, ...args: ClientEvents[K]): boolean;
}
