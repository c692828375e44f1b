import { describe, expect, it } from "vitest";
import { formatLogLine } from "../src/log-format.js";

describe("formatLogLine: pino JSON as a line for a terminal", () => {
  const t = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();

  it("shows time, level, component and engine, message, then the other fields", () => {
    const line = JSON.stringify({
      level: 40,
      time: t,
      pid: 1,
      name: "ptcluster",
      component: "engine",
      engineId: 3,
      msg: "executor replaced",
      reason: "task 7 did not stop",
      n: 2,
    });
    expect(formatLogLine(line)).toBe(
      '03:04:05.006 WARN  engine[3] executor replaced reason="task 7 did not stop" n=2\n',
    );
  });

  it("puts an error's stack below, indented", () => {
    const line = JSON.stringify({
      level: 50,
      time: t,
      msg: "could not relaunch",
      err: { type: "Error", message: "boom", stack: "Error: boom\n    at x (y.js:1:1)" },
    });
    expect(formatLogLine(line)).toBe(
      "03:04:05.006 ERROR could not relaunch\n    Error: boom\n        at x (y.js:1:1)\n",
    );
  });

  it("colours the level only when asked, and passes a line that is not JSON through", () => {
    const line = JSON.stringify({ level: 30, time: t, msg: "hi" });
    expect(formatLogLine(line, true)).toContain("\u001b[32mINFO \u001b[39m hi");
    expect(formatLogLine("not json\n")).toBe("not json\n");
  });
});
