import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_MS, MIN_MS, MemoryWatch, nextSampleMs } from "../src/supervisor/memory-watch.js";
import { defaultMaxMemoryMb } from "../src/memory-limit.js";
import { PART, setup, task } from "./fake-executor.js";

const MB = 2 ** 20;

describe("the memory watch", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("samples more often the closer the executor is to its limit", () => {
    expect(nextSampleMs(0)).toBe(MIN_MS);
    expect(nextSampleMs(10 * MB)).toBe(MIN_MS);
    expect(nextSampleMs(100 * MB)).toBe(25);
    expect(nextSampleMs(100_000 * MB)).toBe(MAX_MS);
  });

  it("counts the process's memory beyond the supervisor's own, and reports once when it goes over", async () => {
    let rss = 50 * MB;
    const over: number[] = [];
    const watch = new MemoryWatch({ limitMb: 100, rss: () => rss, onOver: (mb) => over.push(mb) });
    rss = 60 * MB; // a fresh executor
    watch.executorReady();
    expect(watch.used()).toBe(10 * MB);
    rss = 140 * MB;
    await vi.advanceTimersByTimeAsync(MAX_MS);
    expect(over).toEqual([]);
    rss = 151 * MB;
    await vi.advanceTimersByTimeAsync(MAX_MS);
    expect(over).toEqual([101]);
    await vi.advanceTimersByTimeAsync(10 * MAX_MS);
    expect(over).toEqual([101]);
  });

  it("after a replacement, memory the allocator kept from the old executor does not count against the new one", async () => {
    let rss = 50 * MB;
    const over: number[] = [];
    const watch = new MemoryWatch({ limitMb: 100, rss: () => rss, onOver: (mb) => over.push(mb) });
    rss = 60 * MB;
    watch.executorReady();
    rss = 200 * MB;
    await vi.advanceTimersByTimeAsync(MIN_MS);
    expect(over).toEqual([150]);
    // The old executor is gone, but 120 MB stayed resident: the new one starts from there.
    rss = 180 * MB;
    watch.executorReady();
    expect(watch.used()).toBe(10 * MB);
    await vi.advanceTimersByTimeAsync(10 * MAX_MS);
    expect(over).toEqual([150]);
    watch.stop();
  });

  it("defaults to 3/4 of the machine's memory shared among its engines, never below 128 MB", () => {
    expect(defaultMaxMemoryMb(4, 16_384 * MB)).toBe(3_072);
    expect(defaultMaxMemoryMb(1, 16_384 * MB)).toBe(12_288);
    expect(defaultMaxMemoryMb(64, 1_024 * MB)).toBe(128);
  });
});

describe("the task runner when its executor goes", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("over its memory limit: the running task fails with ERR_PTC_OUT_OF_MEMORY naming the limit, the next one runs on a fresh executor", async () => {
    let rss = 50 * MB;
    const { runner, ex, executors, errorOf, resets } = setup(1, 0, { maxMemoryMb: 100, rss: () => rss });
    await runner.whenReady();
    runner.enqueue(task(1), PART);
    ex().report({ started: 1 });
    runner.enqueue(task(2), PART);
    rss = 170 * MB;
    await vi.advanceTimersByTimeAsync(MAX_MS);
    expect(errorOf(1)?.code).toBe("ERR_PTC_OUT_OF_MEMORY");
    expect(errorOf(1)?.message).toMatch(/used 120 MB .*limit of 100 MB.*--max-memory/);
    expect(executors[0]?.terminated).toBe(true);
    rss = 55 * MB;
    await vi.waitFor(() => expect(executors[1]?.taskIds).toEqual([2]));
    expect(resets).toHaveLength(1);
    expect(errorOf(2)).toBeUndefined();
  });

  it("process.exit by one of two running tasks: that one crashed (ERR_PTC_TASK_CRASHED), the other was collateral (ERR_PTC_EXECUTOR_RESET)", async () => {
    const { runner, ex, executors, errorOf } = setup(2);
    for (const id of [1, 2, 3]) runner.enqueue(task(id), PART);
    ex().report({ started: 1 });
    ex().report({ started: 2 });
    ex().exitedBy = 2;
    ex().exit(1);
    expect(errorOf(2)?.code).toBe("ERR_PTC_TASK_CRASHED");
    expect(errorOf(2)?.message).toMatch(/called process\.exit\(1\)/);
    expect(errorOf(1)?.code).toBe("ERR_PTC_EXECUTOR_RESET");
    await vi.waitFor(() => expect(executors[1]?.taskIds).toEqual([3]));
  });

  it("an exit no task owned up to fails every running task with ERR_PTC_TASK_CRASHED", () => {
    const { runner, ex, errorOf } = setup(2);
    for (const id of [1, 2]) runner.enqueue(task(id), PART);
    ex().report({ started: 1 });
    ex().report({ started: 2 });
    ex().exit(7);
    expect([errorOf(1)?.code, errorOf(2)?.code]).toEqual(["ERR_PTC_TASK_CRASHED", "ERR_PTC_TASK_CRASHED"]);
    expect(errorOf(1)?.message).toMatch(/code 7/);
  });
});
