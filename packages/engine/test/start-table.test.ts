import { describe, expect, it } from "vitest";
import { Worker } from "node:worker_threads";
import { StartTable } from "../src/shared/start-table.js";

describe("the start table shared by the supervisor and its executor", () => {
  it("shows the tasks in their slots, and nothing once cleared", () => {
    const buf = StartTable.allocate(3);
    const writer = new StartTable(buf);
    const reader = new StartTable(buf);
    expect(reader.size).toBe(3);
    expect(reader.read()).toEqual([]);
    writer.set(2, 7, 1_000);
    writer.set(0, 2 ** 40, 2_000);
    expect(reader.read()).toEqual([
      [2 ** 40, 2_000],
      [7, 1_000],
    ]);
    writer.clear(0);
    expect(reader.read()).toEqual([[7, 1_000]]);
  });

  it("does not wait forever on an executor stopped in the middle of a write", () => {
    const buf = StartTable.allocate(1);
    new StartTable(buf).set(0, 5, 50);
    Atomics.add(new Int32Array(buf, 16, 1), 0, 1); // a write begun, never finished
    expect(new StartTable(buf).read()).toEqual([[5, 50]]);
  });

  it("is read from another thread while that thread never yields", async () => {
    const buf = StartTable.allocate(1);
    // The worker records a start, then spins: only shared memory can tell.
    const w = new Worker(
      `const { workerData } = require("node:worker_threads");
       const f = new Float64Array(workerData, 0, 2), seq = new Int32Array(workerData, 16, 1);
       Atomics.add(seq, 0, 1); f[0] = 42; f[1] = 123; Atomics.add(seq, 0, 1);
       const end = Date.now() + 10000; while (Date.now() < end) {}`,
      { eval: true, workerData: buf },
    );
    const table = new StartTable(buf);
    try {
      for (let i = 0; i < 1_000 && table.read().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(table.read()).toEqual([[42, 123]]);
    } finally {
      await w.terminate();
    }
  });
});
