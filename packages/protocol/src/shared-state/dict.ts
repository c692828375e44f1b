import { SharedHandle } from "./handle.js";
import { pack, unpack } from "./values.js";
import type { SharedTransport } from "./wire.js";

/** The read-modify-writes of `update`. */
export type UpdateOp = "add" | "sub" | "mul" | "div" | "min" | "max" | "and" | "or" | "xor";

/** A dict held by the controller (Python's `Manager().dict()`), each operation one atomic step. */
export class SharedDict<T = unknown> extends SharedHandle {
  constructor(transport: SharedTransport, name: string) {
    super(transport, name, { kind: "dict" });
  }

  async get(key: string): Promise<T | undefined> {
    const a = await this.call("get", { key });
    return a.value === true ? unpack<T>(a.parts[0]) : undefined;
  }

  async set(key: string, value: T): Promise<void> {
    await this.call("set", { key }, [pack(value, `dict.set(${JSON.stringify(key)})`)]);
  }

  async has(key: string): Promise<boolean> {
    return (await this.call("has", { key })).value === true;
  }

  /** True if the key was there. */
  async delete(key: string): Promise<boolean> {
    return (await this.call("delete", { key })).value === true;
  }

  async entries(): Promise<Array<[string, T]>> {
    const a = await this.call("entries");
    return (a.value as string[]).map((k, i) => [k, unpack<T>(a.parts[i])]);
  }

  async keys(): Promise<string[]> {
    return (await this.call("entries")).value as string[];
  }

  async size(): Promise<number> {
    return (await this.call("size")).value as number;
  }

  async clear(): Promise<void> {
    await this.call("clear");
  }

  /**
   * Atomic read-modify-write of a number (or bigint) entry: resolves to the new value. An absent
   * key starts at 0 (for `min` and `max`: at `value`).
   */
  async update<V extends number | bigint>(key: string, op: UpdateOp, value: V): Promise<V> {
    const a = await this.call("update", { key, update: op }, [pack(value)]);
    return unpack<V>(a.parts[0]);
  }

  /** Sets the key only if it is absent; resolves to the value it holds afterwards (yours if you won). */
  async setIfAbsent(key: string, value: T): Promise<T> {
    const a = await this.call("setIfAbsent", { key }, [pack(value)]);
    return unpack<T>(a.parts[0]);
  }

  /** Sets the key to `next` only if it holds `expected` now (`undefined`: absent); true if it did. */
  async compareAndSet(key: string, expected: T | undefined, next: T): Promise<boolean> {
    return (await this.call("compareAndSet", { key }, [pack(expected), pack(next)])).value === true;
  }
}
