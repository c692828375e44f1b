import { randomBytes, randomFillSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import {
  AUTH_FRAME_BYTES,
  MalformedMessageError,
  SESSION_BYTES,
  SMALL_TAG_BYTES,
  Signer,
  Verifier,
  decodeBody,
  encodeBody,
  encodeValue,
  newClusterKey,
  type ChannelLabel,
  type Message,
} from "@ptcluster/protocol";

const LABELS: ChannelLabel[] = ["c2h", "h2c", "e2h", "h2e", "pub"];

/** Header, a part body and a large binary frame, as encodeBody lays them out. */
function sampleFrames(binaryBytes = 2048): Buffer[] {
  const payload = new Uint8Array(binaryBytes);
  randomFillSync(payload);
  const { body, frames } = encodeValue([[1, "two", payload]]);
  expect(frames).toHaveLength(1);
  return encodeBody(
    { type: "submit", tasks: [{ id: 1, op: "apply", to: [0], fn: "h", src: "(a) => a" }], pf: [1], t: 1 },
    [{ body, frames }],
  );
}

const copy = (frames: readonly Buffer[]): Buffer[] => frames.map((f) => Buffer.from(f));
function flipped(frames: readonly Buffer[], frame: number, byte: number, mask = 0x01): Buffer[] {
  const out = copy(frames);
  const buf = out[frame] as Buffer;
  buf[byte] = (buf[byte] as number) ^ mask;
  return out;
}

describe("Signer/Verifier", () => {
  const key = newClusterKey();

  it("accepts a valid message, on every channel, with and without a recipient", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const frames = sampleFrames();
    for (const label of LABELS) {
      expect(verifier.verify(label, undefined, signer.sign(label, undefined, frames), frames)).toBe("ok");
      const peer = randomBytes(16);
      expect(verifier.verify(label, peer, signer.sign(label, peer, frames), frames)).toBe("ok");
    }
    const auth = signer.sign("c2h", undefined, frames);
    expect(auth).toHaveLength(AUTH_FRAME_BYTES);
    expect(auth.subarray(0, SESSION_BYTES).equals(signer.session)).toBe(true);
  });

  it("refuses a replay of the same message, and an older sequence number", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const frames = sampleFrames();
    const first = signer.sign("c2h", undefined, frames);
    const second = signer.sign("c2h", undefined, frames);
    const third = signer.sign("c2h", undefined, frames);
    expect(verifier.verify("c2h", undefined, first, frames)).toBe("ok");
    expect(verifier.verify("c2h", undefined, first, frames)).toBe("replay");
    expect(verifier.verify("c2h", undefined, third, frames)).toBe("ok"); // gaps are fine (lost messages)
    expect(verifier.verify("c2h", undefined, second, frames)).toBe("replay"); // but never going back
    expect(verifier.verify("c2h", undefined, third, frames)).toBe("replay");
  });

  it("refuses any single byte flipped in the header, the body, a large binary frame or the auth frame", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key); // bad-mac is never remembered, so one verifier sees every attempt
    const frames = sampleFrames(2048);
    const auth = signer.sign("c2h", undefined, frames);
    let attempts = 0;
    for (let f = 0; f < frames.length; f++) {
      const frame = frames[f] as Buffer;
      for (let b = 0; b < frame.length; b++) {
        for (const mask of [0x01, 0x80]) {
          attempts++;
          if (verifier.verify("c2h", undefined, auth, flipped(frames, f, b, mask)) !== "bad-mac") {
            throw new Error(`flipping byte ${b} of frame ${f} (mask ${mask}) was not refused`);
          }
        }
      }
    }
    for (let b = 0; b < auth.length; b++) {
      const bad = flipped([auth], 0, b)[0] as Buffer;
      attempts++;
      expect(verifier.verify("c2h", undefined, bad, frames), `auth byte ${b}`).toBe("bad-mac");
    }
    expect(attempts).toBeGreaterThan(4096);
    // The untouched message still passes: the refused attempts left no state behind.
    expect(verifier.verify("c2h", undefined, auth, frames)).toBe("ok");
  });

  it("refuses a flipped byte anywhere in a 4 MiB binary frame (sampled)", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const frames = sampleFrames(4 * 1024 * 1024);
    const big = 2;
    expect(frames[big]?.length).toBe(4 * 1024 * 1024);
    const auth = signer.sign("c2h", undefined, frames);
    const size = (frames[big] as Buffer).length;
    const positions = [0, 1, 15, 16, size >> 1, size - 17, size - 16, size - 1];
    for (let i = 0; i < 24; i++) positions.push(Math.floor(Math.random() * size));
    for (const p of positions)
      expect(verifier.verify("c2h", undefined, auth, flipped(frames, big, p)), `byte ${p}`).toBe("bad-mac");
    expect(verifier.verify("c2h", undefined, auth, frames)).toBe("ok");
  });

  it("refuses a message verified on another channel", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const frames = sampleFrames();
    for (const signed of LABELS) {
      const auth = signer.sign(signed, undefined, frames);
      for (const other of LABELS.filter((l) => l !== signed)) {
        expect(verifier.verify(other, undefined, auth, frames), `${signed} → ${other}`).toBe("bad-mac");
      }
    }
  });

  it("refuses a message for one ROUTER peer replayed to another", () => {
    const signer = new Signer(key);
    const alice = Buffer.from("a".repeat(32));
    const bob = Buffer.from("b".repeat(32));
    const frames = sampleFrames();
    const auth = signer.sign("h2c", alice, frames);
    // Bob's verifier (a different process) has never seen this session: only the recipient binding stops it.
    expect(new Verifier(key).verify("h2c", bob, auth, frames)).toBe("bad-mac");
    expect(new Verifier(key).verify("h2c", undefined, auth, frames)).toBe("bad-mac");
    expect(new Verifier(key).verify("h2c", alice.subarray(0, 31), auth, frames)).toBe("bad-mac");
    expect(new Verifier(key).verify("h2c", alice, auth, frames)).toBe("ok");
    // Without a recipient when signed, one cannot be added on the way.
    const unbound = signer.sign("h2c", undefined, frames);
    expect(new Verifier(key).verify("h2c", bob, unbound, frames)).toBe("bad-mac");
  });

  it("refuses a message signed with another key", () => {
    const frames = sampleFrames();
    const auth = new Signer(newClusterKey()).sign("c2h", undefined, frames);
    expect(new Verifier(key).verify("c2h", undefined, auth, frames)).toBe("bad-mac");
    // Same session bytes, different key: still refused.
    const session = randomBytes(SESSION_BYTES);
    const forged = new Signer(newClusterKey(), session).sign("c2h", undefined, frames);
    expect(new Verifier(key).verify("c2h", undefined, forged, frames)).toBe("bad-mac");
    expect(
      new Verifier(key).verify("c2h", undefined, new Signer(key, session).sign("c2h", undefined, frames), frames),
    ).toBe("ok");
  });

  it("refuses frames split, joined, shifted, added or dropped", () => {
    const frames = [Buffer.from("header-bytes"), Buffer.from("body-one"), Buffer.from("body-two")];
    const [h, b1, b2] = frames as [Buffer, Buffer, Buffer];
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const auth = signer.sign("c2h", undefined, frames);
    const variants: Record<string, Buffer[]> = {
      joined: [h, Buffer.concat([b1, b2])],
      "all joined": [Buffer.concat([h, b1, b2])],
      split: [h, b1.subarray(0, 4), b1.subarray(4), b2],
      "byte moved forward": [h, Buffer.concat([b1, b2.subarray(0, 1)]), b2.subarray(1)],
      "byte moved back": [h, b1.subarray(0, -1), Buffer.concat([b1.subarray(-1), b2])],
      "empty frame appended": [h, b1, b2, Buffer.alloc(0)],
      "empty frame inserted": [h, Buffer.alloc(0), b1, b2],
      "frame dropped": [h, b1],
      reordered: [h, b2, b1],
    };
    for (const [name, v] of Object.entries(variants))
      expect(verifier.verify("c2h", undefined, auth, v), name).toBe("bad-mac");
    expect(verifier.verify("c2h", undefined, auth, frames)).toBe("ok");
  });

  it("a small message (the SHA-384 tag): any byte flipped, another channel, recipient or key is refused", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const { body, frames: binary } = encodeValue([[1, "two", { three: 3 }]]);
    expect(binary).toHaveLength(0);
    const frames = encodeBody({ type: "submit", tasks: [{ id: 1, op: "apply", to: [0], fn: "h" }], pf: [1], t: 1 }, [
      { body, frames: [] },
    ]);
    expect(frames.reduce((n, f) => n + f.length, 0)).toBeLessThan(SMALL_TAG_BYTES / 4);
    const auth = signer.sign("c2h", undefined, frames);
    for (let f = 0; f < frames.length; f++)
      for (let b = 0; b < (frames[f] as Buffer).length; b++)
        expect(verifier.verify("c2h", undefined, auth, flipped(frames, f, b)), `frame ${f} byte ${b}`).toBe("bad-mac");
    for (let b = 0; b < auth.length; b++)
      expect(verifier.verify("c2h", undefined, flipped([auth], 0, b)[0] as Buffer, frames), `auth byte ${b}`).toBe(
        "bad-mac",
      );
    for (const other of LABELS.filter((l) => l !== "c2h"))
      expect(verifier.verify(other, undefined, auth, frames), other).toBe("bad-mac");
    const alice = Buffer.from("a".repeat(32));
    const toAlice = signer.sign("h2c", alice, frames);
    expect(new Verifier(key).verify("h2c", Buffer.from("b".repeat(32)), toAlice, frames)).toBe("bad-mac");
    expect(new Verifier(key).verify("h2c", undefined, toAlice, frames)).toBe("bad-mac");
    expect(new Verifier(newClusterKey()).verify("c2h", undefined, auth, frames)).toBe("bad-mac");
    expect(verifier.verify("c2h", undefined, auth, frames)).toBe("ok");
    expect(verifier.verify("h2c", alice, toAlice, frames)).toBe("ok");
  });

  it("messages on each side of the switch between the two tags verify, and refuse a change", () => {
    // The descriptor of one frame on `c2h` without a recipient: label 3, recipient length 1,
    // auth fields 40, frame count 4, one length 8.
    const descriptor = 3 + 1 + 40 + 4 + 8;
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    for (const covered of [SMALL_TAG_BYTES - 1, SMALL_TAG_BYTES, SMALL_TAG_BYTES + 1, SMALL_TAG_BYTES + 64]) {
      const frames = [randomBytes(covered - descriptor)];
      const auth = signer.sign("c2h", undefined, frames);
      const last = (frames[0] as Buffer).length - 1;
      expect(verifier.verify("c2h", undefined, auth, flipped(frames, 0, last)), `${covered}: last byte`).toBe(
        "bad-mac",
      );
      expect(verifier.verify("c2h", undefined, auth, flipped(frames, 0, 0)), `${covered}: first byte`).toBe("bad-mac");
      expect(
        verifier.verify("c2h", undefined, auth, [(frames[0] as Buffer).subarray(0, last)]),
        `${covered}: cut`,
      ).toBe("bad-mac");
      expect(verifier.verify("c2h", undefined, auth, frames), `${covered}`).toBe("ok");
    }
  });

  it("calls an auth frame of the wrong size malformed", () => {
    const signer = new Signer(key);
    const verifier = new Verifier(key);
    const frames = sampleFrames();
    const auth = signer.sign("c2h", undefined, frames);
    for (const bad of [
      auth.subarray(0, AUTH_FRAME_BYTES - 1),
      auth.subarray(0, SESSION_BYTES),
      Buffer.alloc(0),
      Buffer.concat([auth, Buffer.from([0])]),
    ]) {
      expect(verifier.verify("c2h", undefined, bad, frames)).toBe("malformed");
    }
    expect(verifier.verify("c2h", undefined, auth, frames)).toBe("ok");
  });
});

