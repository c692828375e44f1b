import type { ClientTask, EngineTask, FromPeer, Part, TaskResult } from "@ptcluster/protocol";
import { DuplexLink } from "@ptcluster/protocol/lean";
import { ID_BASE, LINK_SPAN, type ClientSetup, type ExecItem, type FromExecutor } from "./protocol.js";
import { packFrames } from "../shared/transfer.js";
import { RecentSet } from "../shared/recent-set.js";

/** What this executor tells the supervisor goes at most this often (ms): one message for many calls. */
const REPORT_MS = 20;
/**
 * Results up to this size (bytes) go to the client from here, and a copy to the supervisor with
 * the report (it sends them again on the lean link if this executor goes before the client
 * acknowledged them). Larger ones (on one host they are shared-memory references, so this is for
 * clients on other hosts) go to the supervisor at once, which sends them on the lean link: a copy
 * that outlives this thread either way, and no second copy of a large value here.
 */
const COPY_MAX = 1 << 20;
/** Keys of tasks that came here, and of those the supervisor cancelled before they came, kept to check each task against. */
const CANCEL_KEEP = 10_000;

/** One task that came on a client link here. */
interface Own {
  key: string;
  client: string;
  localId: number;
  link: Link;
  task: EngineTask;
  /** The supervisor aborted it (a cancel, a timeout): its result goes the supervisor's way, never to the client. */
  aborted?: boolean;
  /** Cancelled by key while running: the supervisor waits for its end to give the verdict. */
  verdict?: boolean;
}

interface Link {
  n: number;
  link: DuplexLink;
  /** Results sent on it and not acknowledged (the supervisor has a copy of each). */
  sent: Array<{ seq: number; rid: number }>;
}

export interface ClientTasksDeps {
  engineId(): number;
  /** Queues a task to run (the executor's own queue, behind those already there). */
  run(task: EngineTask, body: Buffer, frames: Buffer[]): void;
  /** Takes a task out of the queue if it has not started (true: it was there). */
  unqueue(id: number): boolean;
  /** Aborts a running task's `engine.signal`. */
  abort(id: number, reason: string): void;
  post(m: FromExecutor, transfer?: ArrayBuffer[]): void;
  /** The executor's `ExecJournal` count (every start is written there before its code runs). */
  journaled(): number;
}

/**
 * Clients' direct links owned by the executor thread (docs/architecture.md, "The direct path"):
 * a client that was told this executor's endpoint (`dexec`, by the supervisor's lean link) sends
 * its DirectView tasks here, they run from here and their results go straight back, so a call
 * costs the client and this thread only. The supervisor keeps its authority and learns what ran in
 * batches (`exec_report`, every 20 ms at most): it then holds each task as one it posted (its
 * cancels, the heartbeats' running lists, the executor's loss). What it aborts here (`drop` with a
 * reason, `cancelled`) never sends its own result to the client: the supervisor's verdict goes
 * instead. A task the supervisor cancelled before it knew of it is dropped here before it starts.
 * A link that closes or stops acknowledging hands its unacknowledged results to the supervisor
 * whole (they reach the client through the controller); tasks a client sent here and got no
 * answer for, it sends again on the supervisor's lean link, where they run once by key.
 */
export class ClientTasks {
  private readonly own = new Map<number, Own>();
  private readonly keys = new RecentSet<string>(CANCEL_KEEP);
  private readonly cancelled = new RecentSet<string>(CANCEL_KEEP);
  private readonly links = new Set<Link>();
  private readonly linkBase: number;
  private nLinks = 0;
  private report: { items: ExecItem[]; transfer: ArrayBuffer[] } = { items: [], transfer: [] };
  private timer: NodeJS.Timeout | undefined;
  private checker: NodeJS.Timeout | undefined;
  private checkedAt = 0;

  constructor(
    private readonly d: ClientTasksDeps,
    generation: number,
  ) {
    this.linkBase = (generation % 256) * 4096;
  }

