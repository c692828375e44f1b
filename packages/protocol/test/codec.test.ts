import { randomFillSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FRAME_THRESHOLD, SerializationError, decodeValue, encodeValue } from "@ptcluster/protocol";

/** Encodes, then decodes from copies of the body and frames, as a receiving process would see them. */
function roundTrip<T>(value: T): T {
  const { body, frames } = encodeValue(value);
  return decodeValue(
    Buffer.from(body),
    frames.map((f) => Buffer.from(f)),
  ) as T;
}

function unserializable(value: unknown, root = "args"): SerializationError {
  try {
    encodeValue(value, root);
  } catch (err) {
    expect(err).toBeInstanceOf(SerializationError);
    expect((err as SerializationError).code).toBe("ERR_PTC_UNSERIALIZABLE");
    return err as SerializationError;
  }
  throw new Error("encodeValue accepted a value it cannot send");
}

const TYPED_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;

/** A typed array of `bytes` bytes whose contents are not all zero. */
function filled(Ctor: (typeof TYPED_ARRAYS)[number], bytes: number): ArrayBufferView {
  const ab = new ArrayBuffer(bytes);
  randomFillSync(new Uint8Array(ab));
  return new Ctor(ab);
}

describe("encodeValue/decodeValue: structured-clone types", () => {
  it("primitives, including undefined, null, NaN and ±Infinity", () => {
    const v = {
      u: undefined,
      n: null,
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      s: "héllo ☃",
      t: true,
      f: false,
      i: 42,
      x: 1.5,
      neg: -7,
    };
    const out = roundTrip(v);
    expect(out).toStrictEqual(v);
    expect("u" in out).toBe(true);
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip(NaN)).toBeNaN();
  });

  it("keeps the sign of -0, as structuredClone does", () => {
    expect(Object.is(structuredClone(-0), -0)).toBe(true);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is(roundTrip({ z: -0 }).z, -0)).toBe(true);
  });

  it("Map, Set and Date, nested", () => {
    const d = new Date("2024-02-29T12:34:56.789Z");
    const v = new Map<unknown, unknown>([
      ["a", new Set([1, "two", d])],
      [3, new Map([["inner", { when: d, list: [new Set(), new Map()] }]])],
      [{ objKey: true }, null],
    ]);
    const out = roundTrip(v);
    expect(out).toBeInstanceOf(Map);
    expect(out).toStrictEqual(v);
    const set = out.get("a") as Set<unknown>;
    expect(set).toBeInstanceOf(Set);
    const date = [...set][2] as Date;
    expect(date).toBeInstanceOf(Date);
    expect(date.getTime()).toBe(d.getTime());
    expect(roundTrip(new Date(Number.NaN)).getTime()).toBeNaN();
  });

  it("BigInt, small, negative and beyond 2^64", () => {
    for (const b of [
      0n,
      1n,
      -1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 64n,
      2n ** 64n + 1n,
      -(2n ** 100n) - 12345n,
      3n ** 200n,
    ]) {
      expect(roundTrip(b)).toBe(b);
    }
    expect(roundTrip({ big: [2n ** 128n] })).toStrictEqual({ big: [2n ** 128n] });
  });

  it("RegExp with source and flags", () => {
    for (const re of [/a.b/gimsuy, /^\d+(?:\.\d*)?$/, /[\u{1F600}]/u, /x/d]) {
      const out = roundTrip(re);
      expect(out).toBeInstanceOf(RegExp);
      expect(out.source).toBe(re.source);
      expect(out.flags).toBe(re.flags);
    }
  });

  it("Error subclasses keep name, message, stack, cause and own fields", () => {
    class ValidationError extends Error {
      readonly field: string;
      constructor(message: string, field: string, options?: ErrorOptions) {
        super(message, options);
        this.name = "ValidationError";
        this.field = field;
      }
    }
    const inner = new RangeError("out of range");
    const err = Object.assign(new ValidationError("bad input", "age", { cause: inner }), {
      code: "E_BAD",
      details: { min: 0, seen: [1n, new Date(0)] },
    });
    const out = roundTrip(err);
    expect(out).toBeInstanceOf(Error);
    expect(out.name).toBe("ValidationError");
    expect(out.message).toBe("bad input");
    expect(out.stack).toBe(err.stack);
    expect(out.field).toBe("age");
    expect((out as unknown as { code: string }).code).toBe("E_BAD");
    expect((out as unknown as { details: unknown }).details).toStrictEqual({ min: 0, seen: [1n, new Date(0)] });
    const cause = out.cause as Error;
    expect(cause).toBeInstanceOf(RangeError);
    expect(cause.message).toBe("out of range");
    expect(cause.stack).toBe(inner.stack);
    for (const E of [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
      const e = roundTrip(new E("m"));
      expect(e).toBeInstanceOf(E);
      expect(e.name).toBe(E.name);
    }
  });

  it("every typed array kind, DataView and ArrayBuffer, small and large", () => {
    for (const bytes of [16, 4096]) {
      for (const T of TYPED_ARRAYS) {
        const v = filled(T, bytes);
        const out = roundTrip(v);
        expect(out.constructor).toBe(T);
        expect(out).toStrictEqual(v);
      }
      const ab = new ArrayBuffer(bytes);
      randomFillSync(new Uint8Array(ab));
      const abOut = roundTrip(ab);
      expect(abOut).toBeInstanceOf(ArrayBuffer);
      expect(Buffer.from(abOut).equals(Buffer.from(ab))).toBe(true);
      const dv = new DataView(ab.slice(0));
      const dvOut = roundTrip(dv);
      expect(dvOut).toBeInstanceOf(DataView);
      expect(Buffer.from(dvOut.buffer, dvOut.byteOffset, dvOut.byteLength).equals(Buffer.from(ab))).toBe(true);
      const buf = Buffer.from(new Uint8Array(ab));
      expect(Buffer.isBuffer(roundTrip(buf))).toBe(true);
      expect(roundTrip(buf).equals(buf)).toBe(true);
    }
  });

  it("a view into part of a larger buffer carries only its own bytes", () => {
    const backing = new ArrayBuffer(8192);
    randomFillSync(new Uint8Array(backing));
    for (const v of [
      new Uint8Array(backing, 3, 2000),
      new Float64Array(backing, 8, 500),
      new Int16Array(backing, 6, 4),
    ]) {
      const out = roundTrip(v);
      expect(out.constructor).toBe(v.constructor);
      expect(out).toStrictEqual(v);
    }
  });

  it("nested objects", () => {
    const v = {
      a: { b: { c: [1, [2, [3, { d: "deep", e: [new Map([["m", { f: new Set([[]]) }]])] }]]] } },
      empty: [],
      obj: {},
    };
    expect(roundTrip(v)).toStrictEqual(v);
  });

  it("arrays keep their holes, as structuredClone does", () => {
    const sparse: unknown[] = [1, , 3]; // eslint-disable-line no-sparse-arrays
    sparse[7] = "end";
    expect(Object.keys(structuredClone(sparse))).toEqual(["0", "2", "7"]);
    const out = roundTrip({ sparse });
    expect(out.sparse).toHaveLength(8);
    expect(Object.keys(out.sparse)).toEqual(["0", "2", "7"]);
    expect(out).toStrictEqual({ sparse });
  });

  it("cycles and shared references keep their identity", () => {
    const shared = { s: 1 };
    const node: { name: string; self?: unknown; kids: unknown[] } = { name: "root", kids: [shared, shared] };
    node.self = node;
    const m = new Map<string, unknown>([["node", node]]);
    node.kids.push(m);
    const out = roundTrip(node) as typeof node;
    expect(out.self).toBe(out);
    expect(out.kids[0]).toBe(out.kids[1]);
    expect((out.kids[2] as Map<string, unknown>).get("node")).toBe(out);
    const arr: unknown[] = [];
    arr.push(arr);
    const arrOut = roundTrip(arr);
    expect(arrOut[0]).toBe(arrOut);
  });
});

