import type { EngineInfo } from "@ptcluster/protocol";

/** Where the controller is in its life. */
export type HubState = "starting" | "running" | "stopping" | "stopped";

/** What the controller tells the process it runs in (its launchers follow engines with these). */
export interface HubEvents {
  engine_up: [EngineInfo];
  engine_down: [{ id: number; reason: string }];
}
