import type { EngineRegistry } from "../engines/engine-registry.js";
import { FunctionSources } from "./function-sources.js";

/**
 * Shipping functions to engines: a client sends a function's source once and names it by hash
 * from then on; each engine is sent a source once, with the first task that needs it there. When
 * nothing holds a source any more, engines that compiled it are told to forget it.
 */
export class FunctionShipping {
  readonly sources = new FunctionSources((hash) => this.dropped(hash));
  /** Functions whose sources were dropped, for the engines to forget (sent with the next flush). */
  private forgotten: string[] = [];

  /** `changed` hears that there is something to tell the engines. */
  constructor(
    private readonly engines: EngineRegistry,
    private readonly changed: () => void,
  ) {}

  /** A task from a client names `fn`, perhaps with its source: the client holds the source until it goes. */
  offer(client: { knownFns: Set<string> }, fn: string, src: string | undefined): void {
    // Stored under its own hash only: no client can change what another's hash runs.
    if (src !== undefined && !client.knownFns.has(fn) && this.sources.offer(fn, src)) client.knownFns.add(fn);
  }

  /** A client lets go of the sources it sent (its tasks still running keep theirs). */
  releaseClient(client: { knownFns: Set<string> }): void {
    for (const fn of client.knownFns) this.sources.release(fn);
    client.knownFns.clear();
  }

  /**
   * The source to send with a task that runs `fn` on an engine that does not have it yet (the
   * engine has it from then on), or undefined if the controller no longer has it.
   */
  ship(engine: { knownFns: Set<string> }, fn: string): string | undefined {
    const src = this.sources.get(fn);
    if (src !== undefined) engine.knownFns.add(fn);
    return src;
  }

  /** Hashes the engines are to forget, once: sent ahead of the tasks of the same flush. */
  takeForgotten(): string[] | undefined {
    if (this.forgotten.length === 0) return undefined;
    const fns = this.forgotten;
    this.forgotten = [];
    return fns;
  }

  /** A source was dropped: engines that compiled it are told to forget it too. */
  private dropped(hash: string): void {
    let anyone = false;
    for (const e of this.engines.all()) anyone = e.knownFns.delete(hash) || anyone;
    if (anyone) {
      this.forgotten.push(hash);
      this.changed();
    }
  }
}
