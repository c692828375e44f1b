import type { AdoptItem, ResultRecipient } from "./delivery.js";

/**
 * How long `rc.getResult` for a task not known yet of a connected client waits for its header.
 * A client sends the headers of a stream of direct calls every 20 ms (docs/architecture.md, "The
 * direct path"); this leaves room for a busy machine.
 */
export const HEADER_WAIT_MS = 1_000;

/**
 * Adoptions (`rc.getResult`) that name a task of a connected client whose header has not come
 * yet. Each is settled the moment the header comes (before the task's result can: the client sends
 * a task's header before, or with, its `done` record), or after {@link HEADER_WAIT_MS}, whichever
 * is first, by `settle` (which then answers "unknown" if the task still is not known).
 */
export class LateAdoptions {
  readonly #waiting = new Map<string, Array<{ client: ResultRecipient; item: AdoptItem; timer: NodeJS.Timeout }>>();

  constructor(
    private readonly settle: (client: ResultRecipient, items: AdoptItem[]) => void,
    private readonly waitMs = HEADER_WAIT_MS,
  ) {}

  hold(client: ResultRecipient, item: AdoptItem): void {
    const key = `${item.from}:${item.id}`;
    const timer = setTimeout(() => {
      const list = this.#waiting.get(key);
      const mine = list?.findIndex((w) => w.timer === timer) ?? -1;
      if (!list || mine < 0) return;
      list.splice(mine, 1);
      if (!list.length) this.#waiting.delete(key);
      this.settle(client, [item]);
    }, this.waitMs).unref();
    const list = this.#waiting.get(key);
    if (list) list.push({ client, item, timer });
    else this.#waiting.set(key, [{ client, item, timer }]);
  }

  /** Client `from` sent the headers of `tasks` (their ids are its own). */
  arrived(from: string, tasks: ReadonlyArray<{ id: number }>): void {
    if (this.#waiting.size === 0) return;
    for (const { id } of tasks) {
      const key = `${from}:${id}`;
      const list = this.#waiting.get(key);
      if (!list) continue;
      this.#waiting.delete(key);
      for (const w of list) {
        clearTimeout(w.timer);
        this.settle(w.client, [w.item]);
      }
    }
  }
}
