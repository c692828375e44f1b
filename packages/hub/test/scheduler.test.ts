import { describe, expect, it } from "vitest";
import type { SchedulerScheme } from "@ptcluster/protocol";
import type { SchedulerDecision, TaskOutcome } from "../src/schedulers/port.js";
import { Scheduler } from "../src/schedulers/scheduler.js";
import { outcomeOf } from "../src/tasks/task-coordinator.js";

/** A scheduler with engines `[id, concurrency]`, and helpers that speak its port. */
function cluster(engines: Array<[number, number]>, scheme: SchedulerScheme = "leastload", random?: () => number) {
  const s = new Scheduler(scheme, random);
  for (const [engine, concurrency] of engines) s.handle({ type: "engine_up", engine, concurrency });
  s.handle({ type: "place" });
  let next = 1;
  const lb = (opts: { targets?: number[]; retries?: number; maxDeaths?: number } = {}) => {
    const task = next++;
    s.handle({
      type: "submit_lb",
      task,
      targets: opts.targets,
      retries: opts.retries ?? 0,
      maxDeaths: opts.maxDeaths ?? 3,
    });
    return task;
  };
  const direct = (engine: number) => {
    const task = next++;
    return { task, decisions: s.handle({ type: "submit_direct", task, engine }) };
  };
  /** Placements made by one `place` event, as [task, engine]. */
  const place = () => dispatches(s.handle({ type: "place" }));
  const finish = (engine: number, task: number, outcome: TaskOutcome) =>
    s.handle({ type: "finished", engine, results: [{ task, outcome }] });
  return { s, lb, direct, place, finish };
}

const dispatches = (ds: SchedulerDecision[]) => ds.flatMap((d) => (d.type === "dispatch" ? [[d.task, d.engine]] : []));
const types = (ds: SchedulerDecision[]) => ds.map((d) => d.type);

describe("load-balanced placement, per scheme", () => {
  it("leastload spreads over equal engines in turn (least recently used on ties)", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
    ]);
    const tasks = [c.lb(), c.lb(), c.lb(), c.lb()];
    // More work than slots: each engine takes a few ahead (prefetch), alternately.
    expect(c.place()).toEqual([
      [tasks[0], 0],
      [tasks[1], 1],
      [tasks[2], 0],
      [tasks[3], 1],
    ]);
    expect(c.s.queued).toBe(0);
  });

  it("leastload weighs load by concurrency, and fills no engine beyond its slots when work fits", () => {
    const c = cluster([
      [0, 1],
      [1, 4],
    ]);
    const tasks = [c.lb(), c.lb(), c.lb(), c.lb()];
    expect(c.place()).toEqual([
      [tasks[0], 0],
      [tasks[1], 1],
      [tasks[2], 1],
      [tasks[3], 1],
    ]);
  });

  it("lru takes the engine that waited longest, whatever its load", () => {
    const c = cluster(
      [
        [0, 4],
        [1, 1],
        [2, 4],
      ],
      "lru",
    );
    const tasks = [c.lb(), c.lb(), c.lb(), c.lb()];
    expect(c.place()).toEqual([
      [tasks[0], 0],
      [tasks[1], 1],
      [tasks[2], 2],
      [tasks[3], 0],
    ]);
  });

  it("random picks where its random numbers point, among engines with room", () => {
    const c = cluster(
      [
        [0, 1],
        [1, 1],
        [2, 1],
      ],
      "random",
      () => 0.99,
    );
    const [a, b] = [c.lb(), c.lb()];
    expect(c.place()).toEqual([
      [a, 2],
      [b, 1],
    ]);
  });

  it("weighted keeps the less loaded of its two draws", () => {
    const draws = [0, 0.999];
    const c = cluster(
      [
        [0, 2],
        [1, 2],
      ],
      "weighted",
      () => draws.shift() ?? 0,
    );
    c.direct(0); // engine 0 is half busy
    const t = c.lb();
    expect(c.place()).toEqual([[t, 1]]);
  });

  it("asks for one wake-up however many events want one, and another after it came", () => {
    const c = cluster([[0, 1]]);
    expect(types(c.s.handle({ type: "submit_lb", task: 100, targets: undefined, retries: 0, maxDeaths: 3 }))).toEqual([
      "wake",
    ]);
    expect(c.s.handle({ type: "submit_lb", task: 101, targets: undefined, retries: 0, maxDeaths: 3 })).toEqual([]);
    expect(c.place()).toEqual([
      [100, 0],
      [101, 0],
    ]);
    expect(types(c.s.handle({ type: "submit_lb", task: 102, targets: undefined, retries: 0, maxDeaths: 3 }))).toEqual([
      "wake",
    ]);
  });
});

