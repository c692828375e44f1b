import { describe, expect, it } from "vitest";
import { runInNewContext } from "node:vm";
import {
  SerializationError,
  assertCloneable,
  decodeValue,
  encodeValue,
  type FunctionRecord,
} from "@ptcluster/protocol";

// Unit tests of the value codec (pure, no cluster): functions as source records, class instances refused.
const ship = (fn: (...a: unknown[]) => unknown, path: string): FunctionRecord => ({
  hash: `h-${fn.name}`,
  src: String(fn),
  name: fn.name,
  path,
});

function thrownBy(f: () => unknown): SerializationError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(SerializationError);
    return err as SerializationError;
  }
  throw new Error("expected a SerializationError");
}

describe("value codec", () => {
  it("functions travel as records only with a shipFunction hook, and come back through the reviver, shared references kept", () => {
    function helper() {
      return 1;
    }
    const value = { a: helper, nested: [helper, -0], m: new Map([["k", helper]]) };
    expect(thrownBy(() => encodeValue(value, "namespace")).path).toBe("namespace.a");
    const { body, frames } = encodeValue(value, "namespace", undefined, { shipFunction: ship });
    const seen: FunctionRecord[] = [];
    const out = decodeValue(body, frames, (rec) => {
      seen.push(rec);
      return `revived ${rec.name}`;
    }) as { a: unknown; nested: unknown[]; m: Map<string, unknown> };
    expect(seen).toEqual([{ hash: "h-helper", src: String(helper), name: "helper", path: "namespace.a" }]);
    expect(out.a).toBe("revived helper");
    expect(out.nested[0]).toBe("revived helper");
    expect(Object.is(out.nested[1], -0)).toBe(true);
    expect(out.m.get("k")).toBe("revived helper");
    // Without a reviver (a client decoding a result), a function record is refused.
    expect(() => decodeValue(body, frames)).toThrow(/arrived where none can be received/);
  });

  it("a hook that refuses a function (built-in) stops the encoding with its error", () => {
    const refuse = (_fn: unknown, path: string): FunctionRecord => {
      throw new SerializationError(path, "no source");
    };
    expect(thrownBy(() => encodeValue({ x: [Math.max] }, "args", undefined, { shipFunction: refuse })).path).toBe(
      "args.x[0]",
    );
  });

  it("class instances are refused with the class name and path, worded for the direction; plain objects of any realm pass", () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    const sent = thrownBy(() => assertCloneable([{ price: new Money(5) }], "args"));
    expect(sent.path).toBe("args[0].price");
    expect(sent.message).toContain("class `Money`");
    expect(sent.message).toContain("Send its fields");
    const back = thrownBy(() => assertCloneable(new Money(5), "result", { returned: true }));
    expect(back.message).toContain("Return its fields");
    expect(thrownBy(() => assertCloneable(Object.create({ inherited: 1 }) as object, "v")).message).toMatch(
      /inherits from another object/,
    );

    expect(() => assertCloneable(Object.create(null) as object, "v")).not.toThrow();
    // A prototype with nothing of its own to lose (process.env's) is no class.
    expect(() => assertCloneable(process.env, "v")).not.toThrow();
    expect(() => assertCloneable(runInNewContext("({ a: { b: [1] } })"), "v")).not.toThrow();
    // Built-ins keep working, subclasses of Error included.
    expect(() =>
      assertCloneable(
        [new Date(), /x/, new Map(), new Set(), new Uint8Array(2), new (class E extends Error {})("e")],
        "v",
      ),
    ).not.toThrow();
  });

  it("a function in a result is refused with advice for results", () => {
    const e = thrownBy(() => assertCloneable({ cb: function cb() {} }, "result", { returned: true }));
    expect(e.path).toBe("result.cb");
    expect(e.message).toMatch(/cannot be returned/);
  });
});
