import { describe, expect, it } from "vitest";
import { judgeLiveness, type LivenessFacts } from "../src/session/liveness.js";

const base = (over: Partial<LivenessFacts>): LivenessFacts => ({
  now: 100_000,
  lastCheck: 100_000 - 250,
  lastHeard: 100_000 - 100,
  heartbeatMs: 250,
  overdue: () => false,
  ...over,
});

describe("judgeLiveness", () => {
  it("a controller heard from recently, with nothing unacknowledged, is alive", () => {
    expect(judgeLiveness(base({}))).toEqual({ kind: "alive" });
  });

  it("silence longer than max(3 s, 8 heartbeats) means lost", () => {
    expect(judgeLiveness(base({ lastHeard: 100_000 - 3_001 }))).toEqual({ kind: "silent", limitMs: 3_000 });
    expect(judgeLiveness(base({ lastHeard: 100_000 - 2_999 }))).toEqual({ kind: "alive" });
    expect(judgeLiveness(base({ heartbeatMs: 1_000, lastHeard: 100_000 - 7_000, lastCheck: 100_000 - 1_000 }))).toEqual(
      { kind: "alive" },
    );
    expect(judgeLiveness(base({ heartbeatMs: 1_000, lastHeard: 100_000 - 8_001, lastCheck: 100_000 - 1_000 }))).toEqual(
      { kind: "silent", limitMs: 8_000 },
    );
  });

  it("messages unacknowledged for twice the silence limit mean lost, even while the controller talks", () => {
    const asked: number[] = [];
    const v = judgeLiveness(base({ overdue: (ms) => (asked.push(ms), true) }));
    expect(v).toEqual({ kind: "unacknowledged", limitMs: 6_000 });
    expect(asked).toEqual([6_000]);
  });

  it("after this event loop was blocked, it judges nothing (what arrived is still unread)", () => {
    const v = judgeLiveness(base({ lastCheck: 100_000 - 501, lastHeard: 0, overdue: () => true }));
    expect(v).toEqual({ kind: "stalled" });
    // Twice the period (at least 250 ms) is still on time.
    expect(judgeLiveness(base({ heartbeatMs: 100, lastCheck: 100_000 - 500 }))).toEqual({ kind: "alive" });
    expect(judgeLiveness(base({ heartbeatMs: 100, lastCheck: 100_000 - 501 }))).toEqual({ kind: "stalled" });
  });
});
