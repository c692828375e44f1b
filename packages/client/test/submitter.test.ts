import { describe, expect, it } from "vitest";
import { MessageTooLargeError, encodeValue, type ClientTask, type Part } from "@ptcluster/protocol";
import { Submitter } from "../src/session/submitter.js";

/** A submitter whose batches are flushed when the test says (not on a microtask) and recorded. */
function harness(maxMessageBytes = 1_000_000) {
  const sent: Array<{ tasks: ClientTask[]; parts: Part[] }> = [];
  const deferred: Array<() => void> = [];
  const s = new Submitter({
    maxMessageBytes,
    send: (tasks, parts) => sent.push({ tasks, parts }),
    defer: (f) => deferred.push(f),
  });
  const runDeferred = () => deferred.splice(0).forEach((f) => f());
  return { s, sent, runDeferred };
}

const part = (v: unknown): Part => encodeValue(v);

describe("Submitter", () => {
  it("sends the tasks of one tick as one message, in order, with increasing ids", () => {
    const { s, sent, runDeferred } = harness();
    const ids = [1, 2, 3].map((i) => s.add({ op: "apply", to: [0] }, part(i)));
    expect(ids).toEqual([1, 2, 3]);
    expect(sent).toHaveLength(0);
    runDeferred();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.tasks.map((t) => t.id)).toEqual([1, 2, 3]);
    expect(sent[0]?.parts).toHaveLength(3);
    // The next tick starts a new batch.
    s.add({ op: "apply", to: [0] }, part(4));
    runDeferred();
    expect(sent.map((b) => b.tasks.length)).toEqual([3, 1]);
  });

  it("ships a function's source with its first task only", () => {
    const { s, sent, runDeferred } = harness();
    s.add({ op: "apply", to: [0], fn: "h1" }, part(1), "(x) => x");
    s.add({ op: "apply", to: [0], fn: "h1" }, part(2), "(x) => x");
    s.add({ op: "apply", to: [0], fn: "h2" }, part(3), "(y) => y");
    runDeferred();
    expect(sent[0]?.tasks.map((t) => t.src)).toEqual(["(x) => x", undefined, "(y) => y"]);
  });

  it("starts a new message when a task would overflow the limit, and refuses a task that never fits", () => {
    const payload = new Uint8Array(400);
    const bytes = part(payload);
    const { s, sent, runDeferred } = harness(1_000);
    s.add({ op: "apply", to: [0] }, bytes);
    s.add({ op: "apply", to: [0] }, bytes);
    s.add({ op: "apply", to: [0] }, bytes);
    // The third did not fit with the first two: they went at once, it waits for the tick.
    expect(sent.map((b) => b.tasks.map((t) => t.id))).toEqual([[1, 2]]);
    runDeferred();
    expect(sent.map((b) => b.tasks.map((t) => t.id))).toEqual([[1, 2], [3]]);
    expect(() => s.add({ op: "apply", to: [0] }, part(new Uint8Array(2_000)))).toThrow(MessageTooLargeError);
    expect(() => s.checkSize(part(new Uint8Array(2_000)), "This value")).toThrow(MessageTooLargeError);
    // A refused task takes no id.
    expect(s.add({ op: "apply", to: [0] }, part(0))).toBe(4);
  });

  it("flush sends what is batched now (before a cancel), and the deferred flush then sends nothing", () => {
    const { s, sent, runDeferred } = harness();
    s.add({ op: "apply", to: [0] }, part(1));
    s.flush();
    expect(sent).toHaveLength(1);
    runDeferred();
    expect(sent).toHaveLength(1);
  });

  it("adopted tasks share the numbering", () => {
    const { s } = harness();
    expect(s.newId()).toBe(1);
    expect(s.add({ op: "apply", to: [0] }, part(1))).toBe(2);
  });
});
