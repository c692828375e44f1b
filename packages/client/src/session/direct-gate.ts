import type { ClientTask, Part } from "@ptcluster/protocol";

export interface DirectGateOptions {
  /** While a shared object this client creates is not yet at the controller (`shared.array(name, values)`): resolves once none is. */
  opening(): Promise<void> | undefined;
  /** Sends a batch of DirectView tasks straight to their engines. */
  send(tasks: ClientTask[], parts: Part[]): void;
}

/**
 * Keeps program order between shared-state objects this client creates and the DirectView tasks
 * it sends after them. `shared.array(name, values)` returns at once and creates the array at the
 * controller, while DirectView tasks go straight to the engines: a task that uses the array could
 * reach the controller (through its engine) before the array does. So batches of DirectView tasks
 * wait, in order, while such a creation is unanswered (one controller round trip).
 */
export class DirectGate {
  #held: Array<[ClientTask[], Part[]]> = [];

  constructor(private readonly o: DirectGateOptions) {}

  submit(tasks: ClientTask[], parts: Part[]): void {
    if (this.#held.length > 0) return void this.#held.push([tasks, parts]);
    const opening = this.o.opening();
    if (!opening) return this.o.send(tasks, parts);
    this.#held.push([tasks, parts]);
    void opening.then(() => this.release());
  }

  /** Sends what is held now (before a cancel, which may name it: its engine must have it first). */
  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const [tasks, parts] of held) this.o.send(tasks, parts);
  }
}
