import type { HubToClient, Part, TaskResult } from "@ptcluster/protocol";
import { EMPTY_PART } from "@ptcluster/protocol";
import type { Outbox } from "../clients/outbox.js";
import type { TaskRecord, TaskTable } from "../tasks/task-table.js";
import type { ResultStore } from "./result-store.js";

/** A task `rc.getResult` names: client `from`'s task `id`, known to the asking client as `as`. */
export interface AdoptItem {
  from: string;
  id: number;
  as: number;
}

/** The client a result goes to. */
export interface ResultRecipient {
  routingId: Buffer;
  key: string;
}

/**
 * Results on their way to clients: to the task's client if it is connected (batched in its
 * outbox), otherwise into the result store for `rc.getResult`; and adoption, by which a client
 * takes over the results of one that went away.
 */
export class ResultDelivery {
  /** Results still to come for adopted tasks carry the number to expect. */
  private readonly adoptedTotals = new Map<string, number>();

  constructor(
    private readonly tasks: TaskTable,
    private readonly store: ResultStore,
    private readonly out: Outbox<TaskResult>,
    /** Whether the client with this key is connected now. */
    readonly connected: (clientKey: string) => boolean,
  ) {}

  /** To the task's client, or, if it went away, into the result store. */
  deliver(rec: TaskRecord, out: TaskResult, part: Part): void {
    if (rec.sink) {
      // After the current call: a result may be made while the coordinator is still carrying out a
      // scheduler decision (a task it could not send fails at once), and the sink's owner may
      // submit or cancel tasks in answer, which must not re-enter the coordinator.
      const sink = rec.sink;
      queueMicrotask(() => sink(out, part));
      return;
    }
    const adopted = this.adoptedTotals.size ? `${rec.clientKey}:${rec.localId}` : undefined;
    const total = adopted ? this.adoptedTotals.get(adopted) : undefined;
    if (total !== undefined) {
      out.total = total;
      if (this.tasks.idsOf(rec.clientKey, rec.localId).length === 0) this.adoptedTotals.delete(adopted as string);
    }
    if (this.connected(rec.clientKey)) this.out.push(rec.clientKey, rec.client, out, part);
    else this.store.put(rec.clientKey, rec.localId, out, part, this.tasks.idsOf(rec.clientKey, rec.localId).length);
  }

  /**
   * Whether the task's result would go to its client as it is, in a message of its own, which a
   * connected client may get fragment by fragment as the result arrives (cut-through): no sink,
   * no adoption to count.
   */
  plain(rec: TaskRecord): boolean {
    return !rec.sink && this.adoptedTotals.size === 0 && this.connected(rec.clientKey);
  }

  /** A failure made by the controller (no engine ran the task to the end), reported as from `engine`. */
  fail(rec: TaskRecord, engine: number, code: string, message: string): void {
    const now = Date.now();
    const out: TaskResult = {
      id: rec.localId,
      ok: false,
      engine,
      started: now,
      completed: now,
      sysError: { code, message },
    };
    if (rec.lb) out.attempts = rec.attempts;
    this.deliver(rec, out, EMPTY_PART);
  }

  /**
   * A client went away: results sent to it that it never acknowledged are kept with those still
   * to come, as it may have died before they arrived.
   */
  keepUnacknowledged(clientKey: string, unacked: Iterable<{ header: HubToClient; parts: Part[] }>): void {
    for (const { header, parts } of unacked) {
      if (header.type !== "results") continue;
      header.results.forEach((r, i) =>
        this.store.put(clientKey, r.id, r, parts[i] ?? EMPTY_PART, this.tasks.idsOf(clientKey, r.id).length),
      );
    }
  }

  /**
   * Another client takes over tasks of a client that went away: what is kept now, the rest as it
   * comes. Returns the controller ids of the tasks it took over that are still running. With
   * `late`, a task not known yet of a client still connected is handed to it, to be adopted when
   * its header comes (a client sends the headers of its direct tasks up to 20 ms after their call).
   */
  adopt(client: ResultRecipient, items: readonly AdoptItem[], late?: (item: AdoptItem) => void): number[] {
    const taken: number[] = [];
    for (const item of items) {
      const { from, id, as } = item;
      const running = this.tasks.idsOf(from, id);
      const kept = this.store.take(from, id);
      const total = (kept?.results.length ?? 0) + running.length;
      if (total === 0 && late && this.connected(from)) {
        late(item);
        continue;
      }
      if (total === 0) {
        const now = Date.now();
        this.out.push(
          client.key,
          client.routingId,
          {
            id: as,
            ok: false,
            engine: -1,
            started: now,
            completed: now,
            total: 1,
            sysError: {
              code: "ERR_PTC_UNKNOWN_TASK",
              message: `No result is kept under ${from}:${id}: it was fetched already, expired, belongs to a client that is still connected, or never existed.`,
            },
          },
          EMPTY_PART,
        );
        continue;
      }
      for (const { result, part } of kept?.results ?? [])
        this.out.push(client.key, client.routingId, { ...result, id: as, total }, part);
      for (const hubId of running) this.tasks.reassign(hubId, client.routingId, client.key, as);
      if (running.length) this.adoptedTotals.set(`${client.key}:${as}`, total);
      taken.push(...running);
    }
    return taken;
  }
}
