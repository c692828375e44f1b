import { assertNever, type EngineInfo, type Notification } from "@ptcluster/protocol";
import type { ClientEmitter } from "./client-events.js";
import type { Roster } from "./roster.js";

/** What the controller's notifications change in a session. */
export interface NotificationTarget {
  roster: Roster;
  events: ClientEmitter;
  connected(): boolean;
  /** The engine is gone: the direct link to it closes. */
  engineDown(id: number): void;
  /** The controller's engine list (a `status` request). */
  engines(): Promise<{ engines: EngineInfo[] }>;
  /** The controller says it stops (`reason`). */
  stopping(reason: string): void;
}

export function onNotification(n: Notification, t: NotificationTarget): void {
  switch (n.type) {
    case "engine_up":
      t.roster.up(n.engine);
      break;
    case "engine_down":
      t.roster.down(n.id, n.reason);
      t.engineDown(n.id);
      break;
    case "tick":
      // Notifications sent before our subscription took effect are lost: catch up from the controller.
      if (t.connected()) t.roster.tick(n.engines, () => t.engines());
      break;
    case "shutdown_notice":
      t.stopping(n.reason);
      break;
    case "engine_reset":
      t.events.emit("engine_reset", { id: n.id, reason: n.reason });
      break;
    default:
      assertNever(n, "notification");
  }
}
