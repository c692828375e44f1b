import type { ClientTask, Part, TaskOp, TaskResult } from "@ptcluster/protocol";
import { QUEUED, type TaskState } from "./task-state.js";
import { AwaitedHeaders } from "./awaited-headers.js";
import type { StreamedBody } from "./streamed-body.js";

/** One task on one engine (direct), or one load-balanced task, from the controller's point of view. */
export interface TaskRecord {
  hubId: number;
  /** Routing id of the client that submitted it. */
  client: Buffer;
  clientKey: string;
  localId: number;
  /** Where it is; changed only through the transitions of task-state.ts. */
  state: TaskState;
  /** Times it was sent to an engine, not counting those it was handed back unstarted. */
  attempts: number;
  submitted: number;
  op: TaskOp;
  /** The function's name as the client gave it (for `ptcluster status`). */
  name: string | undefined;
  /** Load-balanced tasks keep what they need to run again elsewhere. */
  lb?: { task: ClientTask; part: Part };
  /** Its body's binary frames came in fragments and go on as they come (cut-through): `lb.part` has the body only. */
  streamed?: StreamedBody;
  /** Hash of the shipped function it runs, if it holds that function's source while it lives. */
  fn?: string;
  /** Sent straight to its engine too (the direct path): the client that did, which has the result once the engine says so. */
  directFor?: string;
  /** Where its result goes instead of a client: the controller's own tasks (a pipeline's stages). Called after the call that made the result. */
  sink?: ResultSink;
}

/** Takes the result of one of the controller's own tasks. */
export type ResultSink = (result: TaskResult, part: Part) => void;

/**
 * Tasks in flight, by controller id and by (client, client task id). Every record leaves exactly
 * once: by its result, or by a failure.
 */
export class TaskTable {
  private readonly records = new Map<number, TaskRecord>();
  private readonly byClient = new Map<string, Map<number, Set<number>>>();
  private nextId = 1;
  /** Requests that named a task of a client before its header came (`awaited-headers.ts`). */
  readonly awaited = new AwaitedHeaders();

  /** `fns` is told when a record that runs a shipped function comes and goes. */
  constructor(private readonly fns?: { hold(hash: string): boolean; release(hash: string): void }) {}

  get size(): number {
    return this.records.size;
  }

  get(hubId: number): TaskRecord | undefined {
    return this.records.get(hubId);
  }

  /** A new task, `queued` until a scheduler places it. */
  add(
    client: Buffer,
    clientKey: string,
    localId: number,
    lb: TaskRecord["lb"],
    task: Pick<ClientTask, "op" | "fn" | "name">,
    sink?: ResultSink,
  ): TaskRecord {
    // A name is for display only: a client cannot make the controller keep a long one.
    const name = typeof task.name === "string" ? task.name.slice(0, 200) : undefined;
    const rec: TaskRecord = {
      hubId: this.nextId++,
      client,
      clientKey,
      localId,
      state: QUEUED,
      attempts: 0,
      submitted: Date.now(),
      op: task.op,
      name,
    };
    if (lb) rec.lb = lb;
    if (sink) rec.sink = sink;
    if (task.fn && this.fns?.hold(task.fn)) rec.fn = task.fn;
    this.records.set(rec.hubId, rec);
    let ofClient = this.byClient.get(clientKey);
    if (!ofClient) this.byClient.set(clientKey, (ofClient = new Map()));
    let ids = ofClient.get(localId);
    if (!ids) ofClient.set(localId, (ids = new Set()));
    ids.add(rec.hubId);
    return rec;
  }

  /** Removes and returns the record, or undefined if it already finished (a late or duplicate result). */
  take(hubId: number): TaskRecord | undefined {
    const rec = this.records.get(hubId);
    if (!rec) return undefined;
    this.records.delete(hubId);
    rec.streamed?.drop();
    if (rec.fn) this.fns?.release(rec.fn);
    const ofClient = this.byClient.get(rec.clientKey);
    const ids = ofClient?.get(rec.localId);
    ids?.delete(hubId);
    if (ids && ids.size === 0) ofClient?.delete(rec.localId);
    if (ofClient && ofClient.size === 0) this.byClient.delete(rec.clientKey);
    return rec;
  }

  /** Hands a task over to another client (it adopted the task of a client that went away). */
  reassign(hubId: number, client: Buffer, clientKey: string, localId: number): void {
    const rec = this.records.get(hubId);
    if (!rec) return;
    const old = this.byClient.get(rec.clientKey);
    const oldIds = old?.get(rec.localId);
    oldIds?.delete(hubId);
    if (oldIds && oldIds.size === 0) old?.delete(rec.localId);
    if (old && old.size === 0) this.byClient.delete(rec.clientKey);
    rec.client = client;
    rec.clientKey = clientKey;
    rec.localId = localId;
    let ofClient = this.byClient.get(clientKey);
    if (!ofClient) this.byClient.set(clientKey, (ofClient = new Map()));
    let ids = ofClient.get(localId);
    if (!ids) ofClient.set(localId, (ids = new Set()));
    ids.add(hubId);
  }

  /** Controller ids of a client's task (several for a direct task on several engines). */
  idsOf(clientKey: string, localId: number): number[] {
    return [...(this.byClient.get(clientKey)?.get(localId) ?? [])];
  }

  /** Every controller id in the table (`ptcluster abort --all`). */
  ids(): IterableIterator<number> {
    return this.records.keys();
  }

  /** Every controller id of a client's tasks. */
  allOf(clientKey: string): number[] {
    const out: number[] = [];
    for (const ids of this.byClient.get(clientKey)?.values() ?? []) out.push(...ids);
    return out;
  }
}
