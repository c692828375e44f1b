import { describe, expect, it } from "vitest";
import {
  silentLogger,
  sourceHash,
  type EngineTask,
  type HubToEngine,
  type OutStream,
  type TaskResult,
} from "@ptcluster/protocol";
import { Outbox } from "../src/clients/outbox.js";
import { EngineRegistry } from "../src/engines/engine-registry.js";
import { ResultDelivery } from "../src/results/delivery.js";
import { ResultStore } from "../src/results/result-store.js";
import { Scheduler } from "../src/schedulers/scheduler.js";
import { FunctionShipping } from "../src/tasks/function-shipping.js";
import { StreamedBody, type CutThroughCounts } from "../src/tasks/streamed-body.js";
import { TaskCoordinator } from "../src/tasks/task-coordinator.js";
import { TaskTable } from "../src/tasks/task-table.js";

// Task bodies streamed through the controller (tasks/cut-through.ts, streamed-body.ts): what the
// coordinator does with a body passed on before it was complete, and with one held whole.

const turn = () => new Promise((r) => setImmediate(r));

/** An out stream that records what went: pieces (their first byte), the end, an abort. */
function recorder() {
  const log: string[] = [];
  const out: OutStream = {
    broken: false,
    pieces: (p, last) => log.push(`${p.map((b) => b[0]).join(",")}${last ? " end" : ""}`),
    abort: () => log.push("abort"),
  };
  return { out, log };
}

function setup() {
  const engines = new EngineRegistry();
  const shipping = new FunctionShipping(engines, () => {});
  const tasks = new TaskTable(shipping.sources);
  const clientOut = new Outbox<TaskResult>();
  const delivery = new ResultDelivery(tasks, new ResultStore(60_000), clientOut, () => true);
  const streams: Array<{ engine: string; task: EngineTask; log: string[] }> = [];
  const toEngine: HubToEngine[] = [];
  const engineOut = new Outbox<EngineTask>();
  const co = new TaskCoordinator({
    tasks,
    engines,
    scheduler: new Scheduler("leastload"),
    delivery,
    shipping,
    engineOut,
    log: silentLogger(),
    toEngine: (msg) => toEngine.push(msg),
    streamTo: (to, task, _body, streamed) => {
      const r = recorder();
      streams.push({ engine: to.toString(), task, log: r.log });
      streamed.attach(r.out);
    },
    flush: () => {},
  });
  const es = [0, 1].map((i) => {
    const e = engines.register(Buffer.from(`e${i}`), { uuid: `u${i}`, host: "h", pid: 100 + i, concurrency: 1 });
    co.engineUp(e);
    return e;
  });
  const client = { routingId: Buffer.from("c"), key: "c", knownFns: new Set<string>() };
  const counts: CutThroughCounts = { streams: 0, forwardedEarly: 0, aborted: 0, open: 0, heldBytes: 0 };
  const toClient = () => {
    const out: TaskResult[] = [];
    clientOut.flush((_to, items) => out.push(...items));
    return out;
  };
  const submit = (onAbort: () => void = () => {}) => {
    let id = 0;
    const body = new StreamedBody([3], counts, () => {
      onAbort();
      co.streamAborted(id);
    });
    id = co.submitStreamed(client, { id: 7, op: "apply", to: [], lb: {} }, Buffer.from("b"), body);
    return { id, body };
  };
  return { co, tasks, es, streams, counts, toClient, submit, toEngine, engineOut, client };
}

const piece = (n: number) => [Buffer.from([n])];

