import { randomBytes } from "node:crypto";
import type { Logger } from "@ptcluster/protocol";
import { closeLinks, type Links } from "./sockets.js";

export interface ComebackOptions {
  /** Opens channels that hold nothing under client id `id` and sends `connect`; `welcomed` gives the heartbeat period. */
  open(id: string): { links: Links; welcomed: Promise<number> };
  /** The controller welcomed the new connection: it is the session's from now on. */
  back(id: string, links: Links, heartbeatMs: number): void;
  log: Logger;
}

/**
 * After the controller was judged lost (silent, or not acknowledging, past the limit) and pending
 * work failed: one new connection, under a new client id, that waits for the controller to answer
 * again. ZeroMQ reconnects by itself, so nothing is opened again meanwhile, and the connection
 * does not hold the process (a script whose work is done exits). A controller that was only frozen,
 * or a link that was cut for a while, welcomes it as a new client; the old id's leftovers (running
 * tasks, held locks) end at the controller as a vanished client's do. A controller on that address
 * that refuses this client (another key, another version: not the cluster this client knew) ends
 * the watch.
 */
export class Comeback {
  #links: Links | undefined;

  constructor(private readonly o: ComebackOptions) {
    const id = randomBytes(16).toString("hex");
    const { links, welcomed } = o.open(id);
    this.#links = links;
    welcomed.then(
      (heartbeatMs) => {
        if (this.#links !== links) return; // stopped meanwhile
        this.#links = undefined;
        o.log.warn({ clientId: id }, "the controller answers again: connected as a new client");
        o.back(id, links, heartbeatMs);
      },
      (err: unknown) => {
        if (this.#links !== links) return;
        o.log.warn({ err }, "the controller's address answers but refuses this client: no longer waiting for it");
        void this.stop();
      },
    );
  }

  /** Stops waiting (the client closes): the connection closes. */
  async stop(): Promise<void> {
    const links = this.#links;
    this.#links = undefined;
    if (links) await closeLinks(links);
  }
}
