import type { EngineInfo } from "./engine-info.js";

// What the controller publishes to every client (its notification socket): engines coming and
// going, its tick, a namespace reset, its shutdown.

export interface EngineUpMsg {
  type: "engine_up";
  engine: EngineInfo;
}
export interface EngineDownMsg {
  type: "engine_down";
  id: number;
  reason: string;
}
export interface TickMsg {
  type: "tick";
  t: number;
  engines: number;
}
/** An engine's namespace was reset (its executor was replaced). */
export interface EngineResetMsg {
  type: "engine_reset";
  id: number;
  reason: string;
}
export interface ShutdownNoticeMsg {
  type: "shutdown_notice";
  reason: string;
}

export type Notification = EngineUpMsg | EngineDownMsg | TickMsg | ShutdownNoticeMsg | EngineResetMsg;
