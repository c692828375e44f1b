import { describe, expect, it } from "vitest";
import type { ClientTask } from "@ptcluster/protocol";
import { DirectGate } from "../src/session/direct-gate.js";

const task = (id: number) => ({ id, op: "apply", to: [0] }) as unknown as ClientTask;

function gate() {
  let opening = false;
  let settle: (() => void) | undefined;
  const sent: number[] = [];
  const g = new DirectGate({
    opening: () => (opening ? new Promise<void>((r) => (settle = r)) : undefined),
    send: (tasks) => sent.push(...tasks.map((t) => t.id)),
  });
  return {
    g,
    sent,
    open: () => (opening = true),
    answered: async () => {
      opening = false;
      settle?.();
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe("DirectGate", () => {
  it("sends at once while nothing is being created", () => {
    const { g, sent } = gate();
    g.submit([task(1)], []);
    g.submit([task(2), task(3)], []);
    expect(sent).toEqual([1, 2, 3]);
  });

  it("holds batches, in order, while a creation is unanswered, and sends them once it is", async () => {
    const { g, sent, open, answered } = gate();
    g.submit([task(1)], []);
    open();
    g.submit([task(2)], []);
    g.submit([task(3), task(4)], []);
    expect(sent).toEqual([1]);
    await answered();
    expect(sent).toEqual([1, 2, 3, 4]);
    g.submit([task(5)], []);
    expect(sent).toEqual([1, 2, 3, 4, 5]);
  });

  it("a batch after held ones waits behind them even once nothing is being created", async () => {
    const { g, sent, open, answered } = gate();
    open();
    g.submit([task(1)], []);
    // The creation is answered, but the release has not run yet: 2 must not overtake 1.
    const done = answered();
    g.submit([task(2)], []);
    await done;
    expect(sent).toEqual([1, 2]);
  });

  it("release() sends what is held at once (a cancel that names it follows)", () => {
    const { g, sent, open } = gate();
    open();
    g.submit([task(1)], []);
    g.release();
    expect(sent).toEqual([1]);
  });
});
