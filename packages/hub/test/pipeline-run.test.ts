import { describe, expect, it } from "vitest";
import {
  decodeValue,
  encodeValue,
  packParts,
  packStageReport,
  unpackParts,
  type ClientTask,
  type HubToClient,
  type Logger,
  type Part,
  type PipeStage,
  type TaskResult,
} from "@ptcluster/protocol";
import { PipelineRun } from "../src/pipelines/pipeline-run.js";

const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };
const enc = (v: unknown): Part => {
  const { body, frames } = encodeValue(v);
  return { body: Buffer.from(body), frames };
};
const dec = (p: Part) => decodeValue(p.body, p.frames);
const log = { debug() {}, info() {}, warn() {}, error() {}, child: () => log } as unknown as Logger;

interface Sent {
  id: number;
  task: ClientTask;
  items: unknown[];
  sink: (r: TaskResult, part: Part) => void;
}

/** A run with a fake controller: tasks are kept for the test to answer, messages to the client recorded. */
function harness(stages: PipeStage[], onError: "fail" | "skip" = "fail", slots = 2) {
  const tasks: Sent[] = [];
  const cancelled: number[] = [];
  const messages: Array<{ msg: HubToClient; parts: Part[] }> = [];
  let nextId = 1;
  let local = 0;
  const run = new PipelineRun(
    1,
    stages,
    stages.map(() => EMPTY),
    onError,
    {
      submit: (task, part, sink) => {
        const [, ...items] = unpackParts(part);
        tasks.push({ id: nextId, task, items: items.map(dec), sink });
        return nextId++;
      },
      cancel: (ids) => cancelled.push(...ids),
      slots: () => slots,
      engineIds: () => [0, 1, 2],
      nextLocalId: () => --local,
      send: (msg, parts) => messages.push({ msg, parts: parts ?? [] }),
      changed: () => {},
      log,
    },
  );
  const step = () => {
    run.dispatch();
    run.flush(Date.now());
  };
  /** Answers task `t` as an engine running `fn` on each item would (`null` from fn: the item threw). */
  const answer = (t: Sent, fn: (x: unknown) => unknown, engine = 0, ms = 0.001) => {
    const n: number[] = [];
    const outs: Part[] = [];
    for (const item of t.items) {
      let r: unknown;
      try {
        r = fn(item);
      } catch (err) {
        n.push(-1);
        outs.push(enc({ name: "Error", message: (err as Error).message, stack: "" }));
        continue;
      }
      if (t.task.stage === "filter") n.push(r ? 1 : 0);
      else if (t.task.stage === "map") {
        n.push(1);
        outs.push(enc(r));
      } else {
        const list = r as unknown[];
        n.push(list.length);
        for (const v of list) outs.push(enc(v));
      }
    }
    const part = packParts([packStageReport({ n, ms: t.items.map(() => ms) }), ...outs]);
    t.sink({ id: t.task.id, ok: true, engine, started: 0, completed: 0 }, part);
  };
  const failTask = (t: Sent, code: string, engine = 0) =>
    t.sink({ id: t.task.id, ok: false, engine, started: 0, completed: 0, sysError: { code, message: code } }, EMPTY);
  /** Every output the client got, by item. */
  const outputs = () => {
    const out = new Map<number, unknown[]>();
    for (const { msg, parts } of messages) {
      if (msg.type !== "pipe_out") continue;
      let k = 0;
      for (const [i, n] of msg.done) {
        out.set(i, parts.slice(k, k + n).map(dec));
        k += n;
      }
    }
    return out;
  };
  const open = () => tasks.filter((t) => !answered.has(t.id));
  const answered = new Set<number>();
  const take = () => {
    const list = open();
    for (const t of list) answered.add(t.id);
    return list;
  };
  return { run, tasks, cancelled, messages, step, answer, failTask, outputs, take };
}

const stage = (kind: PipeStage["kind"], extra: Partial<PipeStage> = {}): PipeStage => ({
  kind,
  fn: `${kind}-fn`,
  name: kind,
  ...extra,
});