  /** Binds the endpoint; the supervisor tells clients its address (`client_listen`). */
  async start(setup: ClientSetup): Promise<void> {
    const { port } = await DuplexLink.listen(
      { host: setup.ip, clusterKey: Buffer.from(setup.key), maxBytes: setup.maxBytes + 65_536 },
      {
        hello: (to) => {
          const me = this.d.engineId();
          return me >= 0 && to === me;
        },
        link: (link, id) => this.adopt(link, id.toString("latin1")),
      },
    );
    const every = Math.max(50, setup.linkLimitMs / 6);
    this.checkedAt = performance.now();
    this.checker = setInterval(() => this.checkLinks(setup.linkLimitMs, every), every);
    this.checker.unref();
    this.d.post({ type: "client_listen", address: `${setup.ip.includes(":") ? `[${setup.ip}]` : setup.ip}:${port}` });
  }

  private adopt(dl: DuplexLink, client: string): void {
    const link: Link = { n: this.linkBase + (this.nLinks++ % 4096), link: dl, sent: [] };
    this.links.add(link);
    this.d.post({ type: "client_link", link: link.n, client });
    dl.on = {
      message: (header, parts) => {
        if (header.type === "dsubmit") this.fromClient(link, client, header.tasks, parts);
      },
      closed: () => this.lost(link, client),
    };
  }

