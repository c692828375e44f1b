import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import {
  AUTH_FRAME_BYTES,
  MalformedMessageError,
  Signer,
  Verifier,
  decodeBody,
  decodeValue,
  encodeBody,
  encodeValue,
  newClusterKey,
  seededRandom,
} from "../src/index.js";

/** A small seeded PRNG (mulberry32), so a failure can be replayed. */
const rng = seededRandom;

function mutate(buf: Buffer, r: () => number): Buffer {
  const out = Buffer.from(buf);
  const kind = Math.floor(r() * 4);
  if (kind === 0 && out.length) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
  if (kind === 1) return out.subarray(0, Math.floor(r() * out.length));
  if (kind === 2)
    return Buffer.concat([
      out,
      Buffer.from(Array.from({ length: 1 + Math.floor(r() * 16) }, () => Math.floor(r() * 256))),
    ]);
  if (kind === 3) {
    for (let i = 0; i < 4 && out.length; i++) {
      const at = Math.floor(r() * out.length);
      out[at] = (out[at] as number) ^ (1 << Math.floor(r() * 8));
    }
  }
  return out;
}

// Hostile or corrupted input must end in an error (or a value) quickly, with bounded memory:
// never a hang, a crash of the process, or an allocation sized by what the input claims.
describe("decoder fuzzing", () => {
  const seed = 20261121;

  it("decodeBody and decodeValue survive mutated and random input, quickly", () => {
    const r = rng(seed);
    const samples = [
      encodeBody(
        { type: "submit", tasks: [{ id: 1, op: "apply", to: [0], fn: "h", src: "(a) => a" }], pf: [1], t: 1 },
        [{ ...encodeValue([{ a: 1, b: [1, 2, 3], c: new Map([[1, "x"]]) }]), frames: [Buffer.alloc(2048, 7)] }],
      ),
      encodeBody({ type: "results", results: [{ id: 1, ok: true, engine: 0, started: 1, completed: 2 }], pf: [0] }, [
        encodeValue(new Set([1, "two", 3n])),
      ]),
    ];
    const start = Date.now();
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const frames = samples[i % samples.length]!.map((f) => (r() < 0.5 ? mutate(f, r) : f));
      if (r() < 0.1) frames.push(Buffer.from([Math.floor(r() * 256)]));
      try {
        const { parts } = decodeBody(frames, 0);
        for (const p of parts) decodeValue(p.body, p.frames);
      } catch (err) {
        errors++;
        expect(err).toBeInstanceOf(Error);
      }
      const junk = Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)));
      try {
        decodeValue(junk, []);
      } catch {
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
    expect(Date.now() - start).toBeLessThan(10_000);
  });

  it("msgpack claiming billions of elements fails without allocating them", () => {
    const packr = new Packr({ useRecords: false });
    const rss0 = process.memoryUsage().rss;
    // array32 / map32 / str32 / bin32 headers announcing ~4 billion items or bytes, then nothing.
    for (const head of [0xdd, 0xdf, 0xdb, 0xc6]) {
      const bomb = Buffer.from([head, 0xff, 0xff, 0xff, 0xf0]);
      expect(() => decodeValue(bomb, [])).toThrow();
      expect(() => decodeBody([bomb], 0)).toThrow(MalformedMessageError);
      // A header whose part lengths claim more than the frame holds is malformed.
      const header = packr.pack({ type: "submit", tasks: [], pf: [0], pl: [0xfffffff0] });
      expect(() => decodeBody([header, Buffer.alloc(8)], 0)).toThrow(MalformedMessageError);
    }
    expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * 1024 * 1024);
  });

  it("the verifier refuses random auth frames at bounded cost and remembers nothing of them", () => {
    const r = rng(seed + 1);
    const key = newClusterKey();
    const verifier = new Verifier(key);
    const frames = encodeBody({ type: "ping" }, undefined);
    const start = Date.now();
    for (let i = 0; i < 5000; i++) {
      const auth = Buffer.from(
        Array.from({ length: r() < 0.9 ? AUTH_FRAME_BYTES : Math.floor(r() * 2 * AUTH_FRAME_BYTES) }, () =>
          Math.floor(r() * 256),
        ),
      );
      expect(verifier.verify("c2h", undefined, auth, frames)).not.toBe("ok");
    }
    expect(Date.now() - start).toBeLessThan(10_000);
    // Real traffic still verifies afterwards.
    const signer = new Signer(key);
    expect(verifier.verify("c2h", undefined, signer.sign("c2h", undefined, frames), frames)).toBe("ok");
  });
});