describe("encodeValue: binary frames", () => {
  it(`values of ${FRAME_THRESHOLD} bytes or more travel as separate frames, smaller ones inline`, () => {
    expect(FRAME_THRESHOLD).toBe(1024);
    const below = encodeValue(new Uint8Array(1023).fill(7));
    expect(below.frames).toHaveLength(0);
    expect(below.body.length).toBeGreaterThanOrEqual(1023);

    const at = encodeValue(new Uint8Array(1024).fill(7));
    expect(at.frames).toHaveLength(1);
    expect(at.frames[0]?.length).toBe(1024);
    expect(at.body.length).toBeLessThan(64);

    const big = new Float64Array(1 << 16).fill(Math.PI);
    const mixed = encodeValue({
      a: new Uint8Array(2048),
      b: [big, new Int32Array(4)],
      c: new ArrayBuffer(5000),
      d: new DataView(new ArrayBuffer(1500)),
      e: Buffer.alloc(10),
    });
    expect(mixed.frames).toHaveLength(4);
    expect(mixed.frames.map((f) => f.length)).toEqual([2048, big.byteLength, 5000, 1500]);
    expect(mixed.body.length).toBeLessThan(200);
    const out = decodeValue(mixed.body, mixed.frames) as { b: [Float64Array, Int32Array] };
    expect(out.b[0]).toStrictEqual(big);
  });

  it("a large value is not copied into a frame: the frame views the caller's memory", () => {
    const v = new Uint8Array(4096);
    const { frames } = encodeValue(v);
    expect(frames[0]?.buffer).toBe(v.buffer);
  });

  it("a 50 MiB Uint8Array round-trips byte-exact in one frame", () => {
    const v = new Uint8Array(50 * 1024 * 1024);
    randomFillSync(v);
    const { body, frames } = encodeValue({ data: v });
    expect(frames).toHaveLength(1);
    expect(body.length).toBeLessThan(64);
    const received = [Buffer.from(frames[0] as Buffer)]; // a copy, as off the wire
    const out = decodeValue(Buffer.from(body), received) as { data: Uint8Array };
    expect(out.data).toBeInstanceOf(Uint8Array);
    expect(out.data.byteLength).toBe(v.byteLength);
    expect(
      Buffer.compare(Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength), Buffer.from(v.buffer)),
    ).toBe(0);
  });

  it("a body that refers to a missing frame fails to decode", () => {
    const { body } = encodeValue(new Uint8Array(2048));
    expect(() => decodeValue(body, [])).toThrow(/frame 0 is missing/);
  });
});

