import { describe, expect, it } from "vitest";
import { EngineRegistry } from "../src/engines/engine-registry.js";
import { noteRunning } from "../src/engines/engine-activity.js";
import { selectForAbort } from "../src/clients/abort-request.js";
import { assign } from "../src/tasks/task-state.js";
import { TaskTable } from "../src/tasks/task-table.js";

const A = "a".repeat(32);
const B = "b".repeat(32);

describe("what an abort request selects", () => {
  const setup = () => {
    const engines = new EngineRegistry();
    const e0 = engines.register(Buffer.from("r0"), { uuid: "u0", host: "h", pid: 1, concurrency: 1 });
    const e1 = engines.register(Buffer.from("r1"), { uuid: "u1", host: "h", pid: 2, concurrency: 1 });
    const tasks = new TaskTable();
    const place = (client: string, local: number, on: typeof e0 | undefined) => {
      const rec = tasks.add(Buffer.from(client), client, local, undefined, { op: "apply" });
      if (on) {
        rec.state = assign(rec.state, on.info.id);
        on.inflight.add(rec.hubId);
      }
      return rec;
    };
    const running0 = place(A, 1, e0);
    const behind0 = place(A, 2, e0);
    const running1 = place(B, 1, e1);
    const waiting = place(B, 2, undefined); // load-balanced, not placed yet
    noteRunning(e0, [[running0.hubId, 10]], 1_000);
    noteRunning(e1, [[running1.hubId, 10]], 1_000);
    return { engines, tasks, running0, behind0, running1, waiting };
  };

  it("by msg id, of any client, and by the asking client's own ids", () => {
    const { engines, tasks, running1, behind0 } = setup();
    const r = selectForAbort({ what: "abort", tasks: [`${B}:1`] }, A, tasks, engines);
    expect(r.ids).toEqual([running1.hubId]);
    expect(r.summary).toEqual({ running: 1, queued: 0, engines: [1] });
    const own = selectForAbort({ what: "abort", ids: [2] }, A, tasks, engines);
    expect(own.ids).toEqual([behind0.hubId]);
    expect(own.summary).toEqual({ running: 0, queued: 1, engines: [0] });
  });

  it("by engine: what runs and waits there, and nothing elsewhere", () => {
    const { engines, tasks, running0, behind0 } = setup();
    const r = selectForAbort({ what: "abort", engines: [0] }, B, tasks, engines);
    expect(r.ids.sort()).toEqual([running0.hubId, behind0.hubId].sort());
    expect(r.summary).toEqual({ running: 1, queued: 1, engines: [0] });
  });

  it("all: every task, placed or not", () => {
    const { engines, tasks } = setup();
    const r = selectForAbort({ what: "abort", all: true }, A, tasks, engines);
    expect(r.ids).toHaveLength(4);
    expect(r.summary).toEqual({ running: 2, queued: 2, engines: [0, 1] });
  });

  it("selects nothing for what does not exist or does not parse", () => {
    const { engines, tasks } = setup();
    const req = { what: "abort", tasks: ["nope", `${A}:99`, 5], engines: [7, "0"], ids: [42] } as never;
    expect(selectForAbort(req, A, tasks, engines)).toEqual({
      ids: [],
      summary: { running: 0, queued: 0, engines: [], awaited: 1 },
      // A well-formed msg id not known yet may be a direct task whose header is on its way.
      notYet: [{ from: A, id: 99 }],
    });
  });
});
