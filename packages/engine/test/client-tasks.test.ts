import { afterEach, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import type { EngineTask, TaskResult } from "@ptcluster/protocol";
import { DuplexLink } from "@ptcluster/protocol/lean";
import { ClientTasks } from "../src/executor/client-tasks.js";
import type { FromExecutor } from "../src/executor/protocol.js";

// Clients' links owned by the executor thread (`executor/client-tasks.ts`), over a real link on
// loopback: what it tells its supervisor, and in which order.

const KEY = randomBytes(32);
const EMPTY = { body: Buffer.alloc(0), frames: [] as Buffer[] };

let close: (() => void) | undefined;
afterEach(() => close?.());

/** An executor's client tasks with a client's link to it; resolves once a task came on it (its executor id). */
async function withTask(): Promise<{ ct: ClientTasks; posts: FromExecutor[]; id: number }> {
  const posts: FromExecutor[] = [];
  let ran: (task: EngineTask) => void = () => undefined;
  const came = new Promise<EngineTask>((r) => (ran = r));
  const ct = new ClientTasks(
    {
      engineId: () => 0,
      run: (task) => ran(task),
      unqueue: () => false,
      abort: () => undefined,
      post: (m) => void posts.push(m),
      journaled: () => 0,
    },
    0,
  );
  await ct.start({ ip: "127.0.0.1", key: KEY, maxBytes: 1 << 20, linkLimitMs: 60_000 });
  const listen = posts.find((m) => m.type === "client_listen") as { address: string };
  const port = Number(listen.address.slice(listen.address.lastIndexOf(":") + 1));
  const link = await new Promise<DuplexLink>((welcome, refused) =>
    DuplexLink.dial(
      { host: "127.0.0.1", port, clusterKey: KEY, to: 0, id: Buffer.from("c1"), maxBytes: 1 << 20, ms: 5_000 },
      { welcome, refused: () => refused(new Error("refused")) },
    ),
  );
  close = () => {
    link.close();
    ct.dropLinks();
  };
  link.send({ type: "dsubmit", tasks: [{ id: 5, op: "apply", to: [0], fn: "h", src: "() => 1" }], pf: [0] }, [EMPTY]);
  const task = await came;
  return { ct, posts, id: task.id };
}

describe("an executor's own client links", () => {
  it("reports a task's start before the supervisor gets the end of a task it aborted", async () => {
    const { ct, posts, id } = await withTask();
    ct.started(id, 1);
    // The supervisor aborts it (a cancel): its result goes the supervisor's way, in the executor's
    // per-turn report, which does not wait for this batch's 20 ms.
    ct.aborting([id]);
    const result: TaskResult = { id, ok: false, engine: 0, started: 1, completed: 2 };
    expect(ct.finished(result, EMPTY)).toBe(false);
    const reports = posts.filter((m) => m.type === "exec_report");
    expect(reports.flatMap((m) => m.items.map((it) => [it.rid, it.started]))).toEqual([[id, 1]]);
  });

  it("reports a task's start before its answer to a cancel by key", async () => {
    const { ct, posts, id } = await withTask();
    ct.started(id, 1);
    ct.cancel(["c1:5"]);
    expect(ct.finished({ id, ok: false, engine: 0, started: 1, completed: 2 }, EMPTY)).toBe(false);
    const order = posts.filter((m) => m.type === "exec_report" || m.type === "exec_cancelled").map((m) => m.type);
    expect(order).toEqual(["exec_report", "exec_cancelled"]);
  });
});
