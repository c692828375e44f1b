import {
  ShmEndpoint,
  parseRef,
  isRef,
  refuseRefs,
  type EngineTask,
  type Part,
  type ShmConfig,
} from "@ptcluster/protocol";
import { rmSync } from "node:fs";
import { join } from "node:path";

/**
 * The executor's side of same-host data (docs/architecture.md): it reads the files of a task's
 * large values itself, straight into the memory the values then live in (no copy through the
 * supervisor: only the references cross the thread hop), and writes large results to files for
 * a client on this host.
 */
export class ExecutorShm {
  readonly #endpoint: ShmEndpoint | undefined;

  constructor(config: ShmConfig | undefined) {
    // The key crossed the thread boundary as a Uint8Array.
    if (config) this.#endpoint = new ShmEndpoint({ ...config, key: Buffer.from(config.key) }, "");
  }

  /** This engine's id, once registered: its files are named `e<id>_…`, its links `…_e<id>`. */
  set engineId(id: number) {
    if (this.#endpoint) this.#endpoint.self = `e${id}`;
  }

  /**
   * The task's frames with references read and checked (a tampered file throws before the task's
   * code runs). A load-balanced task's files stay for its client to remove once the task is over,
   * so that a re-run elsewhere (a retry, or this engine died) still finds them.
   */
  read(body: Buffer, frames: Buffer[]): Buffer[] {
    const part = { body, frames };
    if (!this.#endpoint) {
      refuseRefs(part, "this engine");
      return frames;
    }
    return this.#endpoint.materialize(part).frames;
  }

  /**
   * A result for a client on this host: large frames as files for it, made now and filled by
   * {@link flushWrites} once the result has gone, so the client reads while this thread writes.
   */
  write(task: EngineTask, out: Part): Part {
    if (!this.#endpoint || task.shm === undefined || this.#endpoint.self === "") return out;
    try {
      return this.#endpoint.externalize(out, [task.shm], true);
    } catch {
      // The folder is full or gone (swept at stop): the result travels over the network instead.
      return out;
    }
  }

  get pending(): boolean {
    return this.#endpoint?.pending ?? false;
  }

  flushWrites(): void {
    try {
      this.#endpoint?.flushWrites();
    } catch {
      // The folder is full or gone: the client's read gives up with ShmUnavailableError.
    }
  }

  /** A task dropped before it ran (cancelled): the files addressed to this engine alone go. */
  discard(frames: readonly Buffer[]): void {
    const self = this.#endpoint?.self;
    if (!self) return;
    for (const f of frames) {
      const ref = isRef(f) ? parseRef(f) : undefined;
      if (ref?.perReceiver) rmSync(join(this.#endpoint!.config.dir, `${ref.name}_${self}`), { force: true });
    }
  }
}
