import { describe, expect, it } from "vitest";
import { describeCancelled } from "../src/commands/repl-cancel.js";

describe("describeCancelled", () => {
  it("one line, naming what Ctrl-C cancelled of the line", () => {
    expect(describeCancelled({ tasks: 4, items: 0, streams: 0, sharedCalls: 0, pipelines: 0 })).toBe(
      "Cancelled: 4 tasks of this line (Ctrl-C)",
    );
    expect(describeCancelled({ tasks: 1, items: 0, streams: 0, sharedCalls: 0, pipelines: 0 })).toBe(
      "Cancelled: 1 task of this line (Ctrl-C)",
    );
    expect(describeCancelled({ tasks: 0, items: 6, streams: 0, sharedCalls: 0, pipelines: 0 })).toBe(
      "Cancelled: 6 map items of this line (Ctrl-C)",
    );
    expect(describeCancelled({ tasks: 2, items: 1, streams: 1, sharedCalls: 0, pipelines: 0 })).toBe(
      "Cancelled: 2 tasks, 1 map item and 1 imap stream of this line (Ctrl-C)",
    );
    expect(describeCancelled({ tasks: 0, items: 0, streams: 0, sharedCalls: 1, pipelines: 0 })).toBe(
      "Cancelled: 1 shared-state call of this line (Ctrl-C)",
    );
    expect(describeCancelled({ tasks: 0, items: 2, streams: 0, sharedCalls: 0, pipelines: 1 })).toBe(
      "Cancelled: 2 map items and 1 pipeline of this line (Ctrl-C)",
    );
  });

  it("nothing cancelled: no line (the REPL prints Node's interruption instead)", () => {
    expect(describeCancelled({ tasks: 0, items: 0, streams: 0, sharedCalls: 0, pipelines: 0 })).toBeUndefined();
  });
});
