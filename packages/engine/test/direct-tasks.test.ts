import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClientTask, EngineTask, Part, TaskResult } from "@ptcluster/protocol";
import { DirectTasks } from "../src/supervisor/direct-tasks.js";
import { ID_BASE, LINK_SPAN } from "../src/executor/protocol.js";

// The engine's side of the direct path: each DirectView task comes twice (body from the client,
// header from the controller) and runs once; results go to the client, the controller hears of
// them once the client acknowledged them, or whole if its link failed.

const BODY: Part = { body: Buffer.from([1]), frames: [] };
const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };
const CLIENT = Buffer.from("c1", "latin1");

function setup() {
  const enqueued: EngineTask[] = [];
  const reported: Array<{ result: TaskResult; part: Part }> = [];
  const cancelled: number[] = [];
  const sent: TaskResult[] = [];
  const cancelledKeys: string[] = [];
  const adopted: number[] = [];
  const forgotten: number[] = [];
  let acked = false;
  const d = new DirectTasks({
    enqueue: (t) => void enqueued.push(t),
    toClient: (_c, msg) => {
      sent.push(...msg.results);
      return sent.length;
    },
    acknowledged: () => acked,
    report: (result, part) => void reported.push({ result, part }),
    cancel: (rids) => void cancelled.push(...rids),
    cancelKeys: (keys) => (cancelledKeys.push(...keys), false),
    adopt: (t) => void adopted.push(t.id),
    sentByExecutor: (rid) => void forgotten.push(rid),
    learn: () => undefined,
    journal: () => undefined,
    graceMs: () => 1_000,
  });
  return { d, enqueued, reported, cancelled, sent, cancelledKeys, adopted, forgotten, ack: () => (acked = true) };
}

const clientTask = (id: number): ClientTask => ({ id, op: "apply", to: [0], fn: "h", src: "(x) => x" });
const header = (hubId: number, localId: number): EngineTask => ({ id: hubId, op: "apply", dx: `c1:${localId}` });
const result = (id: number): TaskResult => ({ id, ok: true, engine: 0, started: 1, completed: 2 });

describe("direct tasks on an engine", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("runs the client's copy at once and the controller's header binds it: one run, ids translated both ways", () => {
    const s = setup();
    s.d.fromClient(CLIENT, [clientTask(7)], [BODY]);
    expect(s.enqueued).toHaveLength(1);
    const rid = (s.enqueued[0] as EngineTask).id;
    s.d.fromController(header(42, 7), EMPTY);
    expect(s.enqueued).toHaveLength(1);
    expect(s.d.toController([[rid, 5]])).toEqual([[42, 5]]);
    expect(s.d.toRunner([42], 0)).toEqual([rid]);
    // The result goes to the client under its id; the controller hears of it once acknowledged, without its value.
    expect(s.d.finished(result(rid), BODY)).toBe(true);
    expect(s.sent.map((r) => r.id)).toEqual([7]);
    vi.advanceTimersByTime(1_000);
    expect(s.reported).toEqual([]);
    s.ack();
    vi.advanceTimersByTime(1_000);
    expect(s.reported.map((r) => [r.result.id, r.result.d, r.part.body.length])).toEqual([[42, 1, 0]]);
    // A late copy of either kind runs nothing.
    s.d.fromClient(CLIENT, [clientTask(7)], [BODY]);
    s.d.fromController({ ...header(42, 7) }, BODY);
    expect(s.enqueued).toHaveLength(1);
  });

  it("sends the result whole to the controller when another client adopted the task before its header came", () => {
    const s = setup();
    s.d.fromClient(CLIENT, [clientTask(11)], [BODY]);
    const rid = (s.enqueued[0] as EngineTask).id;
    // Clients send headers up to 20 ms late: an adoption (`direct_whole`) may come first.
    s.d.whole([46]);
    s.d.fromController(header(46, 11), EMPTY);
    s.ack();
    expect(s.d.finished(result(rid), BODY)).toBe(true);
    vi.advanceTimersByTime(1_000);
    expect(s.reported.map((r) => [r.result.id, r.result.d, r.part.body.length])).toEqual([[46, undefined, 1]]);
  });

  it("waits for the body when the controller's header comes first, then runs under the controller's id", () => {
    const s = setup();
    s.d.fromController(header(43, 8), EMPTY);
    expect(s.enqueued).toEqual([]);
    s.d.fromClient(CLIENT, [clientTask(8)], [BODY]);
    expect(s.enqueued.map((t) => t.id)).toEqual([43]);
  });

  it("runs a body resent through the controller once, its result going the controller's way", () => {
    const s = setup();
    s.d.fromController({ ...header(44, 9), src: "(x) => x" }, EMPTY);
    s.d.fromController(header(44, 9), BODY);
    expect(s.enqueued.map((t) => [t.id, t.dx, t.src])).toEqual([[44, undefined, "(x) => x"]]);
    expect(s.d.finished(result(44), BODY)).toBe(false);
    s.d.fromClient(CLIENT, [clientTask(9)], [BODY]);
    expect(s.enqueued).toHaveLength(1);
  });

  it("sends the controller a result whole when the client's link failed before acknowledging it", () => {
    const s = setup();
    s.d.fromClient(CLIENT, [clientTask(10)], [BODY]);
    const rid = (s.enqueued[0] as EngineTask).id;
    s.d.fromController(header(45, 10), EMPTY);
    s.d.finished(result(rid), BODY);
    s.d.clientLost(CLIENT, [{ header: { type: "dresults", results: [{ ...result(rid), id: 10 }], pf: [0] } }]);
    expect(s.reported.map((r) => [r.result.id, r.result.d, r.part.body.length])).toEqual([[45, undefined, 1]]);
  });

  it("cancels a task whose cancel came before its header, and one still waiting for its body", () => {
    const s = setup();
    s.d.fromClient(CLIENT, [clientTask(11)], [BODY]);
    const rid = (s.enqueued[0] as EngineTask).id;
    expect(s.d.toRunner([46], 0)).toEqual([46]);
    s.d.fromController(header(46, 11), EMPTY);
    expect(s.cancelled).toEqual([rid]);
    s.d.fromController(header(47, 12), EMPTY);
    expect(s.d.toRunner([47], 0)).toEqual([]);
    expect(s.reported.map((r) => [r.result.id, r.result.sysError?.code])).toEqual([[47, "ERR_PTC_TASK_CANCELLED"]]);
    s.d.fromClient(CLIENT, [clientTask(12)], [BODY]);
    expect(s.enqueued).toHaveLength(1);
  });

  it("never holds again a task of an executor's link whose result is here: a start reported after its end changes nothing", () => {
    const s = setup();
    const rid = ID_BASE + 3 * LINK_SPAN + 13;
    s.d.execLink(3, "c1");
    s.d.fromController(header(48, 13), EMPTY);
    // A heartbeat read its start in the executor's table before the executor's report came: held, then cancelled.
    s.d.heldStart(rid, 1);
    expect(s.adopted).toEqual([rid]);
    expect(s.d.toRunner([48], 0)).toEqual([rid]);
    expect(s.d.finished({ ...result(rid), ok: false }, EMPTY)).toBe(true);
    // The executor's batched report with its start comes last.
    s.d.fromExecutor(
      [{ rid, key: "c1:13", client: "c1", localId: 13, task: { id: rid, op: "apply" }, started: 1 }],
      [],
    );
    expect(s.adopted).toEqual([rid]);
  });
});
