import { describe, expect, it } from "vitest";
import { EngineRegistry } from "../src/engines/engine-registry.js";
import { engineActivity, noteRunning } from "../src/engines/engine-activity.js";
import { TaskTable } from "../src/tasks/task-table.js";

describe("an engine's running tasks, from its heartbeats", () => {
  const setup = () => {
    const engines = new EngineRegistry();
    const e = engines.register(Buffer.from("r"), { uuid: "u", host: "h", pid: 1, concurrency: 2 });
    const tasks = new TaskTable();
    const client = Buffer.from("c");
    const a = tasks.add(client, "client1", 7, undefined, { op: "apply", name: "spin" });
    const b = tasks.add(client, "client1", 8, undefined, { op: "pull" });
    const c = tasks.add(client, "client1", 9, undefined, { op: "map", name: "x".repeat(500) });
    for (const r of [a, b, c]) e.inflight.add(r.hubId);
    return { e, tasks, a, b, c };
  };

  it("names each running task (its op when it has no function) and counts the rest as queued", () => {
    const { e, tasks, a, b } = setup();
    noteRunning(
      e,
      [
        [a.hubId, 1500],
        [b.hubId, 10],
      ],
      10_000,
    );
    expect(engineActivity(e, tasks)).toEqual({
      current: [
        { taskId: "client1:7", fn: "spin", op: "apply", since: 8_500 },
        { taskId: "client1:8", fn: "pull", op: "pull", since: 9_990 },
      ],
      queued: 1,
    });
  });

  it("keeps a task's start across heartbeats, drops finished tasks at once, and forgets all on an empty heartbeat", () => {
    const { e, tasks, a, b } = setup();
    noteRunning(e, [[a.hubId, 1500]], 10_000);
    // A later heartbeat's transit time does not move the start.
    noteRunning(e, [[a.hubId, 1990]], 10_500);
    expect(engineActivity(e, tasks).current[0]?.since).toBe(8_500);
    // Finished (its result came in) before the next heartbeat: no longer shown.
    e.inflight.delete(a.hubId);
    tasks.take(a.hubId);
    expect(engineActivity(e, tasks)).toEqual({ current: [], queued: 2 });
    noteRunning(e, [[b.hubId, 0]], 11_000);
    noteRunning(e, undefined, 11_500);
    expect(engineActivity(e, tasks).current).toEqual([]);
  });

  it("believes no more than `concurrency` entries, and none that are malformed; caps a name's length", () => {
    const { e, tasks, a, b, c } = setup();
    noteRunning(e, ["junk", [a.hubId, -5], [b.hubId, "x"], [c.hubId, 3]], 100);
    // "junk" and the two bad pairs take the two places an engine of concurrency 2 has: none is believed.
    expect(engineActivity(e, tasks).current).toEqual([]);
    noteRunning(
      e,
      [
        [c.hubId, 3],
        [a.hubId, 2],
        [b.hubId, 1],
      ],
      100,
    );
    const shown = engineActivity(e, tasks).current;
    expect(shown.map((t) => t.taskId)).toEqual(["client1:9", "client1:7"]);
    expect(shown[0]?.fn).toHaveLength(200);
  });
});
