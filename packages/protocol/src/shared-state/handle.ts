import type { Part } from "../part.js";
import type { OpenSpec, SharedAnswer, SharedArgs, SharedTransport } from "./wire.js";

/** What every shared object's proxy has: its name, and a way to call its object at the controller. */
export abstract class SharedHandle {
  constructor(
    protected readonly transport: SharedTransport,
    /** The object's name, cluster-wide. */
    readonly name: string,
    protected readonly spec: OpenSpec,
  ) {}

  protected call(
    op: string,
    args: SharedArgs = {},
    parts: readonly Part[] = [],
    signal?: AbortSignal,
  ): Promise<SharedAnswer> {
    signal?.throwIfAborted();
    return this.transport.call(this.name, this.spec, op, args, parts, signal);
  }

  /** Deletes the object at the controller (its waiting calls fail; its memory is freed). True if it existed. */
  async destroy(): Promise<boolean> {
    return (await this.call("destroy")).value === true;
  }
}
