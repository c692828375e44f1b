import { describe, expect, it } from "vitest";
import {
  IllegalTaskTransitionError,
  QUEUED,
  assign,
  cancel,
  complete,
  engineOf,
  fail,
  isFinal,
  isOn,
  requestCancel,
  requeue,
  type TaskState,
} from "../src/tasks/task-state.js";

/** The error a refused transition throws. */
function refusal(f: () => unknown): IllegalTaskTransitionError {
  try {
    f();
  } catch (err) {
    if (err instanceof IllegalTaskTransitionError) return err;
    throw err;
  }
  throw new Error("the transition was not refused");
}

describe("a task's state machine", () => {
  it("follows a load-balanced task through placement, a hand-back, a retry and its result", () => {
    let s: TaskState = QUEUED;
    s = assign(s, 0);
    expect(s).toEqual({ kind: "assigned", engine: 0 });
    expect(engineOf(s)).toBe(0);
    expect(isOn(s, 0)).toBe(true);
    expect(isOn(s, 1)).toBe(false);
    s = requeue(s);
    expect(s.kind).toBe("queued");
    expect(engineOf(s)).toBe(-1);
    s = complete(assign(s, 1));
    expect(s).toEqual({ kind: "done", engine: 1 });
    expect(isFinal(s)).toBe(true);
    expect(isOn(s, 1)).toBe(false);
  });

  it("a cancelled task stays on its engine until it reports, comes back or its engine dies, and is never queued again", () => {
    const cancelling = requestCancel(assign(QUEUED, 2));
    expect(cancelling).toEqual({ kind: "cancelling", engine: 2 });
    expect(isOn(cancelling, 2)).toBe(true);
    // Asked twice (two cancels crossing): still cancelling.
    expect(requestCancel(cancelling)).toBe(cancelling);
    expect(cancel(cancelling, 2)).toEqual({ kind: "cancelled", engine: 2 });
    // The engine may finish it anyway (it had started).
    expect(complete(cancelling)).toEqual({ kind: "done", engine: 2 });
    expect(refusal(() => requeue(cancelling))).toMatchObject({
      code: "ERR_PTC_TASK_STATE",
      from: "cancelling",
      to: "queued",
    });
  });

  it("the controller fails a task from any live state, reporting the engine it was meant for", () => {
    expect(fail(QUEUED, 7, "ERR_PTC_UNKNOWN_ENGINE")).toEqual({
      kind: "failed",
      engine: 7,
      code: "ERR_PTC_UNKNOWN_ENGINE",
    });
    expect(fail(assign(QUEUED, 1), 1, "ERR_PTC_ENGINE_LOST").kind).toBe("failed");
    expect(fail(requestCancel(assign(QUEUED, 1)), 1, "ERR_PTC_ENGINE_LOST").kind).toBe("failed");
    expect(cancel(QUEUED, -1)).toEqual({ kind: "cancelled", engine: -1 });
  });

  it("refuses illegal transitions with a coded error naming both states", () => {
    const assigned = assign(QUEUED, 0);
    const done = complete(assigned);
    const cases: Array<[() => unknown, string, string]> = [
      [() => assign(assigned, 1), "assigned", "assigned"],
      [() => complete(QUEUED), "queued", "done"],
      [() => requeue(QUEUED), "queued", "queued"],
      [() => requestCancel(QUEUED), "queued", "cancelling"],
      [() => cancel(assigned, 0), "assigned", "cancelled"],
      [() => complete(done), "done", "done"],
      [() => fail(done, 0, "X"), "done", "failed"],
      [() => requeue(done), "done", "queued"],
      [() => assign(cancel(QUEUED, -1), 0), "cancelled", "assigned"],
      [() => fail(fail(QUEUED, 0, "X"), 0, "Y"), "failed", "failed"],
    ];
    for (const [f, from, to] of cases) {
      const err = refusal(f);
      expect(err.code).toBe("ERR_PTC_TASK_STATE");
      expect([err.from, err.to]).toEqual([from, to]);
      expect(err.message).toContain(`from \`${from}\` to \`${to}\``);
    }
  });
});
