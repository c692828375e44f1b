import {
  EMPTY_PART,
  type ClientTask,
  type EngineTask,
  type FromPeer,
  type Part,
  type TaskResult,
} from "@ptcluster/protocol";

import type { PeerEndpoint } from "./peer-endpoint.js";
import { ID_BASE, type ExecItem } from "../executor/protocol.js";
import { unpackFrames } from "../shared/transfer.js";
import { ExecEnded } from "./direct-exec-end.js";
import { ExecCancels } from "./direct-cancels.js";
import type { ExecutorEnd } from "./task-runner-options.js";
import { ACK_CHECK_MS, DONE_KEEP, RID_BASE, splitKey, type DirectTaskDeps, type Entry } from "./direct-entry.js";
import { RecentSet } from "../shared/recent-set.js";

export type { DirectTaskDeps };

/**
 * The engine's side of the direct path. A DirectView task comes twice: its body from the client,
 * its header from the controller (`dx`, no body). It runs once, from the first copy with a body
 * (the client's, usually: under an id of its own until the controller's is known). The result goes
 * straight back to the client; the controller gets it without its value once the client
 * acknowledged it, or whole if the client's link failed first (for `rc.getResult`). Ids cross
 * this module both ways: the runner knows its own, the controller its own.
 */
export class DirectTasks {
  private readonly byKey = new Map<string, Entry>();
  private readonly byRid = new Map<number, Entry>();
  private readonly byHub = new Map<number, Entry>();
  /** Controller copies whose body has not come yet, by key. */
  private readonly awaiting = new Map<string, EngineTask>();
  private readonly done = new RecentSet<string>(DONE_KEEP);
  /** Controller ids cancelled before any task of that id came (see `fromController`). */
  private readonly early = new RecentSet<number>(DONE_KEEP);
  /** Controller ids adopted by another client before their header came (see `whole`). */
  private readonly earlyWhole = new RecentSet<number>(DONE_KEEP);
  private engineId = -1;
  private readonly held = new Set<Entry>();
  /** What clients acknowledged on their links to the current executor: link → seq. */
  private readonly execAcks = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private nextRid = RID_BASE;
  /** Tasks that came straight from clients, and results sent straight back (for the status report). */
  readonly counts = { tasks: 0, results: 0 };

  /** Tasks of an executor's links that it started and did not report before it ended. */
  private readonly ended = new ExecEnded({
    engineId: () => this.engineId,
    entry: (key) => this.byKey.get(key) ?? (this.done.has(key) ? "done" : undefined),
    register: (rid, key, client, localId) => this.fromExecutor([{ rid, key, client, localId }], []),
    finish: (result) => void this.finished(result, EMPTY_PART),
  });

  /** Tasks cancelled by key in the executor (it may have them from a client's own link), waiting for its answer. */
  private readonly cancels = new ExecCancels({
    cancelKeys: (keys) => this.d.cancelKeys(keys),
    report: (result, part) => this.d.report(result, part),
    engineId: () => this.engineId,
    journal: () => this.d.journal(),
    graceMs: () => this.d.graceMs(),
    clientOfLink: (link) => this.ended.links.get(link),
  });

  constructor(private readonly d: DirectTaskDeps) {}

