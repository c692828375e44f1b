import { describe, expect, it } from "vitest";
import { silentLogger, type EngineTask, type HubToEngine, type Part, type TaskResult } from "@ptcluster/protocol";
import { Outbox } from "../src/clients/outbox.js";
import { EngineRegistry } from "../src/engines/engine-registry.js";
import { ResultDelivery } from "../src/results/delivery.js";
import { ResultStore } from "../src/results/result-store.js";
import { Scheduler } from "../src/schedulers/scheduler.js";
import { FunctionShipping } from "../src/tasks/function-shipping.js";
import { TaskCoordinator, outcomeOf } from "../src/tasks/task-coordinator.js";
import { TaskTable } from "../src/tasks/task-table.js";

const turn = () => new Promise((r) => setImmediate(r));
const part = (s: string): Part => ({ body: Buffer.from(s), frames: [] });

/** A coordinator over real parts, with the sockets replaced by what they would have sent. */
function setup(concurrency = [1, 1]) {
  const engines = new EngineRegistry();
  const tasks = new TaskTable();
  const scheduler = new Scheduler("leastload");
  const clientOut = new Outbox<TaskResult>();
  const engineOut = new Outbox<EngineTask>();
  const delivery = new ResultDelivery(tasks, new ResultStore(60_000), clientOut, () => true);
  const shipping = new FunctionShipping(engines, () => {});
  const toEngine: Array<{ msg: HubToEngine; to: string }> = [];
  let flushes = 0;
  const co = new TaskCoordinator({
    tasks,
    engines,
    scheduler,
    delivery,
    shipping,
    engineOut,
    log: silentLogger(),
    toEngine: (msg, to) => toEngine.push({ msg, to: to.toString() }),
    streamTo: () => {
      throw new Error("no streamed bodies here");
    },
    flush: () => flushes++,
  });
  const es = concurrency.map((c, i) => {
    const e = engines.register(Buffer.from(`e${i}`), { uuid: `u${i}`, host: "h", pid: 100 + i, concurrency: c });
    co.engineUp(e);
    return e;
  });
  const client = { routingId: Buffer.from("c"), key: "c", knownFns: new Set<string>() };
  /** What the engines and the client would receive at the next flush. */
  const sent = () => {
    const toEngines: Record<string, number[]> = {};
    engineOut.flush((to, items) => (toEngines[to.toString()] = items.map((t) => t.id)));
    const toClient: TaskResult[] = [];
    clientOut.flush((_to, items) => toClient.push(...items));
    return { toEngines, toClient };
  };
  const result = (id: number, ok: boolean): TaskResult => ({ id, ok, engine: -1, started: 0, completed: 0 });
  return { co, tasks, es, client, sent, result, toEngine, flushes: () => flushes };
}

