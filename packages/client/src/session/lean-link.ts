import type { ClientTask, Part } from "@ptcluster/protocol";
import { DuplexLink } from "@ptcluster/protocol/lean";
import type { DirectLinkOptions, DirectLinkState } from "./direct-link.js";

type Dial = { cancel(): void; hold(on: boolean): void };
type Batch = { tasks: ClientTask[]; parts: Part[] };

export interface LeanLinkOptions extends DirectLinkOptions {
  /** Send tasks to the engine's executor's own endpoint when the engine tells it (the default; not with `PTCLUSTER_DIRECT=lean`). */
  exec?: boolean;
}

/**
 * One client's lean link to one engine (`@ptcluster/protocol/lean`'s `DuplexLink`, to the
 * engine's `lean` endpoint): the same `dsubmit` out and `dresults` in as `DirectLink`, over plain
 * TCP with a tag per message instead of a ZeroMQ socket and the `Channel`, which cost each side
 * several times more per message. The hello names the engine meant and this client's routing id
 * (the engine reports its tasks under it), and is answered only by that engine. A link that
 * closes (the engine went, or its endpoint refused a message) is failed like one that stopped
 * acknowledging: its pending tasks go through the controller.
 *
 * With `exec`, a second link goes to the engine's executor thread (`dexec` names its endpoint):
 * tasks go there, and their results come back without the engine's
 * supervisor on the way. Order per engine holds: a task goes on the other link only once nothing
 * sent on this one is pending. The executor link is never failed for silence (a synchronous task
 * holds that thread; the engine's supervisor, which stays responsive, decides about it): when it
 * closes (its executor was replaced), what it carried without a result goes again on the lean
 * link, and the engine runs each task once by key.
 */
export class LeanLink {
  state: DirectLinkState = "dialing";
  readonly address: string;
  readonly pending = new Map<number, { task: ClientTask; part: Part }>();
  #link: DuplexLink | undefined;
  readonly #dial: Dial;
  #holding = true;
  readonly #o: LeanLinkOptions;
  #exec: { address: string; link?: DuplexLink; dial?: Dial } | undefined;
  /** Pending tasks sent on the executor's link. */
  readonly #onExec = new Set<number>();
  /** Tasks for the lean link held while some sent to the executor are pending (order). */
  readonly #deferred: Batch[] = [];
  readonly #closedExec = { sent: 0, received: 0 };
  /** Tasks sent on executors' links. */
  viaExecutor = 0;

  constructor(o: LeanLinkOptions) {
    this.#o = o;
    this.address = o.address;
    const fail = () => {
      if (this.state === "failed") return;
      this.state = "failed";
      o.failed();
    };
    this.#dial = this.#dialTo(
      o.address,
      (link) => {
        if (this.state !== "dialing") return link.close();
        this.#link = link;
        link.on = {
          message: (header, parts) => {
            if (header.type === "dresults") o.results(header, parts);
            else if (header.type === "dexec" && o.exec) this.#dialExec(header.address);
          },
          closed: fail,
        };
        link.hold(this.#holding);
        // The engine's executor binds its endpoint for clients on the first ask (`dexec` answers).
        if (o.exec) link.send({ type: "dexec_ask" });
        this.state = "ready";
        o.ready();
      },
      fail,
    );
  }