  private fromClient(link: Link, client: string, tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      const key = `${client}:${t.id}`;
      if (this.keys.has(key)) continue;
      if (this.cancelled.delete(key)) continue; // the supervisor reported it cancelled
      const task: EngineTask = { id: ID_BASE + link.n * LINK_SPAN + t.id, op: t.op };
      if (t.fn) task.fn = t.fn;
      if (t.src !== undefined) task.src = t.src;
      if (t.scope) task.scope = t.scope;
      if (t.timeout !== undefined) task.timeout = t.timeout;
      if (t.comm) task.comm = t.comm;
      if (t.shm === true) task.shm = `c${client}`;
      this.keys.add(key);
      this.own.set(task.id, { key, client, localId: t.id, link, task });
      const part = parts[i] ?? { body: Buffer.alloc(0), frames: [] };
      this.d.run(task, part.body, part.frames);
    }
  }

  /** Closes every client's link (the controller took this engine for dead; its clients dial again). */
  dropLinks(): void {
    for (const link of [...this.links]) link.link.close();
  }

  /** Whether a task of this key came on a client link here (a copy posted by the supervisor is then not run). */
  knows(key: string): boolean {
    return this.keys.has(key);
  }

  /** The supervisor dropped this task before it started. */
  forget(id: number): void {
    this.own.delete(id);
  }

  /** Whether this executor took `id` from a client link (its start and result are reported here, not per turn). */
  has(id: number): boolean {
    return this.own.has(id);
  }

  /** A task of a client link starts (before its code runs). */
  started(id: number, at: number): void {
    const o = this.own.get(id);
    if (!o) return;
    const { src: _src, ...task } = o.task;
    this.queue({ rid: id, key: o.key, client: o.client, localId: o.localId, task, started: at });
    // Its timeout is the supervisor's to enforce, from the start: it hears of it now, not in 20 ms
    // (a task that holds this thread would hold the report back).
    if (task.timeout !== undefined) this.flush();
  }

  /**
   * A task of a client link finished: its result goes to the client (true), unless the supervisor
   * aborted it (false: it goes in the supervisor's report, which gives its verdict instead).
   */
  finished(result: TaskResult, out: Part): boolean {
    const o = this.own.get(result.id);
    if (!o) return false;
    this.own.delete(result.id);
    // Its end goes the supervisor's way (`exec_cancelled`, or the result in the executor's
    // per-turn report, which does not wait 20 ms): its start, if still in the batch, goes first.
    // A start that came after the end would have the supervisor hold, as running for good, a task
    // that is over (and the engine run no task of the controller's behind it).
    if (o.verdict || o.aborted) this.flush();
    if (o.verdict) this.d.post({ type: "exec_cancelled", key: o.key, started: true });
    if (o.aborted) return false;
    const item: ExecItem = { rid: result.id, key: o.key, client: o.client, localId: o.localId, result };
    item.data = packFrames([out.body, ...out.frames]);
    this.report.transfer.push(...item.data.buffers);
    if (o.link.link.closed || out.body.length + out.frames.reduce((n, f) => n + f.length, 0) > COPY_MAX) {
      // The supervisor sends it (on the client's lean link): posted now, it outlives this thread.
      this.queue(item);
      this.flush();
      return true;
    }
    const seq = o.link.link.send(
      { type: "dresults", results: [{ ...result, id: o.localId }], pf: [out.frames.length] } satisfies FromPeer,
      [out],
    );
    item.sent = [o.link.n, seq];
    o.link.sent.push({ seq, rid: result.id });
    this.queue(item);
    return true;
  }

  /** The supervisor aborts these tasks (`drop` with a reason): their results must not reach the client. */
  aborting(ids: readonly number[]): void {
    for (const id of ids) {
      const o = this.own.get(id);
      if (o) o.aborted = true;
    }
  }

  /**
   * Keys the supervisor cancelled (and reported) before it knew this executor had them: dropped
   * if queued, aborted if running (their results go the supervisor's way, which ignores them),
   * kept otherwise so that they never start if they come later.
   */
  cancel(keys: readonly string[]): void {
    for (const key of keys) {
      let running = false;
      for (const [id, o] of this.own) {
        if (o.key !== key) continue;
        o.aborted = true;
        if (this.d.unqueue(id)) this.own.delete(id);
        else {
          // Its verdict waits for its end, as one the supervisor stops: the answer goes then.
          running = true;
          o.verdict = true;
          this.d.abort(id, "The task was cancelled.");
        }
      }
      if (running) continue;
      if (!this.keys.has(key)) {
        this.cancelled.add(key);
      }
      this.d.post({ type: "exec_cancelled", key, started: false });
    }
  }

  /** Sends the pending report now (the thread is about to end). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const acks: Array<[number, number]> = [];
    for (const link of this.links) {
      const upTo = link.link.peerAcked;
      let k = 0;
      while (k < link.sent.length && (link.sent[k] as { seq: number }).seq <= upTo) k++;
      if (k === 0) continue;
      acks.push([link.n, upTo]);
      link.sent.splice(0, k);
    }
    const { items, transfer } = this.report;
    if (items.length === 0 && acks.length === 0) return;
    this.report = { items: [], transfer: [] };
    this.d.post({ type: "exec_report", items, acks, journaled: this.d.journaled() }, transfer);
  }

  private queue(item: ExecItem): void {
    this.report.items.push(item);
    this.timer ??= setTimeout(() => this.flush(), REPORT_MS);
  }

  /** Links that left results unacknowledged for `ms` (the client vanished) are given up. */
  private checkLinks(ms: number, every: number): void {
    // A check that comes late ran after a task held this thread: the acknowledgements that came
    // meanwhile are still unread (timers run before I/O), so silence proves nothing this time.
    const now = performance.now();
    const late = now - this.checkedAt > 2 * every;
    this.checkedAt = now;
    if (late) return;
    for (const link of this.links) if (link.link.overdue(ms)) link.link.close();
    // Acknowledgements also travel in the reports: without new results, at this pace.
    if (this.timer === undefined) for (const link of this.links) if (link.sent.length) return this.flush();
  }

  /**
   * A link closed: what it did not acknowledge goes to the controller whole (the supervisor has
   * each value from the reports), and reaches the client through it.
   */
  private lost(link: Link, client: string): void {
    this.links.delete(link);
    this.flush();
    const items: Array<{ rid: number }> = [];
    for (const { seq, rid } of link.sent) if (seq > link.link.peerAcked) items.push({ rid });
    link.sent = [];
    if (items.length) this.d.post({ type: "exec_lost", client, link: link.n, items });
  }
}