describe("decodeBody", () => {
  const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
  const pack = (v: unknown): Buffer => packr.pack(v);
  const one = Buffer.from([1]);

  it("splits a well-formed message into header and parts", () => {
    const header: Message = { type: "results", results: [], pf: [1, 0] };
    const frames = encodeBody(header, [
      { body: Buffer.from("a"), frames: [Buffer.from("b")] },
      { body: Buffer.from("c"), frames: [] },
    ]);
    const routed = [Buffer.from("routing-id"), ...frames];
    const { header: h, parts } = decodeBody(routed, 1);
    expect(h).toEqual(header);
    expect(parts.map((p) => [p.body.toString(), p.frames.map(String)])).toEqual([
      ["a", ["b"]],
      ["c", []],
    ]);
  });

  const cases: Record<string, Buffer[]> = {
    "no frames": [],
    "empty header": [Buffer.alloc(0)],
    "not msgpack": [Buffer.from([0xc1])],
    "truncated msgpack": [pack({ type: "bye", reason: "a long enough string" }).subarray(0, 6)],
    "trailing bytes": [Buffer.concat([pack({ type: "bye" }), Buffer.from([1, 2])])],
    "header is a number": [pack(42)],
    "header is null": [pack(null)],
    "header without type": [pack({ id: 1 })],
    "type is not a string": [pack({ type: 7 })],
    "pf is not an array": [pack({ type: "submit", pf: 1 }), one, one],
    "pf claims more frames than sent": [pack({ type: "submit", pf: [2] }), one, one],
    "pf claims fewer frames than sent": [pack({ type: "submit", pf: [0] }), one, one],
    "pf negative": [pack({ type: "submit", pf: [-1] }), one],
    "pf fractional": [pack({ type: "submit", pf: [0.5] }), one, one],
    "pf entry is a string": [pack({ type: "submit", pf: ["1"] }), one, one],
    "frames without pf": [pack({ type: "bye" }), one],
  };
  for (const [name, frames] of Object.entries(cases)) {
    it(`throws MalformedMessageError: ${name}`, () => {
      expect(() => decodeBody(frames, 0)).toThrow(MalformedMessageError);
    });
  }
});