  #dialTo(address: string, welcome: (link: DuplexLink) => void, refused: () => void): Dial {
    const o = this.#o;
    const at = address.lastIndexOf(":");
    return DuplexLink.dial(
      {
        host: address.slice(0, at).replace(/^\[(.*)\]$/, "$1"),
        port: Number(address.slice(at + 1)),
        clusterKey: o.key,
        to: o.engine,
        id: Buffer.from(o.routingId),
        maxBytes: (o.maxMessageBytes ?? 0) + 65_536,
        ms: o.dialMs,
      },
      { welcome, refused },
    );
  }

  /** The engine named its executor's endpoint (none: it is being replaced): the old link goes, a new one is dialled. */
  #dialExec(address: string | undefined): void {
    const old = this.#exec;
    this.#exec = undefined;
    old?.dial?.cancel();
    old?.link?.close();
    if (!address || this.state === "failed") return;
    const exec: { address: string; link?: DuplexLink; dial?: Dial } = { address };
    this.#exec = exec;
    exec.dial = this.#dialTo(
      address,
      (link) => {
        delete exec.dial;
        if (this.#exec !== exec || this.state === "failed") return link.close();
        exec.link = link;
        link.on = {
          message: (header, parts) => {
            if (header.type === "dresults") this.#o.results(header, parts);
          },
          closed: () => {
            this.#closedExec.sent += link.bytes.sent;
            this.#closedExec.received += link.bytes.received;
            if (this.#exec === exec) this.#exec = undefined;
            this.#resendExec();
          },
        };
        link.hold(this.#holding);
      },
      () => {
        if (this.#exec === exec) this.#exec = undefined;
      },
    );
    exec.dial.hold(this.#holding);
  }

  send(tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      this.pending.set(t.id, { task: t, part: parts[i] as Part });
    }
    if (this.#deferred.length) return void this.#deferred.push({ tasks, parts });
    const exec = this.#exec?.link;
    // Tasks with a timeout go there too: the executor tells its supervisor of their start at once.
    if (exec && !exec.closed && this.pending.size - tasks.length === this.#onExec.size) {
      for (const t of tasks) this.#onExec.add(t.id);
      this.viaExecutor += tasks.length;
      exec.send({ type: "dsubmit", tasks, pf: parts.map((p) => p.frames.length) }, parts);
      return;
    }
    if (this.#onExec.size) return void this.#deferred.push({ tasks, parts });
    this.#lean({ tasks, parts });
  }

  #lean(b: Batch): void {
    this.#link?.send({ type: "dsubmit", tasks: b.tasks, pf: b.parts.map((p) => p.frames.length) }, b.parts);
  }

  /** A task's result came (by either path). */
  settled(id: number): void {
    this.pending.delete(id);
    if (this.#onExec.delete(id) && this.#onExec.size === 0) this.#flushDeferred();
  }

  #flushDeferred(): void {
    for (const b of this.#deferred.splice(0)) {
      const left = b.tasks.filter((t) => this.pending.has(t.id));
      if (left.length)
        this.#lean({ tasks: left, parts: left.map((t) => (this.pending.get(t.id) as { part: Part }).part) });
    }
  }

  /** The executor's link closed: what went on it without a result goes on the lean link, in order, then what waited. */
  #resendExec(): void {
    const tasks: ClientTask[] = [];
    const parts: Part[] = [];
    for (const [id, { task, part }] of this.pending)
      if (this.#onExec.has(id)) {
        tasks.push(task);
        parts.push(part);
      }
    this.#onExec.clear();
    if (tasks.length) this.#lean({ tasks, parts });
    this.#flushDeferred();
  }

  overdue(ms: number): boolean {
    if (this.#link?.overdue(ms)) return true;
    // The executor's link is not judged on its silence (a task may hold that thread), but the
    // engine's is: a message there must be acknowledged, so a network that no longer carries
    // either link fails this one (and what the executor's carried goes through the controller).
    if (this.#exec?.link?.overdue(ms)) this.#link?.send({ type: "dexec_ask" });
    return false;
  }

  hold(on: boolean): void {
    this.#holding = on;
    if (this.#link) this.#link.hold(on);
    else this.#dial.hold(on);
    this.#exec?.link?.hold(on);
    this.#exec?.dial?.hold(on);
  }

  get bytes(): { sent: number; received: number } {
    const e = this.#exec?.link?.bytes;
    return {
      sent: (this.#link?.bytes.sent ?? 0) + this.#closedExec.sent + (e?.sent ?? 0),
      received: (this.#link?.bytes.received ?? 0) + this.#closedExec.received + (e?.received ?? 0),
    };
  }

  /** Nothing to do: an unreferenced TCP socket lets the process go by itself. */
  nudge(): void {}

  close(): Promise<void> {
    this.state = "failed";
    this.#dial.cancel();
    this.#link?.close();
    this.#dialExec(undefined);
    return Promise.resolve();
  }
}
