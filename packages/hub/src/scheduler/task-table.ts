/** One task on one engine, from the controller's point of view. */
export interface TaskRecord {
  hubId: number;
  /** Routing id of the client that submitted it. */
  client: Buffer;
  clientKey: string;
  localId: number;
  engine: number;
  submitted: number;
}

/** Tasks in flight, by controller id. Every record leaves exactly once: by result or by failure. */
export class TaskTable {
  private readonly records = new Map<number, TaskRecord>();
  private nextId = 1;

  get size(): number {
    return this.records.size;
  }

  add(client: Buffer, clientKey: string, localId: number, engine: number): TaskRecord {
    const rec: TaskRecord = { hubId: this.nextId++, client, clientKey, localId, engine, submitted: Date.now() };
    this.records.set(rec.hubId, rec);
    return rec;
  }

  /** Removes and returns the record, or undefined if it already finished (a late or duplicate result). */
  take(hubId: number): TaskRecord | undefined {
    const rec = this.records.get(hubId);
    if (rec) this.records.delete(hubId);
    return rec;
  }
}
