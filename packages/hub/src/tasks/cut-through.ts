import type {
  Channel,
  ClientToHub,
  EngineTask,
  EngineToHub,
  HubToClient,
  HubToEngine,
  Logger,
  StreamSink,
  StreamStart,
  TaskResult,
} from "@ptcluster/protocol";
import type { ClientEntry } from "../clients/sessions.js";
import type { EngineEntry } from "../engines/engine-registry.js";
import type { ResultDelivery } from "../results/delivery.js";
import type { TaskCoordinator } from "./task-coordinator.js";
import { StreamedBody, type CutThroughCounts } from "./streamed-body.js";
import { isOn } from "./task-state.js";
import type { TaskTable } from "./task-table.js";

/**
 * Cut-through forwarding of large task bodies and results (docs/architecture.md, "Large values
 * across hosts"): a load-balanced task that a client sends in fragments is placed as soon as its
 * first fragment (header and part bodies) is in, and each later fragment goes on to the chosen
 * engine as it arrives, re-tagged for that link (`Channel.openStream`); a large result goes on to
 * its client the same way. The controller keeps a few fragments per stream (those its next hop has
 * not acknowledged), not the value, and the next hop receives while the first still sends.
 *
 * What it costs: a task body passed on before it was complete is not kept, so the task cannot run
 * again elsewhere: it is sent unmovable (its engine does not hand it back), and if its engine dies
 * it fails with `EngineLostError` instead of running again. A body complete before its task was
 * placed (it waited in the queue) is kept whole, as before, and runs again as usual. A result is
 * reported to the scheduler only once its last fragment has gone on, so an engine that dies while
 * sending it leaves its task to the usual rules (the client drops the half it had).
 *
 * `PTCLUSTER_CUT_THROUGH=0` in the controller's environment turns it off (messages in fragments
 * are then assembled and forwarded whole, as before).
 */
export const CUT_THROUGH_ENV = "PTCLUSTER_CUT_THROUGH";

export interface CutThroughDeps {
  coordinator: TaskCoordinator;
  tasks: TaskTable;
  delivery: ResultDelivery;
  engines: { byRoutingId(id: Buffer): EngineEntry | undefined };
  client(key: string): ClientEntry | undefined;
  engineCh(): Channel<EngineToHub, HubToEngine>;
  clientCh(): Channel<ClientToHub, HubToClient>;
  /** After a message was handled: send what the outboxes hold. */
  flush(): void;
  log: Logger;
}

export class CutThrough {
  readonly counts: CutThroughCounts = { streams: 0, forwardedEarly: 0, aborted: 0, open: 0, heldBytes: 0 };
  private readonly on: boolean;

  constructor(
    private readonly d: CutThroughDeps,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.on = env[CUT_THROUGH_ENV] !== "0";
  }

  /** A client's message in fragments: a lone load-balanced task is placed now and its body streamed. */
  fromClient(start: StreamStart<ClientToHub>): StreamSink | undefined {
    const { header, parts, from } = start;
    if (!this.on || !from || header.type !== "submit" || header.tasks.length !== 1 || parts.length !== 1) return;
    const client = this.d.client(from.toString("latin1"));
    const t = header.tasks[0];
    const part = parts[0];
    if (!client || !t?.lb || t.rs || !part) return;
    const body = new StreamedBody(part.frameLengths, this.counts, () => this.d.coordinator.streamAborted(hubId));
    const hubId = this.d.coordinator.submitStreamed(client, t, part.body, body);
    this.d.tasks.awaited.arrived(client.key, header.tasks);
    if (header.done) this.d.coordinator.directDone(client, header.done);
    this.d.flush();
    // Each fragment is word from its client: a slow upload does not make it look silent.
    return {
      pieces: (pieces, last) => {
        client.lastSeen = Date.now();
        body.pieces(pieces, last);
      },
      abort: () => body.abort(),
    };
  }

  /** Starts a task's message to its engine, its body passed on as it comes. */
  streamTo(to: Buffer, task: EngineTask, body: Buffer, streamed: StreamedBody): void {
    const frameLengths = streamed.frameLengths;
    const out = this.d
      .engineCh()
      .openStream({ type: "tasks", tasks: [task], pf: [frameLengths.length] }, [{ body, frameLengths }], to);
    streamed.attach(out);
  }

  /** An engine's message in fragments: a lone result for a connected client goes on to it as it comes. */
  fromEngine(start: StreamStart<EngineToHub>): StreamSink | undefined {
    const { header, parts, from } = start;
    if (!this.on || !from || header.type !== "engine_results" || header.results.length !== 1 || parts.length !== 1)
      return;
    const entry = this.d.engines.byRoutingId(from);
    const r = header.results[0] as TaskResult;
    const rec = this.d.tasks.get(r.id);
    const part = parts[0];
    if (!entry || !rec || !part || !r.ok || r.d || !isOn(rec.state, entry.info.id) || !entry.inflight.has(r.id)) return;
    if (!this.d.delivery.plain(rec)) return;
    const engine = entry.info.id;
    const out: TaskResult = { ...r, id: rec.localId, engine };
    if (rec.lb) out.attempts = rec.attempts;
    const stream = this.d
      .clientCh()
      .openStream({ type: "results", results: [out], pf: [part.frameLengths.length] }, [part], rec.client);
    this.counts.streams++;
    this.counts.open++;
    let ended = false;
    return {
      pieces: (pieces, last) => {
        entry.lastSeen = Date.now();
        stream.pieces(pieces, last);
        if (!last) {
          this.counts.forwardedEarly++;
          return;
        }
        ended = true;
        this.counts.open--;
        // Now the client has it all (or left, and will not): the record ends, the scheduler is told.
        this.d.coordinator.engineResults(entry, [r], [], { forwarded: r.id, lost: stream.broken });
        this.d.flush();
      },
      abort: () => {
        if (ended) return;
        ended = true;
        this.counts.open--;
        this.counts.aborted++;
        stream.abort();
      },
    };
  }
}
