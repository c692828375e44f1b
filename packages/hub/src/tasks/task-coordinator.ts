import {
  EMPTY_PART,
  TaskCancelledError,
  type ClientTask,
  type EngineTask,
  type HubToEngine,
  type Logger,
  type Part,
  type TaskResult,
} from "@ptcluster/protocol";
import type { Outbox } from "../clients/outbox.js";
import type { EngineEntry, EngineRegistry } from "../engines/engine-registry.js";
import type { ResultDelivery } from "../results/delivery.js";
import type { SchedulerDecision, SchedulerEvent, SchedulerPort, TaskOutcome } from "../schedulers/port.js";
import { engineTask } from "./engine-task.js";
import type { FunctionShipping } from "./function-shipping.js";
import { outcomeOf } from "./outcome.js";
import type { StreamedBody } from "./streamed-body.js";
import { assign, cancel, complete, engineOf, fail, isOn, requestCancel, requeue } from "./task-state.js";
import type { ResultSink, TaskRecord, TaskTable } from "./task-table.js";

export { outcomeOf };

const PLACE: SchedulerEvent = { type: "place" };
const CANCELLED_CODE = new TaskCancelledError().code;
const BODY_GONE =
  "This task's arguments were passed on to its engine as they arrived (cut-through) and not kept, so it cannot run again after losing that engine; submit it again.";
const DELIVERED_DIRECTLY =
  "This task's result went straight from its engine to the client that submitted it, which acknowledged it: the controller never had it.";

/** A client as far as its tasks are concerned. */
export interface TaskOwner {
  routingId: Buffer;
  key: string;
  knownFns: Set<string>;
}

export interface TaskCoordinatorDeps {
  tasks: TaskTable;
  engines: EngineRegistry;
  scheduler: SchedulerPort;
  delivery: ResultDelivery;
  shipping: FunctionShipping;
  /** Tasks for engines, sent as one message per engine at the next flush. */
  engineOut: Outbox<EngineTask>;
  toEngine(msg: HubToEngine, to: Buffer): void;
  /** Starts a task message to an engine whose body's binary frames are still arriving (cut-through). */
  streamTo(to: Buffer, task: EngineTask, body: Buffer, streamed: StreamedBody): void;
  /** Sends what the outboxes hold, after this turn of the event loop (once however often asked). */
  flush(): void;
  log: Logger;
}

/**
 * Tasks between clients, schedulers and engines: tells the scheduler what happened to them and
 * carries out its decisions (sending tasks, moving their state, reporting their results).
 */
export class TaskCoordinator {
  constructor(private readonly d: TaskCoordinatorDeps) {}

