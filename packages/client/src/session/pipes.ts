import type { ClientToHub, Part, PipeFailedMsg, PipeOnError, PipeOutMsg, PipeStage } from "@ptcluster/protocol";
import { WorkMap } from "../keep-alive.js";
import type { PipeHandle, PipeSink } from "../pipeline/pipe-port.js";

/**
 * The session's open pipelines: numbers them, routes `pipe_out` and `pipe_failed` to their runs,
 * counts those with items out at the controller (they hold the process), and fails them all when
 * the connection ends.
 */
export class PipeTable {
  #next = 1;
  readonly #sinks = new Map<number, PipeSink>();
  readonly #busy: WorkMap<number, true>;

  /**
   * `send` puts a message on the connection; `firstUse` returns a function's source when its hash
   * has not travelled on this connection yet (the submitter's bookkeeping, shared with tasks).
   */
  constructor(
    private readonly send: (msg: ClientToHub, parts?: Part[]) => void,
    private readonly firstUse: (hash: string, src: string) => string | undefined,
    changed: () => void,
  ) {
    this.#busy = new WorkMap(changed);
  }

  /** Pipelines with items out at the controller. */
  get busy(): number {
    return this.#busy.size;
  }

  open(stages: PipeStage[], scopes: Part[], onError: PipeOnError, sink: PipeSink): PipeHandle {
    const pipe = this.#next++;
    const wire = stages.map((s) => {
      const { src, ...rest } = s;
      const first = src === undefined ? undefined : this.firstUse(s.fn, src);
      return first === undefined ? rest : { ...rest, src: first };
    });
    this.#sinks.set(pipe, sink);
    this.send({ type: "pipe_open", pipe, stages: wire, onError, pf: scopes.map((p) => p.frames.length) }, scopes);
    return {
      pipe,
      items: (first, parts) =>
        this.send({ type: "pipe_items", pipe, first, pf: parts.map((p) => p.frames.length) }, parts),
      end: (total) => this.send({ type: "pipe_end", pipe, total }),
      cancel: (reason) => this.send({ type: "pipe_cancel", pipe, reason }),
      busy: (on) => {
        if (!this.#sinks.has(pipe)) return;
        if (on) this.#busy.set(pipe, true);
        else this.#busy.delete(pipe);
      },
      close: () => {
        this.#sinks.delete(pipe);
        this.#busy.delete(pipe);
      },
    };
  }

  out(msg: PipeOutMsg, parts: Part[]): void {
    this.#sinks.get(msg.pipe)?.onOut(msg, parts);
  }

  failed(msg: PipeFailedMsg, parts: Part[]): void {
    const sink = this.#sinks.get(msg.pipe);
    // Nothing more comes for a failed pipe.
    this.#sinks.delete(msg.pipe);
    this.#busy.delete(msg.pipe);
    sink?.onFailed(msg, parts);
  }

  /** Cancels every open pipeline (`rc.abort()`). */
  abortAll(reason: string): void {
    for (const s of [...this.#sinks.values()]) s.abort(reason);
  }

  /** The connection ended: every open pipeline fails with `err`. */
  failAll(err: Error): void {
    const sinks = [...this.#sinks.values()];
    this.#sinks.clear();
    this.#busy.clear();
    for (const s of sinks) s.onFailure(err);
  }
}