describe("the task coordinator carries out the scheduler's decisions", () => {
  it("sends a load-balanced task placed by a later wake-up, and asks for the flush that sends it", async () => {
    const c = setup();
    c.co.submit(c.client, [{ id: 7, op: "apply", to: [], lb: {} }], [part("body")]);
    expect(c.sent().toEngines).toEqual({});
    const before = c.flushes();
    await turn();
    expect(c.flushes()).toBeGreaterThan(before);
    const rec = c.tasks.get(1);
    expect(rec?.state).toEqual({ kind: "assigned", engine: 0 });
    expect(rec?.attempts).toBe(1);
    expect(c.sent().toEngines).toEqual({ e0: [1] });
  });

  it("the controller's own task (a sink) hears of a failure made while a dispatch is carried out only after it, so it can cancel others safely", async () => {
    const c = setup();
    const heard: string[] = [];
    // A function whose source the controller never got: its dispatch fails it on the spot, while
    // the dispatch of the task queued behind it, decided in the same placement, is still to come.
    const sinkTask = { id: -1, op: "stage" as const, to: [], lb: {}, fn: "unknown-hash" };
    let other = -1;
    c.co.submitLb(c.client, sinkTask, part("y"), (r) => {
      heard.push(r.sysError?.code ?? "ok");
      // What a failing pipeline does: cancel its other tasks, from inside its sink.
      c.co.cancel([other]);
    });
    other = c.co.submitLb(c.client, { id: -2, op: "apply", to: [], lb: {} }, part("x"));
    await turn();
    expect(heard).toEqual(["ERR_PTC_PROTOCOL"]);
    expect(c.tasks.get(other)?.state.kind).toBe("cancelling");
  });

  it("a task that threw runs again on the other engine; its result reports both attempts", async () => {
    const c = setup();
    c.co.submit(c.client, [{ id: 7, op: "apply", to: [], lb: { retries: 1 } }], [part("body")]);
    await turn();
    c.sent();
    c.co.engineResults(c.es[0]!, [c.result(1, false)], [part("err")]);
    expect(c.tasks.get(1)?.state.kind).toBe("queued");
    expect(c.es[0]!.inflight.size).toBe(0);
    await turn();
    expect(c.sent().toEngines).toEqual({ e1: [1] });
    c.co.engineResults(c.es[1]!, [c.result(1, true)], [part("ok")]);
    expect(c.tasks.size).toBe(0);
    expect(c.sent().toClient).toEqual([expect.objectContaining({ id: 7, ok: true, engine: 1, attempts: 2 })]);
    expect(c.es.map((e) => e.info.tasksDone)).toEqual([1, 1]);
  });

  it("a late or duplicate result, or one from another engine, is ignored", async () => {
    const c = setup();
    c.co.submit(c.client, [{ id: 7, op: "apply", to: [], lb: {} }], [part("body")]);
    await turn();
    c.co.engineResults(c.es[1]!, [c.result(1, true)], [part("x")]);
    c.co.engineResults(c.es[0]!, [c.result(1, true), c.result(1, true)], [part("a"), part("b")]);
    expect(c.sent().toClient.map((r) => r.id)).toEqual([7]);
  });

  it("a cancelled task comes back unstarted as cancelled, not counted as an attempt", async () => {
    const c = setup([1]);
    c.co.submit(
      c.client,
      [
        { id: 1, op: "apply", to: [], lb: {} },
        { id: 2, op: "apply", to: [], lb: {} },
      ],
      [part("a"), part("b")],
    );
    await turn();
    c.co.cancel([2]);
    expect(c.tasks.get(2)?.state).toEqual({ kind: "cancelling", engine: 0 });
    expect(c.toEngine.map((m) => m.msg)).toContainEqual({ type: "engine_cancel", ids: [2] });
    c.co.released(c.es[0]!, [2]);
    expect(c.sent().toClient).toEqual([
      expect.objectContaining({
        id: 2,
        ok: false,
        engine: 0,
        attempts: 0,
        sysError: expect.objectContaining({ code: "ERR_PTC_TASK_CANCELLED" }),
      }),
    ]);
    expect(c.es[0]!.inflight.has(2)).toBe(false);
  });

  it("a direct task for an unknown engine fails at once; one whose engine dies fails with EngineLostError", () => {
    const c = setup();
    c.co.submit(c.client, [{ id: 3, op: "apply", to: [1, 9] }], [part("d")]);
    expect(c.sent().toClient).toEqual([
      expect.objectContaining({
        id: 3,
        engine: 9,
        sysError: expect.objectContaining({ code: "ERR_PTC_UNKNOWN_ENGINE" }),
      }),
    ]);
    const e1 = c.es[1]!;
    expect([...e1.inflight]).toEqual([1]);
    c.co.engineDown(e1);
    expect(c.sent().toClient).toEqual([
      expect.objectContaining({ id: 3, engine: 1, sysError: expect.objectContaining({ code: "ERR_PTC_ENGINE_LOST" }) }),
    ]);
    expect(c.tasks.size).toBe(0);
    expect(e1.inflight.size).toBe(0);
  });
});

describe("how a failed result counts for retries (outcomeOf)", () => {
  const r = { id: 1, engine: 0, started: 0, completed: 0, ok: false };
  const of = (code: string) => outcomeOf({ ...r, sysError: { code, message: "" } });

  it("a task that ended its own executor, or went over its memory limit, failed like its own error: retried only if it asks", () => {
    expect(of("ERR_PTC_TASK_CRASHED")).toBe("error");
    expect(of("ERR_PTC_OUT_OF_MEMORY")).toBe("error");
    expect(outcomeOf(r)).toBe("error");
  });

  it("a task that went down with an executor another task cost, or with its engine, is lost: it may run elsewhere", () => {
    expect(of("ERR_PTC_EXECUTOR_RESET")).toBe("lost");
    expect(of("ERR_PTC_ENGINE_LOST")).toBe("lost");
  });

  it("timeouts and cancellations are final", () => {
    expect(of("ERR_PTC_TASK_TIMEOUT")).toBe("system");
    expect(of("ERR_PTC_TASK_CANCELLED")).toBe("system");
  });
});
