import { describe, expect, it } from "vitest";
import {
  CompositeError,
  EngineLostError,
  HubLostError,
  RemoteError,
  TaskTimeoutError,
  encodeValue,
  type Part,
  type TaskResult,
} from "@ptcluster/protocol";
import { Gatherer, gatherTargets, type Gathered } from "../src/results/target-gatherer.js";
import { pendingMetadata } from "../src/results/async-result.js";
import type { NewTask, TaskSink } from "../src/session/view-port.js";

const ok = (id: number, engine: number): TaskResult => ({
  id,
  ok: true,
  engine,
  started: 10,
  completed: 20,
  stdout: `out ${engine}`,
});
const failed = (id: number, engine: number, sysError?: TaskResult["sysError"]): TaskResult => ({
  id,
  ok: false,
  engine,
  started: 10,
  completed: 20,
  ...(sysError ? { sysError } : {}),
});
const remoteFailure = (message: string): Part => encodeValue({ name: "Error", message, stack: `Error: ${message}` });

/** What the gatherer told its owner, in order. */
function recorder() {
  const events: string[] = [];
  let settled: { values?: unknown[]; err?: Error } | undefined;
  const out: Gathered = {
    value: (i, v) => events.push(`value ${i}=${String(v)}`),
    step: () => events.push("step"),
    resolve: (values) => (settled = { values }),
    reject: (err) => (settled = { err }),
  };
  return { out, events, settled: () => settled };
}

/** A port that records submissions and releases, handing out ids from 1. */
function fakePort() {
  const submitted: Array<{ task: NewTask; sink: TaskSink; src: string | undefined }> = [];
  const released: number[] = [];
  return {
    submitted,
    released,
    submit: (task: NewTask, _part: Part, sink: TaskSink, src?: string) => submitted.push({ task, sink, src }),
    release: (id: number) => released.push(id),
  };
}

describe("Gatherer", () => {
  it("resolves with values in slot order whatever the arrival order, and releases every task", () => {
    const port = fakePort();
    const metadata = [0, 1, 2].map((e) => pendingMetadata(e));
    const r = recorder();
    const g = new Gatherer(port, metadata, [7, 8, 9], false, r.out);
    const sinks = [0, 1, 2].map((i) => g.sink(() => i));
    sinks[2]?.onResult(ok(9, 2), encodeValue("c"));
    sinks[0]?.onResult(ok(7, 0), encodeValue("a"));
    expect(r.settled()).toBeUndefined();
    // A duplicate result for a finished slot is ignored.
    sinks[0]?.onResult(ok(7, 0), encodeValue("again"));
    sinks[1]?.onResult(ok(8, 1), encodeValue("b"));
    expect(r.settled()).toEqual({ values: ["a", "b", "c"] });
    expect(r.events).toEqual(["value 2=c", "step", "value 0=a", "step", "value 1=b", "step"]);
    expect(port.released).toEqual([7, 8, 9]);
    expect(metadata.map((m) => [m.status, m.stdout])).toEqual([
      ["ok", "out 0"],
      ["ok", "out 1"],
      ["ok", "out 2"],
    ]);
  });

  it("rejects with a CompositeError of the failures in slot order, values and errors side by side", () => {
    const metadata = [0, 1, 2].map((e) => pendingMetadata(e));
    const r = recorder();
    const g = new Gatherer(fakePort(), metadata, [1], false, r.out);
    const sink = g.sink((res) => res.engine);
    sink.onResult(failed(1, 2, { code: "ERR_PTC_ENGINE_LOST", message: "engine 2 died" }), encodeValue(null));
    sink.onResult(ok(1, 1), encodeValue(42));
    sink.onResult(failed(1, 0), remoteFailure("boom"));
    const err = r.settled()?.err as CompositeError;
    expect(err).toBeInstanceOf(CompositeError);
    expect(err.errors.map((e) => e.constructor)).toEqual([RemoteError, EngineLostError]);
    expect(err.results[1]).toBe(42);
    expect(metadata.map((m) => m.status)).toEqual(["error", "ok", "error"]);
  });

  it("a single slot rejects with its own error, naming the task's timeout", () => {
    const r = recorder();
    const g = new Gatherer(fakePort(), [pendingMetadata(-1)], [1], true, r.out, 250);
    g.sink(() => 0).onResult(failed(1, 3, { code: "ERR_PTC_TASK_TIMEOUT", message: "too long" }), encodeValue(null));
    const err = r.settled()?.err as TaskTimeoutError;
    expect(err).toBeInstanceOf(TaskTimeoutError);
    expect(err.timeoutMs).toBe(250);
    expect(err.engineId).toBe(3);
  });

  it("a value that does not decode fails its slot", () => {
    const r = recorder();
    const metadata = [pendingMetadata(0)];
    const g = new Gatherer(fakePort(), metadata, [1], true, r.out);
    g.sink(() => 0).onResult(ok(1, 0), { body: Buffer.from([0x92]), frames: [] });
    expect(r.settled()?.err).toBeInstanceOf(Error);
    expect(metadata[0]?.status).toBe("error");
  });

  it("a lost connection fails every pending slot once, keeping the values that came", () => {
    const port = fakePort();
    const r = recorder();
    const metadata = [0, 1].map((e) => pendingMetadata(e));
    const g = new Gatherer(port, metadata, [1, 2], false, r.out);
    const [a, b] = [g.sink(() => 0), g.sink(() => 1)];
    a.onResult(ok(1, 0), encodeValue("kept"));
    const lost = new HubLostError("gone");
    a.onFailure(lost);
    b.onFailure(lost);
    const err = r.settled()?.err as CompositeError;
    expect(err.errors).toEqual([lost]);
    expect(err.results).toEqual(["kept", lost]);
    expect(r.events.filter((e) => e === "step")).toHaveLength(2);
    expect(port.released).toEqual([1, 2]);
  });
});

describe("gatherTargets", () => {
  it("sends one task to every target when the payload is shared, and one per target otherwise", () => {
    const port = fakePort();
    const fn = { hash: "h", name: "f", src: "() => 1" };
    gatherTargets(
      port,
      { op: "apply", targets: [3, 5], parts: encodeValue(1), fn },
      false,
      [3, 5].map((e) => pendingMetadata(e)),
      [],
      recorder().out,
    );
    expect(port.submitted.map((s) => [s.task.to, s.task.fn, s.src])).toEqual([[[3, 5], "h", "() => 1"]]);
    gatherTargets(
      port,
      { op: "push", targets: [3, 5], parts: [encodeValue(1), encodeValue(2)] },
      false,
      [3, 5].map((e) => pendingMetadata(e)),
      [],
      recorder().out,
    );
    expect(port.submitted.slice(1).map((s) => s.task.to)).toEqual([[3], [5]]);
    // A shared task's results find their slot by engine.
    const r2 = recorder();
    const port2 = fakePort();
    gatherTargets(
      port2,
      { op: "apply", targets: [3, 5], parts: encodeValue(1) },
      false,
      [3, 5].map((e) => pendingMetadata(e)),
      [],
      r2.out,
    );
    port2.submitted[0]?.sink.onResult(ok(1, 5), encodeValue("five"));
    port2.submitted[0]?.sink.onResult(ok(1, 4), encodeValue("not a target"));
    port2.submitted[0]?.sink.onResult(ok(1, 3), encodeValue("three"));
    expect(r2.settled()).toEqual({ values: ["three", "five"] });
  });
});
