import { MessageTooLargeError, encodedSize, type ClientTask, type Part } from "@ptcluster/protocol";
import type { NewTask } from "./view-port.js";

export interface SubmitterOptions {
  /** Largest message the cluster accepts (bytes): no batch grows past it. */
  maxMessageBytes: number;
  /** Sends one batch as one `submit` message (the session drops it once it is no longer connected). */
  send(tasks: ClientTask[], parts: Part[]): void;
  /** Runs the flush of a batch after the current tick (default `queueMicrotask`). */
  defer?: (flush: () => void) => void;
}

/**
 * Numbers tasks and batches them: tasks submitted in the same tick travel in one message (a
 * `map` over 10,000 items is a few messages, not 10,000), and a function's source travels with
 * the first task that uses it only.
 */
export class Submitter {
  #nextId = 1;
  readonly #sentFns = new Set<string>();
  #batch: { tasks: ClientTask[]; parts: Part[]; bytes: number } | undefined;
  readonly #opts: SubmitterOptions;
  readonly #defer: (flush: () => void) => void;

  constructor(opts: SubmitterOptions) {
    this.#opts = opts;
    this.#defer = opts.defer ?? queueMicrotask;
  }

  /** A fresh task id (also for adopted tasks, which share the numbering). */
  newId(): number {
    return this.#nextId++;
  }

  /** Throws `MessageTooLargeError` if this part could never be sent. */
  checkSize(part: Part, what: string): void {
    const bytes = encodedSize(part);
    if (bytes > this.#opts.maxMessageBytes) throw new MessageTooLargeError(what, bytes, this.#opts.maxMessageBytes);
  }

  /** Queues a task into the current batch; returns its id. */
  add(task: NewTask, part: Part, src?: string): number {
    const max = this.#opts.maxMessageBytes;
    const bytes = encodedSize(part) + (src?.length ?? 0);
    if (bytes > max) throw new MessageTooLargeError(`This task's data (${task.op})`, bytes, max);
    const id = this.newId();
    const t: ClientTask = { ...task, id };
    if (t.fn && src !== undefined && !this.#sentFns.has(t.fn)) {
      this.#sentFns.add(t.fn);
      t.src = src;
    }
    // A batch stays within the message limit: a task that would overflow it starts the next one.
    if (this.#batch && this.#batch.bytes + bytes > max) this.flush();
    if (!this.#batch) {
      this.#batch = { tasks: [], parts: [], bytes: 0 };
      this.#defer(() => this.flush());
    }
    this.#batch.tasks.push(t);
    this.#batch.parts.push(part);
    this.#batch.bytes += bytes;
    return id;
  }

  /**
   * A function's source to send with its first use on this connection (a pipeline's stage), or
   * undefined when it went already. Flush first: a batched task may be what carries it.
   */
  firstUse(hash: string, src: string): string | undefined {
    if (this.#sentFns.has(hash)) return undefined;
    this.#sentFns.add(hash);
    return src;
  }

  /** A new connection (the controller had let this client go, and its sources with it): sources go again. */
  forgetSources(): void {
    this.#sentFns.clear();
  }

  /** Sends what is batched now (before a cancel, so the controller knows the tasks it names). */
  flush(): void {
    const b = this.#batch;
    this.#batch = undefined;
    if (b) this.#opts.send(b.tasks, b.parts);
  }
}
