import { assertNever, type EngineToHub, type Part } from "@ptcluster/protocol";
import type { SharedState } from "../shared-state/service.js";
import type { TaskCoordinator } from "../tasks/task-coordinator.js";
import type { CommRelay } from "./comm-relay.js";
import { noteHeartbeat } from "./engine-activity.js";
import type { EngineRegistry } from "./engine-registry.js";
import type { EngineRegistration } from "./registration.js";

/** The parts of the controller that engines talk to. */
export interface EngineRoutes {
  engines: EngineRegistry;
  registration: EngineRegistration;
  coordinator: TaskCoordinator;
  shared: SharedState;
  comm: CommRelay;
  /** The engine left (or unregistered): its tasks move or fail. */
  gone(id: number, reason: string): void;
  /** The engine's executor started afresh: everyone is told. */
  reset(id: number, reason: string): void;
}

/**
 * A message of an engine, handed to the part of the controller it is for. An engine the
 * controller does not know (forgotten, or the controller restarted) is asked to register again.
 */
export function routeEngineMessage(r: EngineRoutes, from: Buffer, header: EngineToHub, parts: Part[]): void {
  const entry = r.engines.byRoutingId(from);
  if (entry) entry.lastSeen = Date.now();
  else if (header.type !== "register" && header.type !== "unregister") r.registration.askToRegister(from);
  switch (header.type) {
    case "register":
      r.registration.register(from, header);
      break;
    case "heartbeat":
      if (entry) noteHeartbeat(entry, header, Date.now());
      break;
    case "ping":
      break; // a probe: its acknowledgement is what the engine wanted
    case "engine_results":
      if (entry) r.coordinator.engineResults(entry, header.results, parts);
      break;
    case "unregister":
      if (entry) r.gone(entry.info.id, `unregistered: ${header.reason}`);
      break;
    case "released":
      if (entry) r.coordinator.released(entry, header.ids);
      break;
    case "shared":
    case "shared_withdraw":
      if (entry) r.shared.fromEngine(entry.info.id, from, header, parts);
      break;
    case "comm":
    case "comm_abort":
      if (entry) r.comm.fromEngine(from, header, parts);
      break;
    case "peer_lookup":
      if (entry) r.comm.lookup(from, header);
      break;
    case "executor_reset":
      if (entry) {
        if (header.gen !== undefined) r.shared.executorGone(entry.info.id, header.gen);
        entry.knownFns.clear();
        r.reset(entry.info.id, header.reason);
      }
      break;
    default:
      assertNever(header);
  }
}
