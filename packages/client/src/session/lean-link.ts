import type { ClientTask, Part } from "@ptcluster/protocol";
import { DuplexLink } from "@ptcluster/protocol/lean";
import type { DirectLinkOptions, DirectLinkState } from "./direct-link.js";

/**
 * One client's lean link to one engine (`@ptcluster/protocol/lean`'s `DuplexLink`, to the
 * engine's `lean` endpoint): the same `dsubmit` out and `dresults` in as `DirectLink`, over plain
 * TCP with a tag per message instead of a ZeroMQ socket and the `Channel`, which cost each side
 * several times more per message. The hello names the engine meant and this client's routing id
 * (the engine reports its tasks under it), and is answered only by that engine. A link that
 * closes (the engine went, or its endpoint refused a message) is failed like one that stopped
 * acknowledging: its pending tasks go through the controller.
 */
export class LeanLink {
  state: DirectLinkState = "dialing";
  readonly address: string;
  readonly pending = new Map<number, { task: ClientTask; part: Part }>();
  #link: DuplexLink | undefined;
  readonly #dial: { cancel(): void; hold(on: boolean): void };
  #holding = true;

  constructor(o: DirectLinkOptions) {
    this.address = o.address;
    const at = o.address.lastIndexOf(":");
    const host = o.address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const fail = () => {
      if (this.state === "failed") return;
      this.state = "failed";
      o.failed();
    };
    this.#dial = DuplexLink.dial(
      {
        host,
        port: Number(o.address.slice(at + 1)),
        clusterKey: o.key,
        to: o.engine,
        id: Buffer.from(o.routingId),
        maxBytes: (o.maxMessageBytes ?? 0) + 65_536,
        ms: o.dialMs,
      },
      {
        welcome: (link) => {
          if (this.state !== "dialing") return link.close();
          this.#link = link;
          link.on = {
            message: (header, parts) => {
              if (header.type === "dresults") o.results(header, parts);
            },
            closed: fail,
          };
          link.hold(this.#holding);
          this.state = "ready";
          o.ready();
        },
        refused: fail,
      },
    );
  }

  send(tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      this.pending.set(t.id, { task: t, part: parts[i] as Part });
    }
    this.#link?.send({ type: "dsubmit", tasks, pf: parts.map((p) => p.frames.length) }, parts);
  }

  overdue(ms: number): boolean {
    return this.#link?.overdue(ms) ?? false;
  }

  hold(on: boolean): void {
    this.#holding = on;
    if (this.#link) this.#link.hold(on);
    else this.#dial.hold(on);
  }

  get bytes(): { sent: number; received: number } {
    return { sent: this.#link?.bytes.sent ?? 0, received: this.#link?.bytes.received ?? 0 };
  }

  /** Nothing to do: an unreferenced TCP socket lets the process go by itself. */
  nudge(): void {}

  close(): Promise<void> {
    this.state = "failed";
    this.#dial.cancel();
    this.#link?.close();
    return Promise.resolve();
  }
}