  /** A client submitted tasks: load-balanced ones queue, direct ones go to their engines. */
  submit(client: TaskOwner, tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      const part = parts[i] ?? EMPTY_PART;
      if (t.fn) this.d.shipping.offer(client, t.fn, t.src);
      if (t.lb) {
        this.submitLb(client, t, part);
        continue;
      }
      if (t.rs) {
        this.resend(client, t, part);
        continue;
      }
      for (const target of t.to) {
        const rec = this.d.tasks.add(client.routingId, client.key, t.id, undefined, t);
        if (t.dx) rec.directFor = client.key;
        this.apply(
          this.d.scheduler.handle({
            type: "submit_direct",
            task: rec.hubId,
            engine: target,
            gone: t.k === 1 && this.d.engines.gone(target),
          }),
          {
            task: t,
            part,
          },
        );
      }
    }
  }

  /**
   * The body of a direct task whose client's link to its engine failed before the result came back:
   * it goes to the engine under the task's record, if the task has not finished (the engine runs it
   * unless the copy the client sent straight to it got there).
   */
  private resend(client: TaskOwner, t: ClientTask, part: Part): void {
    for (const hubId of this.d.tasks.idsOf(client.key, t.id)) {
      const rec = this.d.tasks.get(hubId);
      const engine = rec && this.d.engines.get(engineOf(rec.state));
      if (rec && engine && t.to.includes(engine.info.id) && isOn(rec.state, engine.info.id))
        this.send(engine, rec, t, part, false);
    }
  }

  /**
   * A load-balanced task (`t.lb` set); with `sink`, one of the controller's own on the client's
   * behalf (a pipeline's stage), whose result goes to `sink` rather than to the client. Returns
   * its controller id. The sink may be called before this returns (a task that cannot be sent).
   */
  submitLb(client: TaskOwner, t: ClientTask, part: Part, sink?: ResultSink, streamed?: StreamedBody): number {
    const spec = t.lb ?? {};
    const rec = this.d.tasks.add(client.routingId, client.key, t.id, { task: t, part }, t, sink);
    if (streamed) rec.streamed = streamed;
    if (spec.targets && !spec.targets.some((id) => this.d.engines.get(id))) {
      // Targets that do not exist now may register later; the task waits for them in the queue.
      this.d.log.debug({ targets: spec.targets }, "load-balanced task waits for its target engines");
    }
    this.apply(
      this.d.scheduler.handle({
        type: "submit_lb",
        task: rec.hubId,
        targets: spec.targets,
        retries: spec.retries ?? 0,
        maxDeaths: spec.maxDeaths ?? 3,
      }),
    );
    return rec.hubId;
  }

  /**
   * A load-balanced task whose body's binary frames are still arriving (cut-through,
   * `cut-through.ts`): placed now, its body passed on to its engine as it comes. Returns its id.
   */
  submitStreamed(client: TaskOwner, t: ClientTask, body: Buffer, streamed: StreamedBody): number {
    if (t.fn) this.d.shipping.offer(client, t.fn, t.src);
    return this.submitLb(client, t, { body, frames: [] }, undefined, streamed);
  }

  /**
   * The body of a task being streamed will not come whole (its client was forgotten or restarted
   * mid-upload): the task is cancelled; its engine, if it had one, dropped the half it had.
   */
  streamAborted(hubId: number): void {
    const rec = this.d.tasks.get(hubId);
    if (rec?.state.kind === "queued") this.cancel([hubId], true);
    else if (rec) this.cutShort(rec, "Its arguments never arrived whole: its client went away while sending them.");
  }

  /**
   * A task whose body its engine is still receiving, cancelled: the engine drops the half it has
   * (it would not know the task to cancel it, and would run it once the rest came), and the task
   * ends cancelled, unstarted.
   */
  private cutShort(rec: TaskRecord, message: string): void {
    this.d.tasks.take(rec.hubId);
    const engine = engineOf(rec.state);
    this.d.engines.get(engine)?.inflight.delete(rec.hubId);
    this.apply(this.d.scheduler.handle({ type: "abandoned", task: rec.hubId }));
    rec.attempts--;
    rec.state = cancel(requestCancel(rec.state), engine);
    this.d.delivery.fail(rec, engine, CANCELLED_CODE, message);
  }

  /**
   * Results from an engine: each reported, or its task run again, as the scheduler decides. With
   * `forwarded`, that task's result went on to its client already as it arrived (cut-through;
   * `lost`: its client left before it all went): it is not delivered again.
   */
  engineResults(
    entry: EngineEntry,
    results: TaskResult[],
    parts: Part[],
    streamed?: { forwarded: number; lost: boolean },
  ): void {
    const id = entry.info.id;
    const finished: Array<{ task: number; outcome: TaskOutcome }> = [];
    const index: number[] = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as TaskResult;
      const rec = this.d.tasks.get(r.id);
      // Late or duplicate: the task finished, failed, or moved to another engine. Exactly once.
      if (!rec || !isOn(rec.state, id) || !entry.inflight.delete(r.id)) continue;
      entry.info.tasksDone++;
      finished.push({ task: r.id, outcome: outcomeOf(r) });
      index.push(i);
    }
    const decisions = this.d.scheduler.handle({ type: "finished", engine: id, results: finished });
    // One decision per result, in order, then what else the scheduler wants.
    for (let k = 0; k < decisions.length; k++) {
      const dec = decisions[k] as SchedulerDecision;
      const i = index[k];
      if (dec.type !== "complete" || i === undefined || dec.task !== finished[k]?.task) {
        this.applyOne(dec);
        continue;
      }
      const r = results[i] as TaskResult;
      const rec = this.d.tasks.take(r.id);
      if (!rec) continue;
      rec.state = complete(rec.state);
      // Its client acknowledged it on its direct link: only a client that adopted the task since waits here.
      if (r.d) {
        if (rec.clientKey !== rec.directFor) this.d.delivery.fail(rec, id, "ERR_PTC_UNKNOWN_TASK", DELIVERED_DIRECTLY);
        continue;
      }
      if (streamed?.forwarded === r.id) {
        if (streamed.lost)
          this.d.delivery.fail(
            rec,
            id,
            CANCELLED_CODE,
            "Its client went away while its result was being passed on to it.",
          );
        continue;
      }
      const out: TaskResult = { ...r, id: rec.localId, engine: id };
      if (rec.lb) out.attempts = rec.attempts;
      this.d.delivery.deliver(rec, out, parts[i] ?? EMPTY_PART);
    }
  }

  /**
   * Results of direct tasks the client got straight from their engines (no values): their
   * records end as if the engines had reported them (which they do too, later, once the client
   * acknowledged them: by then the records are gone).
   */
  directDone(client: TaskOwner, done: TaskResult[]): void {
    for (const r of done) {
      const engine = this.d.engines.get(r.engine);
      if (!engine || typeof r.id !== "number") continue;
      for (const hubId of this.d.tasks.idsOf(client.key, r.id)) {
        const rec = this.d.tasks.get(hubId);
        if (rec?.directFor === client.key && isOn(rec.state, r.engine))
          this.engineResults(engine, [{ ...r, id: hubId, d: 1 }], []);
      }
    }
  }

  /** Direct tasks another client adopted: their engines send their results here whole. */
  adopted(hubIds: number[]): void {
    for (const id of hubIds) {
      const rec = this.d.tasks.get(id);
      if (rec?.directFor !== undefined) this.sendTo(engineOf(rec.state), { type: "direct_whole", ids: [id] });
    }
  }

  /** Tasks an engine handed back unstarted: to the front of the queue, for an idle engine. */
  released(entry: EngineEntry, ids: number[]): void {
    this.d.log.debug({ engineId: entry.info.id, ids }, "tasks released");
    this.apply(this.d.scheduler.handle({ type: "released", engine: entry.info.id, tasks: ids }));
  }

  /**
   * Cancels tasks by controller id: queued ones fail at once, the others are cancelled by their
   * engines (with `queuedOnly`, only those that have not started there).
   */
  cancel(hubIds: number[], queuedOnly = false): void {
    this.apply(this.d.scheduler.handle({ type: "cancel", tasks: hubIds, queuedOnly }));
  }

  /** An engine is gone (already out of the registry): its tasks move or fail. */
  engineDown(entry: EngineEntry, crashed?: string): void {
    const ev = { type: "engine_down", engine: entry.info.id } as const;
    this.apply(this.d.scheduler.handle(crashed === undefined ? ev : { ...ev, crashed }));
    entry.inflight.clear();
  }

  /** An engine registered: it has room for tasks. */
  engineUp(entry: EngineEntry): void {
    this.apply(
      this.d.scheduler.handle({ type: "engine_up", engine: entry.info.id, concurrency: entry.info.concurrency }),
    );
  }

  private readonly place = (): void => this.apply(this.d.scheduler.handle(PLACE));

  private apply(decisions: SchedulerDecision[], body?: { task: ClientTask; part: Part }): void {
    for (const dec of decisions) this.applyOne(dec, body);
  }

  private applyOne(dec: SchedulerDecision, body?: { task: ClientTask; part: Part }): void {
    const { tasks, engines } = this.d;
    switch (dec.type) {
      case "dispatch": {
        const rec = tasks.get(dec.task);
        const engine = engines.get(dec.engine);
        const what = rec?.lb ?? body;
        if (!rec || !engine || !what) {
          // Out of step with the scheduler (a bug): it must not count this task on that engine.
          this.d.log.error(
            { taskId: dec.task, engineId: dec.engine },
            "scheduler placed a task the controller cannot send",
          );
          this.apply(this.d.scheduler.handle({ type: "abandoned", task: dec.task }));
          return;
        }
        rec.state = assign(rec.state, engine.info.id);
        rec.attempts++;
        this.send(engine, rec, what.task, what.part, dec.movable);
        // Placements also happen outside of message handlers (a `place` wake-up), which flush nothing themselves.
        this.d.flush();
        return;
      }
      case "release":
        this.d.log.debug({ engineId: dec.engine, max: dec.max }, "release asked");
        this.sendTo(dec.engine, { type: "release", max: dec.max });
        return;
      case "requeue": {
        const rec = tasks.get(dec.task);
        if (!rec) return;
        engines.get(engineOf(rec.state))?.inflight.delete(rec.hubId);
        rec.state = requeue(rec.state);
        if (dec.unstarted) rec.attempts--;
        return;
      }
      case "complete":
        // Only as the answer to `finished`, where the engine's result is at hand.
        this.d.log.error({ taskId: dec.task }, "scheduler completed a task outside of its results");
        return;
      case "fail": {
        const rec = tasks.take(dec.task);
        if (!rec) return;
        engines.get(engineOf(rec.state))?.inflight.delete(rec.hubId);
        rec.state = fail(rec.state, dec.engine, dec.code);
        this.d.delivery.fail(rec, dec.engine, dec.code, dec.message);
        return;
      }
      case "cancelled": {
        const rec = tasks.take(dec.task);
        if (!rec) return;
        engines.get(engineOf(rec.state))?.inflight.delete(rec.hubId);
        if (dec.unstarted) rec.attempts--;
        rec.state = cancel(rec.state, dec.engine);
        this.d.delivery.fail(rec, dec.engine, CANCELLED_CODE, dec.message);
        return;
      }
      case "cancel_on_engine": {
        const ids = dec.tasks.filter((id) => {
          const rec = tasks.get(id);
          if (!rec?.streamed?.cut()) return true;
          this.cutShort(rec, "The task was cancelled while its arguments were on their way to its engine.");
          return false;
        });
        if (ids.length === 0) return;
        if (!dec.queuedOnly) {
          for (const id of ids) {
            const rec = tasks.get(id);
            if (rec) rec.state = requestCancel(rec.state);
          }
        }
        this.d.log.debug({ engineId: dec.engine, ids, queuedOnly: dec.queuedOnly }, "cancel sent to engine");
        this.sendTo(dec.engine, {
          type: "engine_cancel",
          ids,
          ...(dec.queuedOnly ? { queuedOnly: true } : {}),
        });
        return;
      }
      case "wake":
        setImmediate(this.place);
        return;
    }
  }

  private sendTo(engineId: number, msg: HubToEngine): void {
    const e = this.d.engines.get(engineId);
    if (e) this.d.toEngine(msg, e.routingId);
  }

  private send(engine: EngineEntry, rec: TaskRecord, t: ClientTask, part: Part, movable: boolean): void {
    const streamed = rec.streamed;
    if (streamed && !streamed.sendable) return this.unsendable(rec, engine.info.id, "ERR_PTC_ENGINE_LOST", BODY_GONE);
    const task = engineTask(engine, rec, t, movable, this.d.shipping);
    if (!task) {
      const message = `The controller does not know the source of function ${t.fn}; resubmit the task.`;
      return this.unsendable(rec, engine.info.id, "ERR_PTC_PROTOCOL", message);
    }
    engine.inflight.add(rec.hubId);
    if (streamed) this.d.streamTo(engine.routingId, task, part.body, streamed);
    else this.d.engineOut.push(String(engine.info.id), engine.routingId, task, part);
  }

  /** A task placed on `engine` that cannot be sent there: it fails with `code`, and the scheduler forgets it. */
  private unsendable(rec: TaskRecord, engine: number, code: string, message: string): void {
    this.d.tasks.take(rec.hubId);
    rec.state = fail(rec.state, engine, code);
    this.d.delivery.fail(rec, engine, code, message);
    this.apply(this.d.scheduler.handle({ type: "abandoned", task: rec.hubId }));
  }
}
