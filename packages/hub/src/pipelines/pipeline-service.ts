import type {
  ClientTask,
  HubToClient,
  Logger,
  Part,
  PipeCancelMsg,
  PipeEndMsg,
  PipeItemsMsg,
  PipeOpenMsg,
  StageStats,
  TaskResult,
} from "@ptcluster/protocol";
import type { EngineRegistry } from "../engines/engine-registry.js";
import type { TaskOwner } from "../tasks/task-coordinator.js";
import { PipelineRun } from "./pipeline-run.js";
import { checkStages } from "./stage-spec.js";

export type PipeMsg = PipeOpenMsg | PipeItemsMsg | PipeEndMsg | PipeCancelMsg;

export interface PipelineDeps {
  coordinator: {
    submitLb(owner: TaskOwner, task: ClientTask, part: Part, sink: (r: TaskResult, part: Part) => void): number;
    cancel(hubIds: number[]): void;
  };
  shipping: { offer(owner: TaskOwner, fn: string, src: string | undefined): void };
  engines: EngineRegistry;
  toClient(msg: HubToClient, parts: Part[] | undefined, to: Buffer): void;
  log: Logger;
}

/** Pipelines at most open per client at once: each holds items, so a runaway client cannot open them without end. */
const MAX_RUNS_PER_CLIENT = 1_000;

/**
 * The controller's part of `rc.pipeline(...)`: one {@link PipelineRun} per open pipeline, fed by
 * its client's messages; dispatching and sending what finished happen once per turn of the event
 * loop, for every run that changed.
 */
export class Pipelines {
  private readonly runs = new Map<string, { owner: TaskOwner; run: PipelineRun }>();
  private readonly dirty = new Set<string>();
  private scheduled = false;
  private localIds = 0;

  constructor(private readonly d: PipelineDeps) {}

  get size(): number {
    return this.runs.size;
  }

  fromClient(owner: TaskOwner, msg: PipeMsg, parts: Part[]): void {
    const key = `${owner.key}\u0000${msg.pipe}`;
    if (msg.type === "pipe_open") {
      this.open(owner, key, msg, parts);
      return;
    }
    const entry = this.runs.get(key);
    if (!entry) return; // finished, failed or never opened: the client learns that from what it got
    switch (msg.type) {
      case "pipe_items":
        entry.run.addItems(msg.first, parts);
        break;
      case "pipe_end":
        entry.run.end(msg.total);
        break;
      case "pipe_cancel":
        entry.run.cancel(typeof msg.reason === "string" ? msg.reason.slice(0, 200) : "cancelled");
        this.runs.delete(key);
        break;
    }
  }

  /** The pipelines running, for `rc.status()`: their client's id, their number on its connection, their stages' figures. */
  describe(): Array<{ client: string; pipe: number; stages: StageStats[] }> {
    const now = Date.now();
    return [...this.runs.values()].map(({ owner, run }) => ({
      client: owner.key,
      pipe: run.pipe,
      stages: run.stats(now),
    }));
  }

  /** A client went away: its pipelines stop, their tasks are cancelled. */
  clientGone(clientKey: string): void {
    for (const [key, { owner, run }] of this.runs) {
      if (owner.key !== clientKey) continue;
      run.cancel("its client went away");
      this.runs.delete(key);
    }
  }

  /** The heartbeat: runs whose items are slow still send their stats now and then. */
  tick(now: number): void {
    for (const [key, { run }] of this.runs) if (run.flush(now, true)) this.runs.delete(key);
  }

  private open(owner: TaskOwner, key: string, msg: PipeOpenMsg, parts: Part[]): void {
    const refuse = (message: string) =>
      this.d.toClient(
        { type: "pipe_failed", pipe: msg.pipe, sysError: { code: "ERR_PTC_PROTOCOL", message } },
        undefined,
        owner.routingId,
      );
    // The sources come with their hash's first use on the connection, and the client counts them
    // sent whatever becomes of this pipeline: keep them even when it is refused.
    if (Array.isArray(msg.stages))
      for (const s of msg.stages as unknown[]) {
        const { fn, src } = (s ?? {}) as { fn?: unknown; src?: unknown };
        if (typeof fn === "string" && typeof src === "string") this.d.shipping.offer(owner, fn, src);
      }
    if (this.runs.has(key)) return refuse(`Pipeline ${msg.pipe} is already open on this connection.`);
    let open = 0;
    for (const r of this.runs.values()) if (r.owner.key === owner.key) open++;
    if (open >= MAX_RUNS_PER_CLIENT) return refuse(`A client may have at most ${MAX_RUNS_PER_CLIENT} pipelines open.`);
    const problem =
      checkStages(msg.stages, parts.length) ??
      (msg.onError === "fail" || msg.onError === "skip" ? undefined : 'onError must be "fail" or "skip"');
    if (problem) return refuse(`Pipeline refused: ${problem}.`);
    // A stage none of whose engines exists would wait for ever (a view's tasks wait for targets
    // that may come; a pipeline's stage in the middle would hold every item behind it).
    const known = this.d.engines.ids();
    const lost = msg.stages.findIndex((s) => s.targets && !s.targets.some((id) => known.includes(id)));
    if (lost >= 0)
      return this.d.toClient(
        {
          type: "pipe_failed",
          pipe: msg.pipe,
          stage: lost,
          sysError: {
            code: "ERR_PTC_UNKNOWN_ENGINE",
            message: `It runs on engines [${msg.stages[lost]?.targets?.join(", ")}], none of which is registered (engines now: [${known.join(", ")}]); give the stage's \`engines\` ids from rc.ids.`,
          },
        },
        undefined,
        owner.routingId,
      );
    const { coordinator } = this.d;
    const run = new PipelineRun(msg.pipe, msg.stages, parts, msg.onError, {
      submit: (task, part, sink) => coordinator.submitLb(owner, task, part, sink),
      cancel: (ids) => coordinator.cancel(ids),
      slots: (targets) => this.slots(targets),
      engineIds: () => this.d.engines.ids(),
      nextLocalId: () => --this.localIds,
      send: (m, p) => this.d.toClient(m, p, owner.routingId),
      changed: () => this.changed(key),
      log: this.d.log,
    });
    this.runs.set(key, { owner, run });
  }

  private slots(targets: readonly number[] | undefined): number {
    let n = 0;
    if (targets) for (const id of targets) n += this.d.engines.get(id)?.info.concurrency ?? 0;
    else for (const e of this.d.engines.all()) n += e.info.concurrency;
    return n;
  }

  private changed(key: string): void {
    this.dirty.add(key);
    if (this.scheduled) return;
    this.scheduled = true;
    // After this turn: every message of the turn is in, so items travel in as few tasks as they can.
    setImmediate(() => this.settle());
  }

  private settle(): void {
    this.scheduled = false;
    const now = Date.now();
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      const entry = this.runs.get(key);
      if (!entry) continue;
      entry.run.dispatch();
      if (entry.run.flush(now)) this.runs.delete(key);
    }
  }
}