describe("targets", () => {
  it("a task goes only to its targets; one whose targets are busy waits without holding up the others", () => {
    const c = cluster([
      [0, 2],
      [1, 1],
    ]);
    const [a, b, cc] = [c.lb({ targets: [1] }), c.lb({ targets: [1] }), c.lb()];
    expect(c.place()).toEqual([
      [a, 1],
      [cc, 0],
    ]);
    expect(c.s.queued).toBe(1);
    expect(types(c.finish(1, a, "ok"))).toEqual(["complete", "wake"]);
    expect(c.place()).toEqual([[b, 1]]);
  });

  it("a task whose target is not registered waits for it", () => {
    const c = cluster([[0, 1]]);
    const t = c.lb({ targets: [5] });
    expect(c.place()).toEqual([]);
    expect(types(c.s.handle({ type: "engine_up", engine: 5, concurrency: 1 }))).toEqual(["wake"]);
    expect(c.place()).toEqual([[t, 5]]);
  });
});

describe("direct tasks", () => {
  it("go to their engine at once (not movable) and take a slot the load balancer sees", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
    ]);
    const { task, decisions } = c.direct(0);
    expect(decisions).toEqual([{ type: "dispatch", task, engine: 0, movable: false }]);
    const t = c.lb();
    expect(c.place()).toEqual([[t, 1]]);
  });

  it("fail at once for an engine that is not registered, naming those that are", () => {
    const c = cluster([
      [3, 1],
      [1, 1],
    ]);
    const { task, decisions } = c.direct(9);
    expect(decisions).toEqual([
      {
        type: "fail",
        task,
        engine: 9,
        code: "ERR_PTC_UNKNOWN_ENGINE",
        message: "Engine 9 is not registered (registered: [1, 3]). Use an id from `rc.ids`.",
      },
    ]);
    expect(c.s.size).toBe(0);
  });

  it("are reported as they are, never retried, and fail with EngineLostError when their engine dies", () => {
    const c = cluster([[0, 2]]);
    const a = c.direct(0).task;
    const b = c.direct(0).task;
    expect(c.finish(0, a, "error")[0]).toEqual({ type: "complete", task: a });
    const down = c.s.handle({ type: "engine_down", engine: 0 });
    expect(down).toEqual([
      {
        type: "fail",
        task: b,
        engine: 0,
        code: "ERR_PTC_ENGINE_LOST",
        message: expect.stringContaining("Engine 0 died"),
      },
    ]);
    expect(c.s.size).toBe(0);
  });
});

