import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PART, setup, task } from "./fake-executor.js";

describe("the supervisor's task runner (fake executor)", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("hands the executor only as many tasks as it has slots; a result frees one for the next", () => {
    const { runner, ex, results } = setup(2);
    for (const id of [1, 2, 3, 4]) runner.enqueue(task(id), PART);
    expect(ex().taskIds).toEqual([1, 2]);
    expect([1, 2, 3, 4].map((id) => runner.stateOf(id))).toEqual(["posted", "posted", "queued", "queued"]);
    expect(runner.load).toBe(4);
    ex().report({ started: 2 });
    ex().report({ started: 1, results: [{ id: 1 }] });
    expect(results.map((r) => [r.id, r.ok])).toEqual([[1, true]]);
    expect(ex().taskIds).toEqual([1, 2, 3]);
    expect(runner.stateOf(2)).toBe("running");
    expect(runner.done).toBe(1);
  });

  it("a task the executor took from a client's own link holds a slot while it runs; its result sent there frees it", () => {
    const { runner, ex, results } = setup(1);
    const at = Date.now();
    runner.adopt(task(2 ** 52 + 7), at);
    runner.enqueue(task(1), PART);
    expect(runner.stateOf(2 ** 52 + 7)).toBe("running");
    expect(runner.running(at)).toEqual([[2 ** 52 + 7, 0]]);
    expect(ex().taskIds).toEqual([]);
    // Its result went to the client from the executor: nothing reported here, and the queue moves.
    runner.forgetSent(2 ** 52 + 7);
    expect(results).toEqual([]);
    expect(ex().taskIds).toEqual([1]);
  });

  it("lists as running only the tasks whose start the executor reported, with the time since then", () => {
    const { runner, ex } = setup(2);
    runner.enqueue(task(1), PART);
    runner.enqueue(task(2), PART);
    expect(runner.running(Date.now())).toEqual([]);
    const at = Date.now();
    ex().report({ started: 2, at });
    expect(runner.running(at + 250)).toEqual([[2, 250]]);
  });

  it("release gives back queued movable tasks, newest first, never a running one", () => {
    const { runner, ex } = setup(1);
    runner.enqueue(task(1, { movable: true }), PART);
    for (const id of [2, 3, 4]) runner.enqueue(task(id, { movable: true }), PART);
    runner.enqueue(task(5), PART);
    ex().report({ started: 1 });
    expect(runner.release(2)).toEqual([3, 4]);
    expect(runner.release(10)).toEqual([2]);
    expect(ex().asked).toEqual([]);
    expect(runner.stateOf(1)).toBe("running");
    expect(runner.stateOf(5)).toBe("queued");
    expect(runner.load).toBe(2);
    ex().report({ started: 1, results: [{ id: 1 }] });
    expect(ex().taskIds).toEqual([1, 5]);
  });

  it("posts tasks ahead while they are quick; release asks the executor for those it has not started", () => {
    const { runner, ex, released, results } = setup(1, 2);
    for (const id of [1, 2, 3, 4, 5, 6]) runner.enqueue(task(id, { movable: true }), PART);
    expect(ex().taskIds).toEqual([1]); // no timing known yet: no prefetch
    ex().report({ started: 1, results: [{ id: 1 }] });
    expect(ex().taskIds).toEqual([1, 2, 3, 4]);
    ex().report({ started: 2 });
    expect(runner.release(4)).toEqual([5, 6]);
    expect(ex().asked).toEqual([[3, 4]]);
    expect([3, 4].map((id) => runner.stateOf(id))).toEqual(["releasing", "releasing"]);
    // 3 started before the request arrived: it runs here; 4 comes back.
    ex().report({ started: 3, dropped: [4] });
    expect(released).toEqual([[4]]);
    expect(runner.stateOf(3)).toBe("running");
    ex().report({ results: [{ id: 2 }, { id: 3 }] });
    expect(results.map((r) => [r.id, r.ok])).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
    expect(runner.load).toBe(0);
  });

  it("cancel reports queued tasks at once; the executor drops unstarted ones and aborts running ones", () => {
    const { runner, ex, results, errorOf } = setup(2);
    for (const id of [1, 2, 3]) runner.enqueue(task(id), PART);
    ex().report({ started: 1 });
    runner.cancel([1, 2, 3]);
    expect(errorOf(3)).toEqual({
      code: "ERR_PTC_TASK_CANCELLED",
      message: "The task was cancelled before it started.",
    });
    expect(ex().cancels).toEqual([[1, 2]]);
    expect([runner.stateOf(1), runner.stateOf(2)]).toEqual(["stopping", "stopping"]);
    ex().report({ dropped: [2], results: [{ id: 1, stdout: "partial\n" }] });
    expect(errorOf(2)?.message).toBe("The task was cancelled before it started.");
    expect(errorOf(1)?.message).toBe("The task was cancelled while running.");
    expect(results.find((r) => r.id === 1)?.stdout).toBe("partial\n");
    expect(runner.load).toBe(0);
    // Cancelling again, or a task long gone, changes nothing.
    runner.cancel([1, 2, 3]);
    expect(ex().cancels).toHaveLength(1);
    expect(results).toHaveLength(3);
  });

  it("a task cancelled after its start but before the report says so reports it was cancelled while running", () => {
    const { runner, ex, errorOf } = setup(1);
    runner.enqueue(task(1), PART);
    runner.cancel([1]);
    ex().report({ started: 1, results: [{ id: 1 }] });
    expect(errorOf(1)?.message).toBe("The task was cancelled while running.");
  });

  it("cancelQueued (client gone) cancels the tasks that have not started, and leaves running ones alone", () => {
    const { runner, ex, errorOf, released } = setup(1, 2);
    for (const id of [1, 2, 3, 4, 5]) runner.enqueue(task(id, { movable: true }), PART);
    ex().report({ started: 1, results: [{ id: 1 }] });
    ex().report({ started: 2 });
    expect(ex().taskIds).toEqual([1, 2, 3, 4]);
    expect(runner.release(1)).toEqual([5]);
    expect(runner.release(1)).toEqual([]);
    expect(ex().asked).toEqual([[4]]);
    runner.cancelQueued([2, 3, 4]);
    // 3 is asked back; 4 was already asked back (for an idle engine): both now come back as cancelled.
    expect(ex().asked).toEqual([[4], [3]]);
    ex().report({ dropped: [3, 4] });
    expect(errorOf(3)?.message).toMatch(/client went away/);
    expect(errorOf(4)?.message).toMatch(/client went away/);
    expect(released).toEqual([]);
    expect(runner.stateOf(2)).toBe("running");
    expect(ex().cancels).toEqual([]);
  });

  it("a timeout counts from the reported start, not from when the task was queued or posted", () => {
    const { runner, ex, errorOf } = setup(1);
    runner.enqueue(task(1), PART);
    runner.enqueue(task(2, { timeout: 500 }), PART);
    vi.advanceTimersByTime(2_000);
    ex().report({ started: 1, results: [{ id: 1 }] });
    expect(ex().taskIds).toEqual([1, 2]);
    vi.advanceTimersByTime(1_000); // posted, start not reported: no clock yet
    expect(ex().cancels).toEqual([]);
    ex().report({ started: 2 });
    vi.advanceTimersByTime(499);
    expect(ex().cancels).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ex().cancels).toEqual([[2]]);
    ex().report({ results: [{ id: 2 }] });
    expect(errorOf(2)).toEqual({
      code: "ERR_PTC_TASK_TIMEOUT",
      message: "The task ran longer than its timeout of 500 ms and was stopped.",
    });
  });

  it("a start held back by a task that never yields is found in the start table: shown running, timed from the table, not run twice", async () => {
    const { runner, executors, ex, errorOf } = setup(2);
    runner.enqueue(task(1, { timeout: 300 }), PART);
    runner.enqueue(task(2), PART);
    runner.enqueue(task(3), PART);
    // Task 1 started and never yields: no report comes, only the table knows.
    const at = Date.now();
    ex().table = [[1, at]];
    vi.advanceTimersByTime(200);
    expect(runner.running(Date.now())).toEqual([[1, 200]]);
    expect(runner.stateOf(2)).toBe("posted");
    vi.advanceTimersByTime(100);
    expect(ex().cancels).toEqual([[1]]);
    // Task 2 had started too (its slot-mate blocked the report): it fails with the executor, never re-runs.
    ex().table = [
      [1, at],
      [2, at + 10],
    ];
    vi.advanceTimersByTime(1_000);
    await vi.waitFor(() => expect(executors).toHaveLength(2));
    expect(errorOf(1)?.code).toBe("ERR_PTC_TASK_TIMEOUT");
    expect(errorOf(2)?.code).toBe("ERR_PTC_EXECUTOR_RESET");
    await vi.waitFor(() => expect(ex().taskIds).toEqual([3]));
  });

  it("a task that does not stop within the grace period costs its executor: unstarted tasks move to the new one, running ones fail", async () => {
    const { runner, executors, ex, errorOf, resets } = setup(3);
    for (const id of [1, 2, 3, 4]) runner.enqueue(task(id, id === 1 ? { timeout: 100 } : {}), PART);
    const first = ex();
    first.report({ started: 1 });
    first.report({ started: 2 });
    vi.advanceTimersByTime(100);
    expect(first.cancels).toEqual([[1]]);
    vi.advanceTimersByTime(1_000);
    await vi.waitFor(() => expect(executors).toHaveLength(2));
    expect(first.terminated).toBe(true);
    await vi.waitFor(() => expect(resets).toEqual(["task 1 did not stop within 1000 ms"]));
    expect(errorOf(1)?.code).toBe("ERR_PTC_TASK_TIMEOUT");
    expect(errorOf(2)?.code).toBe("ERR_PTC_EXECUTOR_RESET");
    await vi.waitFor(() => expect(ex().taskIds).toEqual([3, 4]));
    // The old executor's late reports are not believed.
    first.report({ results: [{ id: 3 }] });
    expect(errorOf(3)).toBeUndefined();
    expect(runner.stateOf(3)).toBe("posted");
  });

  it("an executor that runs out of memory fails its running tasks with ERR_PTC_OUT_OF_MEMORY", async () => {
    const { runner, ex, executors, errorOf } = setup(1);
    runner.enqueue(task(1), PART);
    runner.enqueue(task(2), PART);
    ex().report({ started: 1 });
    ex().outOfMemory = true;
    ex().exit(1);
    expect(errorOf(1)?.code).toBe("ERR_PTC_OUT_OF_MEMORY");
    await vi.waitFor(() => expect(executors[1]?.taskIds).toEqual([2]));
  });

  it("sends a function's source once per executor, and fails a task whose function it never saw", () => {
    const { runner, ex, errorOf } = setup(1);
    runner.enqueue(task(1, { fn: "h1", src: "(x) => x" }), PART);
    runner.enqueue(task(2, { fn: "h1", src: "(x) => x" }), PART);
    runner.enqueue(task(3, { fn: "h2" }), PART);
    ex().report({ started: 1, results: [{ id: 1 }] });
    ex().report({ started: 2, results: [{ id: 2 }] });
    const sent = ex().posted.flatMap((m) => (m.type === "tasks" ? m.items.map((i) => i.task) : []));
    expect(sent.map((t) => [t.id, t.src])).toEqual([
      [1, "(x) => x"],
      [2, undefined],
    ]);
    expect(errorOf(3)?.code).toBe("ERR_PTC_PROTOCOL");
  });
});
