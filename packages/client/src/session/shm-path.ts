import { ShmEndpoint, probeShm, refuseRefs, type ConnectionInfo, type Part } from "@ptcluster/protocol";
import type { Roster } from "./roster.js";
import type { NewTask } from "./view-port.js";

/**
 * Same-host data for a client (docs/architecture.md): when this client and a task's engines are all
 * on the controller's host, large binary frames of the task's data go through shared-memory files
 * (one hard link per engine of a DirectView call; one file for a load-balanced task) and only
 * their references travel; results come back the same way, read into the memory that holds them.
 */
export class ClientShm {
  readonly #endpoint: ShmEndpoint | undefined;
  /** The `…_any` files of load-balanced tasks, by task id: removed once the task is over (its result came). */
  readonly #shared = new Map<number, string[]>();
  #filling = false;

  constructor(connection: ConnectionInfo, clientId: string) {
    const config = probeShm(connection);
    if (config) this.#endpoint = new ShmEndpoint(config, `c${clientId}`);
  }

  /** Whether results may come as files (the task says so to its engines). */
  get on(): boolean {
    return this.#endpoint !== undefined;
  }

  /**
   * The task's data with its large frames in files, when every engine that may run it is on this
   * host; `shared` lists a load-balanced task's files, for {@link track}.
   */
  out(task: NewTask, part: Part, roster: Roster): { part: Part; shared?: string[] } {
    const ep = this.#endpoint;
    if (!ep || !part.frames.some((f) => f.byteLength >= ep.config.threshold)) return { part };
    const direct = task.to.length > 0;
    const engines = direct ? task.to : (task.lb?.targets ?? roster.ids);
    if (engines.length === 0 || !engines.every((id) => roster.info(id)?.shm === true)) return { part };
    try {
      const out = ep.externalize(part, direct ? [...new Set(engines)].map((e) => `e${e}`) : "any", true);
      // Filled after this turn, once the task's message is on its way: the engines read as it is written.
      if (!this.#filling) {
        this.#filling = true;
        setImmediate(() => this.#fill());
      }
      return direct ? { part: out } : { part: out, shared: ep.sharedFiles(out) };
    } catch {
      // The folder is full or gone: the data travels over the network instead.
      return { part };
    }
  }

  #fill(): void {
    this.#filling = false;
    try {
      this.#endpoint?.flushWrites();
    } catch {
      // The folder is full or gone: the engines' reads give up with ShmUnavailableError.
    }
  }

  /** Task `id` wrote these `…_any` files: they go when it is over. */
  track(id: number, shared: string[]): void {
    if (shared.length > 0) this.#shared.set(id, shared);
  }

  /** Task `id` is over (its result came, or the client closes): its shared files go. */
  done(id?: number): void {
    if (id === undefined) {
      this.#fill();
      for (const files of this.#shared.values()) ShmEndpoint.remove(files);
      this.#shared.clear();
      return;
    }
    const files = this.#shared.get(id);
    if (files === undefined) return;
    this.#shared.delete(id);
    ShmEndpoint.remove(files);
  }

  /**
   * Task `id`'s result: its part with its files read and checked (throws `ShmTamperedError` or
   * `ShmUnavailableError`). A load-balanced task's result is its last: no re-run will read its files.
   */
  receive(id: number, part: Part): Part {
    this.done(id);
    if (!this.#endpoint) {
      refuseRefs(part, "this client");
      return part;
    }
    return this.#endpoint.materialize(part);
  }
}