describe("retries and the death budget", () => {
  it("a task that threw is retried on another engine, even one less idle, where one has room", () => {
    const c = cluster([
      [0, 1],
      [1, 2],
    ]);
    const t = c.lb({ retries: 1 });
    expect(c.place()).toEqual([[t, 0]]);
    c.direct(1); // engine 1 is now busier than engine 0 will be
    expect(c.finish(0, t, "error")).toEqual([{ type: "requeue", task: t, unstarted: false }, { type: "wake" }]);
    expect(c.place()).toEqual([[t, 1]]);
    // Out of retries: its error is reported.
    expect(c.finish(1, t, "error")[0]).toEqual({ type: "complete", task: t });
  });

  it("a retry goes back to the engine it threw on when that is the only engine it may use", () => {
    const c = cluster([[0, 1]]);
    const t = c.lb({ retries: 2 });
    expect(c.place()).toEqual([[t, 0]]);
    expect(c.finish(0, t, "error")[0]?.type).toBe("requeue");
    expect(c.place()).toEqual([[t, 0]]);
  });

  it("a retry waits for a busy engine it has not thrown on rather than going back to the one that failed it", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
    ]);
    const t = c.lb({ retries: 1 });
    expect(c.place()).toEqual([[t, 0]]);
    const busy = c.direct(1).task; // engine 1 is full
    c.finish(0, t, "error");
    expect(c.place()).toEqual([]); // engine 0 is idle, but it just failed the task
    expect(c.s.queued).toBe(1);
    c.finish(1, busy, "ok");
    expect(c.place()).toEqual([[t, 1]]);
  });

  it("a retry waiting for another engine goes back to the one it threw on when the other dies", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    const t = c.lb({ retries: 1, targets: [0, 1] });
    expect(c.place()).toEqual([[t, 0]]);
    c.direct(1);
    c.finish(0, t, "error");
    expect(c.place()).toEqual([]); // engine 2 has room but is not a target; engine 1 is full
    expect(types(c.s.handle({ type: "engine_down", engine: 1 }))).toContain("wake");
    expect(c.place()).toEqual([[t, 0]]);
  });

  it("failures of the system (a timeout, say) and successes are reported, never retried", () => {
    const c = cluster([[0, 2]]);
    const [a, b] = [c.lb({ retries: 5 }), c.lb({ retries: 5 })];
    c.place();
    const ds = c.s.handle({
      type: "finished",
      engine: 0,
      results: [
        { task: a, outcome: "system" },
        { task: b, outcome: "ok" },
      ],
    });
    // One decision per result, in order, then the wake-up.
    expect(ds).toEqual([{ type: "complete", task: a }, { type: "complete", task: b }, { type: "wake" }]);
  });

  it("a task that kills every engine it runs on moves on 3 times, then fails as a poison task on the 4th death", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    const t = c.lb();
    for (let death = 1; death <= 3; death++) {
      const [[, engine] = []] = c.place();
      expect(c.s.handle({ type: "engine_down", engine: engine as number })).toEqual([
        { type: "requeue", task: t, unstarted: false },
        { type: "wake" },
      ]);
    }
    const [[, last] = []] = c.place();
    const ds = c.s.handle({ type: "engine_down", engine: last as number });
    expect(ds).toEqual([
      {
        type: "fail",
        task: t,
        engine: last,
        code: "ERR_PTC_ENGINE_LOST",
        message: `This task was running on 4 engines that died (the last was engine ${last}); it is failed as a poison task instead of being retried again.`,
      },
    ]);
    expect(c.s.size).toBe(0);
  });

  it("losing its executor counts against the same budget; past it, the engine's own error is reported", () => {
    const c = cluster([[0, 1]]);
    const t = c.lb({ maxDeaths: 1 });
    c.place();
    expect(c.finish(0, t, "lost")[0]?.type).toBe("requeue");
    c.place();
    expect(c.finish(0, t, "lost")[0]).toEqual({ type: "complete", task: t });
  });

  it("results count as the retry policy expects", () => {
    const r = { id: 1, engine: 0, started: 0, completed: 0 };
    expect(outcomeOf({ ...r, ok: true })).toBe("ok");
    expect(outcomeOf({ ...r, ok: false })).toBe("error");
    expect(outcomeOf({ ...r, ok: false, sysError: { code: "ERR_PTC_EXECUTOR_RESET", message: "" } })).toBe("lost");
    expect(outcomeOf({ ...r, ok: false, sysError: { code: "ERR_PTC_ENGINE_LOST", message: "" } })).toBe("lost");
    expect(outcomeOf({ ...r, ok: false, sysError: { code: "ERR_PTC_TASK_TIMEOUT", message: "" } })).toBe("system");
  });
});

