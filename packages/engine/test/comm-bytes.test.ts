import { describe, expect, it } from "vitest";
import { encodeValue, decodeValue } from "@ptcluster/protocol";
import { packComm, unpackComm } from "../src/shared/comm-bytes.js";

describe("engine.comm bytes between the executor thread and the supervisor", () => {
  it("carry only a view's own bytes, in transferable buffers, and arrive intact", () => {
    // A ring allreduce sends a 4 MiB chunk that is a view of an 8 MiB array.
    const whole = new Float64Array(1 << 20).map((_, i) => i);
    const chunk = whole.subarray(1 << 19);
    const { body, frames } = encodeValue(chunk, "value");
    expect(frames[0]?.buffer.byteLength).toBe(8 << 20); // the codec's frame views the whole array
    const data = packComm([{ body, frames }]);
    const total = (data?.buffers ?? []).reduce((n, b) => n + b.byteLength, 0);
    expect(total).toBe(body.byteLength + (4 << 20));
    // What the other thread gets once the buffers are transferred.
    const copy = structuredClone(data, { transfer: data?.buffers ?? [] });
    expect(data?.buffers.every((b) => b.byteLength === 0)).toBe(true); // moved, not cloned
    const [part] = unpackComm(copy);
    const back = decodeValue(part!.body, part!.frames) as Float64Array;
    expect(back).toBeInstanceOf(Float64Array);
    expect(back.length).toBe(1 << 19);
    expect(back[0]).toBe(1 << 19);
    expect(back[back.length - 1]).toBe((1 << 20) - 1);
  });

  it("a small value's body is copied out of the codec's reused output buffer", () => {
    encodeValue("x".repeat(300_000), "value"); // grows the codec's output buffer
    const { body, frames } = encodeValue(42, "value");
    expect(body.buffer.byteLength).toBeGreaterThan(256 * 1024);
    const data = packComm([{ body, frames }]);
    expect(data?.buffers.map((b) => b.byteLength)).toEqual([body.byteLength]);
    expect(decodeValue(unpackComm(data)[0]!.body)).toBe(42);
  });

  it("an abort has no bytes", () => {
    expect(packComm([])).toBeUndefined();
    expect(unpackComm(undefined)).toEqual([]);
  });
});
