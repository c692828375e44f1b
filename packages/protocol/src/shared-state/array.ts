import { SharedHandle } from "./handle.js";
import { pack, unpack } from "./values.js";
import type { UpdateOp } from "./dict.js";
import type { SharedTransport } from "./wire.js";

/** The typed arrays a shared array may be. */
export type NumericArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | BigInt64Array
  | BigUint64Array;
export type NumericArrayCtor = { new (length: number): NumericArray; readonly name: string };
type Element<A> = A extends BigInt64Array | BigUint64Array ? bigint : number;

/**
 * A typed array held by the controller (Python's `Array('d', …)`): element reads, writes and
 * read-modify-writes are atomic; `read` and `write` move slices whole, as binary frames.
 */
export class SharedArray<A extends NumericArray = Float64Array> extends SharedHandle {
  /** The `open` call that sent the initial values; later calls go after it. */
  private readonly opened: Promise<unknown> | undefined;

  /**
   * `init`: the initial values, or a kind and length for zeros (used only if the name is new).
   * Initial values are sent at once, so calls made after this one (from engines too) find the array.
   */
  constructor(transport: SharedTransport, name: string, init?: A | { kind: string; length: number }) {
    const made = init !== undefined && !ArrayBuffer.isView(init);
    super(transport, name, made ? { kind: "array", arrayKind: init.kind, length: init.length } : { kind: "array" });
    if (init !== undefined) {
      const values = ArrayBuffer.isView(init) ? [pack(init, `array(${JSON.stringify(name)})`)] : [];
      this.opened = super.call("open", {}, values);
      // Its failure is reported by the next call on this proxy, not as an unhandled rejection.
      this.opened.catch(() => undefined);
    }
  }

  protected override async call(...a: Parameters<SharedHandle["call"]>): ReturnType<SharedHandle["call"]> {
    if (this.opened) await this.opened;
    return super.call(...a);
  }

  async get(i: number): Promise<Element<A>> {
    return unpack((await this.call("get", { index: i })).parts[0]);
  }

  async set(i: number, value: Element<A>): Promise<void> {
    await this.call("set", { index: i }, [pack(value)]);
  }

  /** Atomic read-modify-write of element `i`; resolves to the value stored (wrapped or clamped as the kind does). */
  async update(i: number, op: UpdateOp, value: Element<A>): Promise<Element<A>> {
    return unpack((await this.call("update", { index: i, update: op }, [pack(value)])).parts[0]);
  }

  /** A copy of the elements from `offset` (default 0), `count` of them (default: to the end). */
  async read(offset?: number, count?: number): Promise<A> {
    const args = { ...(offset === undefined ? {} : { offset }), ...(count === undefined ? {} : { count }) };
    return unpack((await this.call("read", args)).parts[0]);
  }

  /** Writes `values` from `offset`. */
  async write(offset: number, values: ArrayLike<Element<A>>): Promise<void> {
    await this.call("write", { offset }, [pack(values)]);
  }

  async length(): Promise<number> {
    return (await this.call("length")).value as number;
  }
}
