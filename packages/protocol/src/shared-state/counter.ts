import { SharedHandle } from "./handle.js";
import { pack, unpack } from "./values.js";
import type { SharedTransport } from "./wire.js";

/** A number held by the controller; `add` is atomic (Python's Manager `Value` has no atomic increment). */
export class SharedCounter extends SharedHandle {
  constructor(transport: SharedTransport, name: string) {
    super(transport, name, { kind: "counter" });
  }

  /** Adds `n` (default 1); resolves to the new value. */
  async add(n: number | bigint = 1): Promise<number> {
    return unpack<number>((await this.call("add", {}, [pack(n)])).parts[0]);
  }

  async get(): Promise<number> {
    return unpack<number>((await this.call("get")).parts[0]);
  }

  async set(value: number | bigint): Promise<void> {
    await this.call("set", {}, [pack(value)]);
  }
}
