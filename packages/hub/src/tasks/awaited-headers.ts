/**
 * How long a request naming a task the controller does not know yet waits for its header. A
 * client sends the headers of a stream of direct calls every 20 ms (docs/architecture.md, "The
 * direct path"); this leaves room for a busy machine.
 */
export const HEADER_WAIT_MS = 1_000;

interface Waiter {
  arrived: () => void;
  expired: () => void;
  timer: NodeJS.Timeout;
}

/**
 * Requests of one client that name another client's task by msg id (`rc.getResult`, `rc.abort`,
 * `ptcluster abort`) before its header reached the controller. Each is carried out the moment the
 * header comes (before the task's result can: a client sends a task's header before, or with, its
 * result's record), or given up after {@link HEADER_WAIT_MS}, whichever is first.
 */
export class AwaitedHeaders {
  readonly #waiting = new Map<string, Waiter[]>();

  constructor(private readonly waitMs = HEADER_WAIT_MS) {}

  /** Runs `arrived` when client `from`'s task `id` comes, else `expired` at the bound. */
  wait(from: string, id: number, arrived: () => void, expired: () => void): void {
    const key = `${from}:${id}`;
    const waiter: Waiter = {
      arrived,
      expired,
      timer: setTimeout(() => {
        const list = this.#waiting.get(key);
        const at = list?.indexOf(waiter) ?? -1;
        if (!list || at < 0) return;
        list.splice(at, 1);
        if (!list.length) this.#waiting.delete(key);
        expired();
      }, this.waitMs).unref(),
    };
    const list = this.#waiting.get(key);
    if (list) list.push(waiter);
    else this.#waiting.set(key, [waiter]);
  }

  /** Client `from` sent the headers of `tasks` (their ids are its own), and they are recorded. */
  arrived(from: string, tasks: ReadonlyArray<{ id: number }>): void {
    if (this.#waiting.size === 0) return;
    for (const { id } of tasks) {
      const key = `${from}:${id}`;
      const list = this.#waiting.get(key);
      if (!list) continue;
      this.#waiting.delete(key);
      for (const w of list) {
        clearTimeout(w.timer);
        w.arrived();
      }
    }
  }
}