describe("rebalancing and cancellation", () => {
  /** Engine 0 took 3 tasks ahead; engine 1 joins idle. */
  function lopsided() {
    const c = cluster([[0, 1]]);
    const tasks = [c.lb(), c.lb(), c.lb()];
    expect(c.place()).toEqual(tasks.map((t) => [t, 0]));
    c.s.handle({ type: "engine_up", engine: 1, concurrency: 1 });
    return { c, tasks };
  }

  it("an idle engine with nothing queued takes back tasks another has not started, asking once", () => {
    const { c, tasks } = lopsided();
    expect(c.s.handle({ type: "place" })).toEqual([{ type: "release", engine: 0, max: 1 }]);
    expect(c.s.handle({ type: "place" })).toEqual([]);
    const back = tasks[2] as number;
    expect(c.s.handle({ type: "released", engine: 0, tasks: [back] })).toEqual([
      { type: "requeue", task: back, unstarted: true },
      { type: "wake" },
    ]);
    expect(c.place()).toEqual([[back, 1]]);
  });

  it("an engine that had nothing to give back is not asked again at once (no release ping-pong)", () => {
    const { c } = lopsided();
    c.s.handle({ type: "place" });
    expect(c.s.handle({ type: "released", engine: 0, tasks: [] })).toEqual([]);
  });

  it("hands back only its own load-balanced tasks", () => {
    const { c, tasks } = lopsided();
    const d = c.direct(0).task;
    c.s.handle({ type: "place" });
    expect(c.s.handle({ type: "released", engine: 1, tasks: [tasks[0] as number] })).toEqual([{ type: "wake" }]);
    expect(c.s.handle({ type: "released", engine: 0, tasks: [d, 999] })).toEqual([]);
  });

  it("cancel: queued tasks are cancelled at once, engines are asked for the others, which never run again", () => {
    const c = cluster([[0, 1]]);
    const [a, b, q] = [c.lb(), c.lb(), c.lb({ targets: [7] })];
    c.place();
    expect(c.s.handle({ type: "cancel", tasks: [q, a, b, a], queuedOnly: false })).toEqual([
      {
        type: "cancelled",
        task: q,
        engine: -1,
        message: "The task was cancelled before it started.",
        unstarted: false,
      },
      { type: "cancel_on_engine", engine: 0, tasks: [a, b], queuedOnly: false },
    ]);
    // One comes back unstarted: cancelled, not requeued. The other's engine dies: cancelled too.
    expect(c.s.handle({ type: "released", engine: 0, tasks: [a] })).toEqual([
      { type: "cancelled", task: a, engine: 0, message: "The task was cancelled before it started.", unstarted: true },
      { type: "wake" },
    ]);
    expect(c.s.handle({ type: "engine_down", engine: 0 })).toEqual([
      {
        type: "cancelled",
        task: b,
        engine: 0,
        message: "The task was cancelled; its engine died before confirming.",
        unstarted: false,
      },
    ]);
    expect(c.s.size).toBe(0);
  });

  it("a cancelled task that threw is not retried", () => {
    const c = cluster([[0, 1]]);
    const t = c.lb({ retries: 3 });
    c.place();
    c.s.handle({ type: "cancel", tasks: [t], queuedOnly: false });
    expect(c.finish(0, t, "error")[0]).toEqual({ type: "complete", task: t });
  });

  it("cancelling only what has not started (a client went away) leaves a handed-back task free to run elsewhere", () => {
    const c = cluster([[0, 1]]);
    const [a, b] = [c.lb(), c.lb()];
    c.place();
    expect(c.s.handle({ type: "cancel", tasks: [a, b], queuedOnly: true })).toEqual([
      { type: "cancel_on_engine", engine: 0, tasks: [a, b], queuedOnly: true },
    ]);
    expect(c.s.handle({ type: "released", engine: 0, tasks: [b] })[0]).toEqual({
      type: "requeue",
      task: b,
      unstarted: true,
    });
  });

  it("forgets a task the controller abandoned, freeing its slot", () => {
    const c = cluster([[0, 1]]);
    const a = c.lb();
    c.place();
    c.s.handle({ type: "abandoned", task: a });
    expect(c.s.size).toBe(0);
    const b = c.lb();
    expect(c.place()).toEqual([[b, 0]]);
  });
});

describe("a native crash of an engine (its process died of SIGSEGV, seen by its launcher)", () => {
  it("fails the task it was running with TaskCrashedError, once; its unstarted tasks move on without counting a death", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
    ]);
    const tasks = [c.lb(), c.lb(), c.lb(), c.lb()];
    const placed = c.place();
    const on0 = placed.filter(([, e]) => e === 0).map(([t]) => t as number);
    expect(on0).toHaveLength(2);
    const ds = c.s.handle({ type: "engine_down", engine: 0, crashed: "SIGSEGV" });
    expect(ds[0]).toMatchObject({
      type: "fail",
      task: on0[0],
      engine: 0,
      code: "ERR_PTC_TASK_CRASHED",
      message: expect.stringContaining("SIGSEGV"),
    });
    expect(ds[1]).toEqual({ type: "requeue", task: on0[1], unstarted: true });
    expect(tasks).toContain(on0[1]);
  });

  it("runs the crashing task again on another engine when its retries ask; a direct task fails with it", () => {
    const c = cluster([
      [0, 1],
      [1, 1],
    ]);
    const t = c.lb({ retries: 1 });
    expect(c.place()).toEqual([[t, 0]]);
    expect(c.s.handle({ type: "engine_down", engine: 0, crashed: "SIGSEGV" })[0]).toEqual({
      type: "requeue",
      task: t,
      unstarted: false,
    });
    expect(c.place()).toEqual([[t, 1]]);
    const d = c.direct(1).task;
    const ds = c.s.handle({ type: "engine_down", engine: 1, crashed: "SIGBUS" });
    expect(ds.find((x) => x.type === "fail" && x.task === t)).toMatchObject({ code: "ERR_PTC_TASK_CRASHED" });
    expect(ds.find((x) => x.type === "fail" && x.task === d)).toMatchObject({ code: "ERR_PTC_ENGINE_LOST" });
  });
});
