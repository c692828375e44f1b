import { assertNever, type ClientToHub, type ConnectMsg, type Part } from "@ptcluster/protocol";
import type { Pipelines } from "../pipelines/pipeline-service.js";
import type { ResultDelivery } from "../results/delivery.js";
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
      r.tasks.awaited.arrived(client.key, header.tasks);
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
    case "adopt": {
      // A task of a connected client not known yet: adopted when its header comes, else unknown.
      const adopt = (items: typeof header.items) => {
        if (r.delivery.connected(client.key)) r.coordinator.adopted(r.delivery.adopt(client, items));
      };
      const late = (item: (typeof header.items)[number]) =>
        r.tasks.awaited.wait(
          item.from,
          item.id,
          () => adopt([item]),
          () => adopt([item]),
        );
      r.coordinator.adopted(r.delivery.adopt(client, header.items, late));
      return;
    }
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