describe("a pipeline run at the controller", () => {
  it("hands each stage's results to the next and reports every item with its outputs in order, however the tasks finish", () => {
    const h = harness([stage("map"), stage("filter"), stage("flatMap")]);
    h.run.addItems(0, [0, 1, 2, 3, 4, 5].map(enc));
    h.run.end(6);
    for (let round = 0; round < 10 && h.outputs().size < 6; round++) {
      h.step();
      // Answered last to first: finishing order must not change what each item yields.
      for (const t of h.take().reverse()) {
        if (t.task.stage === "map") h.answer(t, (x) => (x as number) * 10);
        else if (t.task.stage === "filter") h.answer(t, (x) => (x as number) !== 20);
        else h.answer(t, (x) => [x, `${String(x)}!`]);
      }
    }
    h.step();
    expect(Object.fromEntries(h.outputs())).toEqual({
      0: [0, "0!"],
      1: [10, "10!"],
      2: [],
      3: [30, "30!"],
      4: [40, "40!"],
      5: [50, "50!"],
    });
    // Every stage task ran the stage's function, named, as a load-balanced task of op `stage`.
    for (const t of h.tasks) expect(t.task).toMatchObject({ op: "stage", lb: { retries: 0 } });
    expect(h.run.state).toBe("done");
    const last = h.messages.at(-1)?.msg;
    expect(last?.type === "pipe_out" && last.stats?.map((s) => [s.kind, s.done, s.inFlight])).toEqual([
      ["map", 6, 0],
      ["filter", 6, 0],
      ["flatMap", 5, 0],
    ]);
  });

  it("sizes tasks from measured run times: tiny items travel many per task, spread over the slots", () => {
    const h = harness([stage("map")], "fail", 2);
    h.run.addItems(
      0,
      Array.from({ length: 2000 }, (_, i) => enc(i)),
    );
    h.step();
    // Before any measure: one item per task (it could be slow).
    const first = h.take();
    expect(first.map((t) => t.items.length)).toEqual([1, 1, 1, 1]);
    for (const t of first) h.answer(t, (x) => x, 0, 0.002);
    h.step();
    const sizes = h.take().map((t) => t.items.length);
    expect(Math.max(...sizes)).toBeGreaterThan(500);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
  });

  it("keeps a stage within its concurrency", () => {
    const h = harness([stage("map", { concurrency: 3 })], "fail", 8);
    h.run.addItems(
      0,
      Array.from({ length: 10 }, (_, i) => enc(i)),
    );
    h.step();
    expect(h.take().reduce((n, t) => n + t.items.length, 0)).toBe(3);
  });

  it("retries a failing item alone, on an engine that has not failed it", () => {
    const h = harness([stage("map", { retries: 1 })]);
    h.run.addItems(0, [enc(1), enc(2)]);
    h.run.end(2);
    h.step();
    for (const t of h.take())
      h.answer(
        t,
        (x) => {
          if (x === 2) throw new Error("flaky");
          return x;
        },
        1,
      );
    h.step();
    const [retry] = h.take();
    expect(retry?.items).toEqual([2]);
    expect(retry?.task.lb?.targets).toEqual([0, 2]);
    h.answer(retry as Sent, (x) => x, 0);
    h.step();
    expect(Object.fromEntries(h.outputs())).toEqual({ 0: [1], 1: [2] });
    expect(h.run.stats()[0]).toMatchObject({ retried: 1, failed: 0, done: 2 });
  });

  it("fails with the item's own error, naming its stage and index, and cancels what is in flight", () => {
    const h = harness([stage("map"), stage("map")]);
    h.run.addItems(0, [1, 2, 3, 4].map(enc));
    h.step();
    const [a, b] = h.take();
    expect([a?.items, b?.items]).toEqual([[1], [2]]);
    h.answer(a as Sent, (x) => x); // item 0 moves to stage 1
    h.step();
    h.answer(
      b as Sent,
      (x) => {
        if (x === 2) throw new Error("bad item");
        return x;
      },
      1,
    );
    const failed = h.messages.find((m) => m.msg.type === "pipe_failed");
    expect(failed?.msg).toMatchObject({ type: "pipe_failed", stage: 0, item: 1, engine: 1, remote: true });
    expect(dec(failed?.parts[0] as Part)).toMatchObject({ message: "bad item" });
    expect(h.run.state).toBe("failed");
    // Stage 1's task for items 0 and 1 was in flight: cancelled; its late result changes nothing.
    const pending = h.tasks.filter((t) => t.task.id !== a?.task.id && t.task.id !== b?.task.id);
    expect(h.cancelled).toEqual(pending.map((t) => t.id));
    for (const t of pending) h.answer(t, (x) => x);
    expect(h.messages.filter((m) => m.msg.type === "pipe_out")).toEqual([]);
  });

  it("with onError skip, an item that fails is reported with no output and counted", () => {
    const h = harness([stage("map")], "skip");
    h.run.addItems(0, [1, 2, 3].map(enc));
    h.run.end(3);
    h.step();
    for (const t of h.take())
      h.answer(t, (x) => {
        if (x === 2) throw new Error("skip me");
        return x;
      });
    h.step();
    expect(Object.fromEntries(h.outputs())).toEqual({ 0: [1], 1: [], 2: [3] });
    expect(h.run.stats()[0]).toMatchObject({ done: 2, failed: 1 });
    expect(h.run.state).toBe("done");
  });

  it("runs the items of a task that crashed one by one, so only the culprit fails", () => {
    const h = harness([stage("map")], "fail", 1);
    h.run.addItems(
      0,
      Array.from({ length: 5 }, (_, i) => enc(i)),
    );
    h.step();
    // The first items go one per task; once they are measured quick, the rest go together.
    for (const t of h.take()) h.answer(t, (x) => x, 0, 0.001);
    h.step();
    const [chunk] = h.take();
    expect(chunk?.items).toEqual([2, 3, 4]);
    h.failTask(chunk as Sent, "ERR_PTC_TASK_CRASHED");
    h.step();
    const solo = h.take();
    expect(solo.map((t) => t.items)).toEqual([[2], [3]]);
    h.answer(solo[0] as Sent, (x) => x);
    h.failTask(solo[1] as Sent, "ERR_PTC_TASK_CRASHED", 0);
    const failed = h.messages.find((m) => m.msg.type === "pipe_failed")?.msg;
    expect(failed).toMatchObject({ stage: 0, item: 3, sysError: { code: "ERR_PTC_TASK_CRASHED" } });
  });

  it("ends with the final stats even when the input's end comes after its last item finished", () => {
    const h = harness([stage("map")]);
    h.run.addItems(0, [enc(1)]);
    h.step();
    for (const t of h.take()) h.answer(t, (x) => x);
    h.step();
    expect(h.messages.map((m) => m.msg)).toEqual([expect.objectContaining({ type: "pipe_out", done: [[0, 1]] })]);
    expect(h.messages[0]?.msg).not.toHaveProperty("end");
    h.run.end(1);
    expect(h.run.flush(Date.now())).toBe(true);
    const last = h.messages.at(-1)?.msg;
    expect(last).toMatchObject({ type: "pipe_out", done: [], end: true });
    expect(last?.type === "pipe_out" && last.stats?.[0]).toMatchObject({ done: 1, inFlight: 0 });
  });

  it("refuses items out of order", () => {
    const h = harness([stage("map")]);
    h.run.addItems(0, [enc(1)]);
    h.run.addItems(5, [enc(2)]);
    expect(h.messages.at(-1)?.msg).toMatchObject({ type: "pipe_failed", sysError: { code: "ERR_PTC_PROTOCOL" } });
  });

  it("gives each item its own task under a run-time limit", () => {
    const h = harness([stage("map", { timeout: 50 })], "fail", 1);
    h.run.addItems(0, [1, 2].map(enc));
    h.step();
    expect(h.take().map((t) => [t.items.length, t.task.timeout])).toEqual([
      [1, 50],
      [1, 50],
    ]);
  });
});
