import type {
  Channel,
  ClientToHub,
  EngineTask,
  EngineToHub,
  HubToClient,
  HubToEngine,
  TaskResult,
} from "@ptcluster/protocol";
import { Outbox } from "../clients/outbox.js";

/** What the outgoing batches need from the controller; channels are read when a batch goes out. */
export interface OutgoingDeps {
  /** Function sources engines should drop, if any (sent ahead of the tasks). */
  forgotten(): string[] | undefined;
  engines(): Iterable<{ routingId: Buffer }>;
  engineCh(): Channel<EngineToHub, HubToEngine>;
  clientCh(): Channel<ClientToHub, HubToClient>;
}

/**
 * Tasks for engines and results for clients, gathered while the controller handles what arrived
 * in one turn of the event loop, then sent as one message per peer.
 */
export class OutgoingBatches {
  readonly toEngines = new Outbox<EngineTask>();
  readonly toClients = new Outbox<TaskResult>();
  private scheduled = false;

  constructor(private readonly deps: OutgoingDeps) {}

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // After the poll phase: everything received in this turn is handled first, then each peer
    // gets one message (a burst of results from an engine becomes one message to its client).
    setImmediate(() => {
      this.scheduled = false;
      const { deps } = this;
      const fns = deps.forgotten();
      // Ahead of the tasks in the same ordered stream: a task that brings a dropped source back
      // (it carries the source again) reaches the engine after the engine forgot the old copy.
      if (fns)
        for (const e of deps.engines()) deps.engineCh().send({ type: "forget_fns", fns }, undefined, e.routingId);
      this.toEngines.flush((to, tasks, parts) =>
        deps.engineCh().send({ type: "tasks", tasks, pf: parts.map((p) => p.frames.length) }, parts, to),
      );
      this.toClients.flush((to, results, parts) =>
        deps.clientCh().send({ type: "results", results, pf: parts.map((p) => p.frames.length) }, parts, to),
      );
    });
  }
}
