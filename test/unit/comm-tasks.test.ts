import { describe, expect, it } from "vitest";
import type { CommMsg, TaskResult } from "@ptcluster/protocol";
import { CommTasks } from "../../packages/engine/src/supervisor/comm-tasks.js";
import type { CommIn } from "../../packages/engine/src/supervisor/comm-transport.js";

const task = (id: number, g: string) => ({ id, op: "apply" as const, comm: { g, ranks: [5, 7] } });
const msg = (g: string): CommMsg => ({ type: "comm", g, to: 7, from: 0, ch: "u:0", pf: [0] });
const result = (id: number, sysError?: TaskResult["sysError"]): TaskResult => ({
  id,
  ok: !sysError,
  engine: 7,
  started: 0,
  completed: 0,
  ...(sysError ? { sysError } : {}),
});

describe("CommTasks (the supervisor's part in engine.comm)", () => {
  it("posts again to a replacing executor the messages of groups not running yet, and the engines lost, once each", () => {
    const t = new CommTasks();
    t.received(task(1, "queued"));
    t.received(task(2, "running"));
    t.posted(msg("queued"), [], 1);
    t.posted(msg("running"), [], 1);
    t.posted(msg("no task yet"), [], 1);
    t.posted({ type: "peer_state", id: 9, up: false, reason: "gone" }, [], 1);
    t.posted({ type: "peer_state", id: 8, up: false, reason: "gone" }, [], 1);
    t.posted({ type: "peer_state", id: 8, up: true, reason: "registered" }, [], 1);
    t.running([2]);
    t.posted(msg("queued"), [], 2); // reached the new executor already
    const again: CommIn[] = [];
    t.replay(1, (m) => (again.push(m), 2));
    expect(again.map((m) => (m.type === "peer_state" ? `lost ${m.id}` : m.g))).toEqual([
      "lost 9",
      "queued",
      "no task yet",
    ]);
  });

  it("a task ended by the supervisor (sysError) aborts its group for the others; one the executor reported does not", () => {
    const t = new CommTasks();
    t.received(task(1, "a"));
    t.received(task(2, "b"));
    expect(t.ended(result(1), 7)).toBeUndefined();
    expect(t.ended(result(2, { code: "ERR_PTC_TASK_CRASHED", message: "process.exit(3)" }), 7)).toMatchObject({
      type: "comm_abort",
      g: "b",
      to: [5],
      error: { code: "ERR_PTC_COMM_PEER_LOST", message: expect.stringMatching(/^Rank 1 \(engine 7\)/) },
    });
    expect(t.ended(result(3, { code: "X", message: "m" }), 7)).toBeUndefined(); // no group
  });
});