describe("encodeValue: SerializationError names the path", () => {
  it("a function, top-level and nested", () => {
    const named = function handler() {};
    expect(unserializable(() => 1, "fn").path).toBe("fn");
    const e = unserializable([1, { cb: named }]);
    expect(e.path).toBe("args[1].cb");
    expect(e.message).toContain("`args[1].cb`");
    expect(e.message).toContain("handler");
  });

  it("a symbol", () => {
    expect(unserializable({ a: { "weird key": Symbol("s") } }).path).toBe('args.a["weird key"]');
  });

  it("a Promise", () => {
    const e = unserializable({ pending: Promise.resolve(1) });
    expect(e.path).toBe("args.pending");
    expect(e.message).toMatch(/await it/);
  });

  it("a WeakMap, a WeakSet and a WeakRef", () => {
    expect(unserializable([0, 0, new WeakMap()]).path).toBe("args[2]");
    expect(unserializable({ s: new WeakSet() }).path).toBe("args.s");
    expect(unserializable({ r: new WeakRef({}) }).path).toBe("args.r");
  });

  it("a getter that throws", () => {
    const v = {
      ok: 1,
      get bad(): number {
        throw new Error("getter exploded");
      },
    };
    const e = unserializable({ outer: v });
    expect(e.path).toBe("args.outer.bad");
    expect(e.message).toContain("getter exploded");
  });

  it("deep inside Map values, Set items and arrays", () => {
    const v = new Map<string, unknown>([
      ["ok", 1],
      ["k", [0, 1, { list: [new Map([[7, new WeakMap()]])] }]],
    ]);
    expect(unserializable(v).path).toBe('args.get("k")[2].list[0].get(7)');
    expect(unserializable([[0, [1, [2, () => 0]]]]).path).toBe("args[0][1][1][1]");
    expect(unserializable({ s: new Set([1, 2, Symbol.iterator]) }).path).toBe("args.s.<item 2>");
    expect(unserializable(new Map([[() => 0, 1]])).path).toBe("args.<key 0>");
  });

  it("inside an Error's cause", () => {
    const err = new Error("outer", { cause: { fn: () => 0 } });
    expect(unserializable({ err }).path).toBe("args.err.cause.fn");
  });

  it("fails before anything is produced, and the codec stays usable", () => {
    expect(() => encodeValue({ big: new Uint8Array(4096), f: () => 0 })).toThrow(SerializationError);
    const after = encodeValue(new Uint8Array(4096));
    expect(after.frames).toHaveLength(1);
  });
});
