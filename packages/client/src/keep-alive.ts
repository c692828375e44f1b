/**
 * What keeps a script with a client alive: its pending work, and nothing else. A client whose
 * results, requests and waits have all settled lets Node exit (as `fetch`'s keep-alive sockets
 * do), and is closed on the way out so the controller hears a goodbye rather than a silence.
 */

/** A Map that calls `changed` whenever it becomes empty or stops being empty. */
export class WorkMap<K, V> extends Map<K, V> {
  constructor(private readonly changed: () => void) {
    super();
  }

  override set(key: K, value: V): this {
    const was = this.size;
    super.set(key, value);
    if (was === 0 && this.size > 0) this.changed();
    return this;
  }

  override delete(key: K): boolean {
    const deleted = super.delete(key);
    if (deleted && this.size === 0) this.changed();
    return deleted;
  }

  override clear(): void {
    const was = this.size;
    super.clear();
    if (was > 0) this.changed();
  }
}

/** Something to close when the process runs out of work. */
export interface Closable {
  close(): Promise<void>;
}

const open = new Set<Closable>();

/**
 * `beforeExit` comes when nothing holds the event loop any more: every registered client is idle
 * then (a client with work holds the loop). Closing sends each a goodbye; once they are closed the
 * loop empties again and the process exits. Not on `process.exit()` or a crash: the controller
 * then notices the silence after `--client-timeout`.
 */
function onBeforeExit(): void {
  const all = [...open];
  open.clear();
  process.off("beforeExit", onBeforeExit);
  for (const c of all) void c.close().catch(() => undefined);
}

/** Closes `c` when the process would otherwise exit. One process listener for every client. */
export function closeAtExit(c: Closable): void {
  if (open.size === 0) process.on("beforeExit", onBeforeExit);
  open.add(c);
}

/** `c` is closed: nothing to do at exit. */
export function forgetAtExit(c: Closable): void {
  if (open.delete(c) && open.size === 0) process.off("beforeExit", onBeforeExit);
}