describe("streamed task bodies", () => {
  it("held until the task is placed, then passed on as they come, unmovable; its engine lost, the task fails with EngineLostError", async () => {
    const c = setup();
    const { id, body } = c.submit();
    body.pieces(piece(1), false);
    expect(c.counts.heldBytes).toBe(1);
    await turn();
    expect(c.streams).toHaveLength(1);
    expect(c.streams[0]!.task.movable).toBeUndefined();
    body.pieces(piece(2), false);
    body.pieces(piece(3), true);
    expect(c.streams[0]!.log).toEqual(["1", "2", "3 end"]);
    expect(c.counts).toMatchObject({ forwardedEarly: 1, heldBytes: 0, open: 0 });
    c.co.engineDown(c.es[0]!);
    await turn();
    // Not sent again: the controller never had the body whole.
    expect(c.streams).toHaveLength(1);
    expect(c.tasks.get(id)).toBeUndefined();
    expect(c.toClient()).toEqual([
      expect.objectContaining({ id: 7, ok: false, sysError: expect.objectContaining({ code: "ERR_PTC_ENGINE_LOST" }) }),
    ]);
  });

  it("complete before it was placed: held whole, sent whole, and sent again after its engine is lost", async () => {
    const c = setup();
    const { body } = c.submit();
    body.pieces(piece(1), false);
    body.pieces(piece(2), true);
    await turn();
    expect(c.streams[0]!.log).toEqual(["1", "2 end"]);
    expect(c.streams[0]!.task.movable).toBe(true);
    c.co.engineDown(c.es[0]!);
    await turn();
    expect(c.streams.map((s) => [s.engine, s.log])).toEqual([
      ["e0", ["1", "2 end"]],
      ["e1", ["1", "2 end"]],
    ]);
    c.co.engineResults(c.es[1]!, [{ id: 1, ok: true, engine: -1, started: 0, completed: 0 }], []);
    expect(c.counts.heldBytes).toBe(0);
  });

  it("aborted mid-way (its client gone): the engine's stream is aborted, the task cancelled, nothing held", async () => {
    const c = setup();
    const { id, body } = c.submit();
    await turn();
    body.pieces(piece(1), false);
    body.abort();
    expect(c.streams[0]!.log).toEqual(["1", "abort"]);
    expect(c.tasks.get(id)).toBeUndefined();
    expect(c.es[0]!.inflight.size).toBe(0);
    expect(c.toClient()).toEqual([
      expect.objectContaining({ id: 7, sysError: expect.objectContaining({ code: "ERR_PTC_TASK_CANCELLED" }) }),
    ]);
    expect(c.counts).toMatchObject({ aborted: 1, open: 0, heldBytes: 0 });
    // The engine is free again: the next task goes to the least loaded, which may be it.
    const next = c.submit();
    await turn();
    expect(c.streams).toHaveLength(2);
    next.body.abort();
  });

  it("aborted before it was placed: cancelled in the queue, never sent", async () => {
    const c = setup();
    const { id, body } = c.submit();
    body.pieces(piece(1), false);
    body.abort();
    await turn();
    expect(c.streams).toHaveLength(0);
    expect(c.tasks.get(id)).toBeUndefined();
    expect(c.counts.heldBytes).toBe(0);
  });

  it("cancelled while its engine still receives it: that stream is aborted instead of a cancel the engine could not match, the rest dropped", async () => {
    const c = setup();
    const { id, body } = c.submit();
    await turn();
    body.pieces(piece(1), false);
    c.co.cancel([id]);
    expect(c.streams[0]!.log).toEqual(["1", "abort"]);
    expect(c.toEngine).toEqual([]);
    expect(c.tasks.get(id)).toBeUndefined();
    expect(c.toClient()).toEqual([
      expect.objectContaining({
        id: 7,
        attempts: 0,
        sysError: expect.objectContaining({ code: "ERR_PTC_TASK_CANCELLED" }),
      }),
    ]);
    body.pieces(piece(2), false);
    body.pieces(piece(3), true);
    expect(c.streams[0]!.log).toEqual(["1", "abort"]);
    expect(c.counts).toMatchObject({ open: 0, heldBytes: 0 });
    // Once the whole body went on, a cancel goes to the engine as usual.
    const next = c.submit();
    await turn();
    next.body.pieces(piece(1), true);
    c.co.cancel([next.id]);
    expect(c.toEngine).toEqual([{ type: "engine_cancel", ids: [next.id] }]);
  });

  it("a function's source that went in a streamed task goes again with the next task for that engine, which may arrive first", async () => {
    const c = setup();
    const body = new StreamedBody([3], c.counts, () => {});
    const fn = { fn: sourceHash("() => 1"), src: "() => 1" };
    c.co.submitStreamed(c.client, { id: 1, op: "apply", to: [], lb: {}, ...fn }, Buffer.from("b"), body);
    await turn();
    expect(c.streams[0]!.task).toMatchObject(fn);
    c.co.submit(c.client, [{ id: 2, op: "apply", to: [0], fn: fn.fn }], [{ body: Buffer.from("x"), frames: [] }]);
    c.co.submit(c.client, [{ id: 3, op: "apply", to: [0], fn: fn.fn }], [{ body: Buffer.from("y"), frames: [] }]);
    const sent: EngineTask[] = [];
    c.engineOut.flush((_to, items) => sent.push(...items));
    // The first task sent whole carries the source; the engine knows it from then on.
    expect(sent.map((t) => t.src)).toEqual(["() => 1", undefined]);
  });
});