  /** A client's `dsubmit`. */
  fromClient(client: Buffer, tasks: ClientTask[], parts: Part[]): void {
    const who = client.toString("latin1");
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      const key = `${who}:${t.id}`;
      const known = this.byKey.get(key);
      // Resent after the client's link to the executor closed: a result sent there goes again here.
      if (known?.exec) this.resend(known);
      if (known || this.done.has(key)) continue;
      // It ran in an executor that ended before its result was acknowledged or reported.
      if (this.ended.settle(key)) continue;
      const waiting = this.awaiting.get(key);
      this.awaiting.delete(key);
      const e: Entry = { key, rid: waiting ? waiting.id : this.nextRid++, client, localId: t.id };
      if (waiting) this.bind(e, waiting.id);
      this.byKey.set(key, e);
      this.byRid.set(e.rid, e);
      this.counts.tasks++;
      const task: EngineTask = { id: e.rid, op: t.op };
      if (t.fn) task.fn = t.fn;
      if (t.src !== undefined) task.src = t.src;
      else if (waiting?.src !== undefined) task.src = waiting.src;
      if (t.scope) task.scope = t.scope;
      if (t.timeout !== undefined) task.timeout = t.timeout;
      if (t.comm) task.comm = t.comm;
      // Large results as shared-memory files for this client, as the controller would ask.
      if (t.shm === true) task.shm = `c${who}`;
      // The executor runs one copy per key: it may have this task from the client's own link.
      task.dx = key;
      this.d.enqueue(task, parts[i] ?? EMPTY_PART);
    }
  }

  /** A task from the controller: its own, or the header of a direct one (`dx`), or a direct one resent with its body. */
  fromController(task: EngineTask, part: Part): void {
    const key = task.dx;
    if (key === undefined) return this.d.enqueue(task, part);
    // Its source (the controller ships one once per engine) is kept whichever copy runs: the
    // client's may have run in the executor, and later tasks name the function only.
    this.d.learn(task);
    const e = this.byKey.get(key);
    // The controller sends a cancel at once and tasks at the end of its turn: one may come first.
    const early = this.early.delete(task.id);
    if (e) {
      if (e.hubId === undefined) this.bind(e, task.id);
      if (early) this.d.cancel([e.rid]);
      return;
    }
    if (this.done.has(key)) return;
    if (early) {
      this.done.add(key);
      // The executor may have it from the client's own link, not reported yet: it must not run it.
      return this.cancels.cancel(key, task.id);
    }
    if (part.body.length === 0) {
      this.awaiting.set(key, task);
      return;
    }
    // Resent through the controller: the client's link failed before this task got there. The
    // function's source came with the first copy (the controller ships a source once per engine).
    const src = task.src ?? this.awaiting.get(key)?.src;
    this.awaiting.delete(key);
    const [who, local] = splitKey(key);
    const r: Entry = { key, rid: task.id, client: Buffer.from(who, "latin1"), localId: local, viaController: true };
    this.bind(r, task.id);
    this.byKey.set(key, r);
    this.byRid.set(r.rid, r);
    const { dx: _dx, ...plain } = task;
    this.d.enqueue(src === undefined ? plain : { ...plain, src }, part);
  }

  private bind(e: Entry, hubId: number): void {
    e.hubId = hubId;
    this.byHub.set(hubId, e);
    if (this.earlyWhole.delete(hubId)) e.full = true;
    // Only a result the controller needs whole goes at once; the others wait for the timer (one message for many).
    if (e.result && e.full) this.check();
  }

  /**
   * A result from the runner: a direct task's goes to its client (true); false for the
   * controller's tasks, whose results go the usual way (under the controller's id, set here).
   */
  finished(result: TaskResult, part: Part): boolean {
    const e = this.byRid.get(result.id);
    // An executor's own id the controller never knew (a task cancelled by key, its verdict sent).
    if (!e) return result.id >= ID_BASE;
    if (e.viaController) {
      this.forget(e);
      return false;
    }
    e.result = result;
    e.part = part;
    e.seq = this.d.toClient(
      e.client,
      { type: "dresults", results: [{ ...result, id: e.localId }], pf: [part.frames.length] },
      [part],
    );
    this.counts.results++;
    this.held.add(e);
    this.timer ??= setTimeout(() => this.check(), ACK_CHECK_MS);
    return true;
  }

  /** Reports to the controller what its clients acknowledged (without values), or what they lost (whole). */
  check(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const e of this.held) {
      if (e.hubId === undefined || !e.result) continue;
      if (!e.full && e.exec && !this.execAcked(e)) continue;
      if (!e.full && !e.exec && this.d.acknowledged(e.client, e.seq ?? 0) === false) continue;
      const r: TaskResult = { ...e.result, id: e.hubId };
      if (e.full) this.d.report(r, e.part ?? EMPTY_PART);
      else this.d.report({ ...r, d: 1 }, EMPTY_PART);
      this.forget(e);
    }
    if (this.held.size) this.timer = setTimeout(() => this.check(), ACK_CHECK_MS);
  }

  /**
   * What the executor says ran from clients' own links to it (`executor/client-tasks.ts`): each
   * task recorded as one that came here (once by key: a copy resent on the lean link is the same
   * task), held by the runner while it runs; results it sent wait for the client's acknowledgement
   * there before the controller gets them without values, as for the lean link.
   */
  fromExecutor(items: readonly ExecItem[], acks: ReadonlyArray<[number, number]>, journaled?: number): void {
    for (const [link, seq] of acks) this.execAcks.set(link, seq);
    if (journaled !== undefined) this.cancels.reported(journaled);
    for (const it of items) {
      let e = this.byKey.get(it.key);
      if (!e) {
        // Cancelled (and reported) before this report came: stopping its run is the executor's.
        if (this.done.has(it.key)) continue;
        const waiting = this.awaiting.get(it.key);
        this.awaiting.delete(it.key);
        e = { key: it.key, rid: it.rid, client: Buffer.from(it.client, "latin1"), localId: it.localId };
        if (waiting) this.bind(e, waiting.id);
        this.byKey.set(it.key, e);
        this.byRid.set(e.rid, e);
        this.counts.tasks++;
      } else if (e.rid !== it.rid && !e.result) {
        // Its copy resent on the lean link came first: the executor runs the one it had (`dups`).
        this.byRid.delete(e.rid);
        e.rid = it.rid;
        this.byRid.set(e.rid, e);
      }
      // A task whose result is here already is over: held again, it would count as running for good.
      if (it.task && it.started !== undefined && !e.result) this.d.adopt(it.task, it.started);
      if (it.result && !it.sent) {
        // Its value came here to be sent on the client's lean link (large, or its link closed).
        this.d.sentByExecutor(it.rid);
        const [body, ...frames] = unpackFrames(it.data ?? { buffers: [], layout: [] });
        this.finished(it.result, { body: body ?? Buffer.alloc(0), frames });
      } else if (it.result && it.sent) {
        this.d.sentByExecutor(it.rid);
        e.result = it.result;
        if (it.data) {
          const [body, ...frames] = unpackFrames(it.data);
          e.part = { body: body ?? Buffer.alloc(0), frames };
        }
        e.exec = it.sent;
        this.counts.results++;
        this.held.add(e);
      }
    }
    this.timer ??= setTimeout(() => this.check(), ACK_CHECK_MS);
  }

  /** Client `client` opened link `link` to the executor. */
  execLink(link: number, client: string): void {
    this.ended.links.set(link, client);
  }

  /**
   * A task of a client's link to the executor that the start table shows running, not reported
   * yet (it holds the executor's thread): recorded and held as the executor's report would.
   */
  heldStart(rid: number, at: number): void {
    const k = this.ended.keyOf(rid);
    if (!k) return;
    if (!this.done.has(k.key))
      return this.fromExecutor([{ rid, ...k, task: { id: rid, op: "apply" }, started: at }], []);
    // Cancelled by key and holding the thread (it cannot answer): stopped as the runner stops any,
    // a new executor after the grace period; the verdict goes when that executor ends.
    if (!this.cancels.waits(k.key)) return;
    this.d.adopt({ id: rid, op: "apply" }, at);
    this.d.cancel([rid]);
  }

  /** A client's link to the executor closed: what it did not acknowledge, whole, to the controller. */
  execLost(items: ReadonlyArray<{ rid: number; part?: Part }>): void {
    for (const { rid, part } of items) {
      const e = this.byRid.get(rid);
      if (!e?.exec) continue;
      if (part) e.part = part;
      e.full = true;
    }
    this.check();
  }

  /** An executor that owned clients' links ended: what it started without reporting never runs again. */
  executorEnded(end: ExecutorEnd, engineId: number): void {
    this.engineId = engineId;
    this.ended.ended(end);
  }

  /** The executor was replaced: what its links did not see acknowledged goes again on the lean link. */
  execReset(): void {
    // An executor that ended answers no more: its cancelled tasks ended with it.
    this.cancels.executorGone();
    for (const e of this.held) if (e.exec && !this.execAcked(e)) this.resend(e);
    this.execAcks.clear();
  }

  private execAcked(e: Entry): boolean {
    return e.exec !== undefined && (this.execAcks.get(e.exec[0]) ?? 0) >= e.exec[1];
  }

  /** A result the executor sent, again on the client's lean (or peer) link. */
  private resend(e: Entry): void {
    if (!e.result || !e.part || this.execAcked(e)) return;
    e.exec = undefined;
    e.seq = this.d.toClient(
      e.client,
      { type: "dresults", results: [{ ...e.result, id: e.localId }], pf: [e.part.frames.length] },
      [e.part],
    );
  }

  /** A client's link failed: what it did not acknowledge goes to the controller whole. */
  clientLost(client: Buffer, unacked: ReadonlyArray<{ header: FromPeer }>): void {
    const who = client.toString("latin1");
    for (const { header } of unacked) {
      if (header.type !== "dresults") continue;
      for (const r of header.results) {
        const e = this.byKey.get(`${who}:${r.id}`);
        if (e) e.full = true;
      }
    }
    this.check();
  }

  /** Another client adopted these tasks: their results go to the controller whole. */
  whole(hubIds: readonly number[]): void {
    for (const id of hubIds) {
      const e = this.byHub.get(id);
      if (e) e.full = true;
      else {
        // Its header is still on its way here (clients send headers up to 20 ms late, and the
        // controller sends them at the end of its turn): applied when it comes.
        this.earlyWhole.add(id);
      }
    }
    this.check();
  }

  /** The controller's ids to the runner's (a cancel); a task still waiting for its body ends here, cancelled. */
  toRunner(hubIds: readonly number[], engineId: number): number[] {
    this.engineId = engineId;
    const out: number[] = [];
    for (const id of hubIds) {
      const e = this.byHub.get(id);
      if (e) {
        out.push(e.rid);
        continue;
      }
      const waiting = [...this.awaiting].find(([, t]) => t.id === id);
      if (waiting) {
        this.awaiting.delete(waiting[0]);
        this.done.add(waiting[0]);
        this.cancels.cancel(waiting[0], id);
      } else {
        out.push(id);
        // Perhaps a direct task whose header is still on its way here: cancelled when it comes.
        this.early.add(id);
      }
    }
    return out;
  }

  /** Running tasks by the runner's ids to the controller's (heartbeats); direct tasks it does not know yet are left out. */
  toController(running: Array<[number, number]>): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const [rid, ms] of running) {
      const id = rid < RID_BASE ? rid : this.byRid.get(rid)?.hubId;
      if (id !== undefined) out.push([id, ms]);
    }
    return out;
  }

  /** Clients whose link stopped acknowledging for `ms` (heartbeat timer): the controller gets what they did not. */
  checkClients(endpoint: Pick<PeerEndpoint, "lostClients">, ms: number): void {
    if (this.byKey.size === 0) return;
    // Clients with a direct link here (routing ids, latin1).
    const clients = new Set<string>();
    for (const e of this.byKey.values()) clients.add(e.client.toString("latin1"));
    for (const lost of endpoint.lostClients(clients, ms)) this.clientLost(lost.client, lost.unacked);
  }

  /** The controller dropped this engine's tasks (it registers again). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const e of this.byKey.values()) this.done.add(e.key);
    this.byKey.clear();
    this.byRid.clear();
    this.byHub.clear();
    this.awaiting.clear();
    this.held.clear();
    this.early.clear();
    this.earlyWhole.clear();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  execCancelled(key: string, started: boolean): void {
    this.cancels.settled(key, started);
  }

  private forget(e: Entry): void {
    this.byKey.delete(e.key);
    this.byRid.delete(e.rid);
    if (e.hubId !== undefined) this.byHub.delete(e.hubId);
    this.held.delete(e);
    this.done.add(e.key);
  }
}
