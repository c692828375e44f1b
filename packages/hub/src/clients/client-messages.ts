import { assertNever, type ClientToHub, type ConnectMsg, type Part } from "@ptcluster/protocol";
import type { Pipelines } from "../pipelines/pipeline-service.js";
import type { AdoptItem, ResultDelivery, ResultRecipient } from "../results/delivery.js";
import { LateAdoptions } from "../results/late-adoptions.js";
import type { SharedState } from "../shared-state/service.js";
import type { TaskCoordinator } from "../tasks/task-coordinator.js";
import type { TaskTable } from "../tasks/task-table.js";
import { handleRequest, type RequestDeps } from "./requests.js";
import type { ClientEntry } from "./sessions.js";

/** The parts of the controller that connected clients talk to. */
export interface ClientRoutes {
  coordinator: TaskCoordinator;
  tasks: TaskTable;
  requests: RequestDeps;
  shared: SharedState;
  delivery: ResultDelivery;
  pipelines: Pipelines;
  /** The client said goodbye. */
  bye(key: string): void;
}

/** A message of a connected client (`connect` aside), handed to the part of the controller it is for. */
export function routeClientMessage(
  r: ClientRoutes,
  client: ClientEntry,
  header: Exclude<ClientToHub, ConnectMsg>,
  parts: Part[],
): void {
  switch (header.type) {
    case "submit":
      r.coordinator.submit(client, header.tasks, parts);
      lateAdoptions(r).arrived(client.key, header.tasks);
      if (header.done) r.coordinator.directDone(client, header.done);
      return;
    case "request":
      handleRequest(r.requests, client.routingId, header.rid, header.req);
      return;
    case "cancel":
      r.coordinator.cancel(header.ids.flatMap((localId) => r.tasks.idsOf(client.key, localId)));
      return;
    case "bye":
      r.bye(client.key);
      return;
    case "ping":
      return;
    case "shared":
    case "shared_withdraw":
      r.shared.fromClient(client.key, client.routingId, header, parts);
      return;
    case "adopt":
      r.coordinator.adopted(r.delivery.adopt(client, header.items, lateAdoptions(r)));
      return;
    case "pipe_open":
    case "pipe_items":
    case "pipe_end":
    case "pipe_cancel":
      r.pipelines.fromClient(client, header, parts);
      return;
    default:
      assertNever(header);
  }
}

/** One set of held adoptions per controller (its routes), made when first needed. */
const late = new WeakMap<ClientRoutes, LateAdoptions>();

function lateAdoptions(r: ClientRoutes): LateAdoptions {
  let l = late.get(r);
  if (!l) {
    // Settled when the header comes, or at the bound: answered unless the asking client left.
    const settle = (client: ResultRecipient, items: AdoptItem[]) => {
      if (r.delivery.connected(client.key)) r.coordinator.adopted(r.delivery.adopt(client, items));
    };
    l = new LateAdoptions(settle);
    late.set(r, l);
  }
  return l;
}
