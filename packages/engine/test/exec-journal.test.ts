import { afterEach, describe, expect, it, vi } from "vitest";
import type { ClientTask, EngineTask, Part } from "@ptcluster/protocol";
import { ExecJournal } from "../src/shared/exec-journal.js";
import { DirectTasks } from "../src/supervisor/direct-tasks.js";
import { ExecCancels } from "../src/supervisor/direct-cancels.js";
import { ID_BASE, LINK_SPAN } from "../src/executor/protocol.js";

// What an executor that owned clients' links leaves when it ends without a word: its journal of
// starts, read by the supervisor, so that no task the client sends again runs a second time.

describe("the journal of an executor's starts", () => {
  it("keeps the last SIZE starts in order, whatever came before", () => {
    const buf = ExecJournal.allocate();
    const writer = new ExecJournal(buf);
    expect(new ExecJournal(buf).read()).toEqual([]);
    writer.started(ID_BASE + 5);
    writer.started(ID_BASE + 6);
    expect(new ExecJournal(buf).read()).toEqual([ID_BASE + 5, ID_BASE + 6]);
    for (let i = 0; i < ExecJournal.SIZE + 3; i++) writer.started(i);
    const read = new ExecJournal(buf).read();
    expect(read).toHaveLength(ExecJournal.SIZE);
    expect(read[0]).toBe(3);
    expect(read.at(-1)).toBe(ExecJournal.SIZE + 2);
  });
});

const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };
const CLIENT = Buffer.from("c1", "latin1");
const LINK = 7;
const rid = (local: number) => ID_BASE + LINK * LINK_SPAN + local;
const clientTask = (id: number): ClientTask => ({ id, op: "apply", to: [0], fn: "h", src: "(x) => x" });

function setup() {
  const enqueued: EngineTask[] = [];
  const sent: Array<{ id: number; code: string | undefined }> = [];
  const dropped: number[] = [];
  const d = new DirectTasks({
    enqueue: (t) => void enqueued.push(t),
    toClient: (_c, msg) => {
      for (const r of msg.results) sent.push({ id: r.id, code: r.sysError?.code });
      return sent.length;
    },
    acknowledged: () => false,
    report: () => undefined,
    cancel: () => undefined,
    cancelKeys: () => false,
    adopt: () => undefined,
    sentByExecutor: () => undefined,
    learn: () => undefined,
    journal: () => undefined,
    graceMs: () => 1_000,
  });
  d.execLink(LINK, "c1");
  const end = (started: number[], running: Array<[number, number]>) =>
    d.executorEnded(
      {
        started,
        running,
        lost: () => ({ code: "ERR_PTC_OUT_OF_MEMORY", message: "out of memory" }),
        drop: (ids) => void dropped.push(...ids),
      },
      0,
    );
  return { d, enqueued, sent, dropped, end };
}

describe("tasks an executor started and did not report before it ended", () => {
  it("one running then fails at once with the executor's loss, and its copy sent again is not run", () => {
    const s = setup();
    s.end([rid(1)], [[rid(1), 1_000]]);
    expect(s.sent).toEqual([{ id: 1, code: "ERR_PTC_OUT_OF_MEMORY" }]);
    s.d.fromClient(CLIENT, [clientTask(1)], [EMPTY]);
    expect(s.enqueued).toEqual([]);
  });

  it("one whose copy came again before the executor's end was read: that copy leaves the queue", () => {
    const s = setup();
    s.d.fromClient(CLIENT, [clientTask(2)], [EMPTY]);
    const copy = (s.enqueued[0] as EngineTask).id;
    s.end([rid(2)], [[rid(2), 1_000]]);
    expect(s.dropped).toEqual([copy]);
    expect(s.sent).toEqual([{ id: 2, code: "ERR_PTC_OUT_OF_MEMORY" }]);
  });

  it("one that had finished fails only if its client asks again (it never got the result), and is not run", () => {
    const s = setup();
    s.end([rid(3), rid(4)], []);
    expect(s.sent).toEqual([]);
    s.d.fromClient(CLIENT, [clientTask(4)], [EMPTY]);
    expect(s.enqueued).toEqual([]);
    expect(s.sent).toEqual([{ id: 4, code: "ERR_PTC_EXECUTOR_RESET" }]);
  });

  it("one the executor reported is left to the runner", () => {
    const s = setup();
    s.d.fromExecutor(
      [{ rid: rid(5), key: "c1:5", client: "c1", localId: 5, task: { id: rid(5), op: "apply" }, started: 1 }],
      [],
    );
    s.end([rid(5)], [[rid(5), 1]]);
    expect(s.sent).toEqual([]);
  });
});

describe("a direct task cancelled before the executor reported it, the executor's thread held", () => {
  afterEach(() => void vi.useRealTimers());

  /** An ExecCancels over a journal the test writes as the executor would; `links`: link → client. */
  function cancels(links: Record<number, string>) {
    vi.useFakeTimers();
    const journal = new ExecJournal(ExecJournal.allocate());
    const reported: Array<{ id: number; message: string | undefined }> = [];
    const c = new ExecCancels({
      cancelKeys: () => true,
      report: (r) => void reported.push({ id: r.id, message: r.sysError?.message }),
      engineId: () => 0,
      journal: () => journal,
      graceMs: () => 1_000,
      clientOfLink: (link) => links[link],
    });
    return { c, journal, reported };
  }
  const at = (link: number, local: number) => ID_BASE + link * LINK_SPAN + local;
  const NEVER = "The task was cancelled before it started.";

  it("is reported as never started once the grace period is over, if the starts since its last report show no copy of it", () => {
    const { c, journal, reported } = cancels({ 1: "cA", 2: "cB" });
    journal.started(at(1, 4)); // reported before the cancel: not its concern
    c.reported(1);
    journal.started(at(1, 5)); // another task of the same client
    journal.started(at(2, 9)); // the same local id, another client
    c.cancel("cA:9", 100);
    vi.advanceTimersByTime(999);
    expect(reported).toEqual([]);
    expect(c.waits("cA:9")).toBe(true);
    vi.advanceTimersByTime(1);
    expect(reported).toEqual([{ id: 100, message: NEVER }]);
    // The executor's own answer, when its thread is free, changes nothing.
    c.settled("cA:9", false);
    expect(reported).toHaveLength(1);
  });

  it("waits for the executor's answer when the journal shows it may have started, or cannot tell", () => {
    // Started after the last report (on this client's link): it runs, or ran.
    const started = cancels({ 1: "cA" });
    started.journal.started(at(1, 9));
    started.c.cancel("cA:9", 100);
    vi.advanceTimersByTime(5_000);
    expect(started.reported).toEqual([]);
    started.c.settled("cA:9", true);
    expect(started.reported).toEqual([{ id: 100, message: "The task was cancelled while running." }]);
    vi.useRealTimers();

    // Started on a link whose client the supervisor does not know yet: it may be this client's.
    const unknownLink = cancels({ 1: "cA" });
    unknownLink.journal.started(at(3, 9));
    unknownLink.c.cancel("cA:9", 100);
    vi.advanceTimersByTime(5_000);
    expect(unknownLink.reported).toEqual([]);
    vi.useRealTimers();

    // More starts since its last report than the journal keeps: it cannot tell.
    const overflow = cancels({ 1: "cA" });
    for (let i = 0; i <= ExecJournal.SIZE; i++) overflow.journal.started(at(1, 100_000 + i));
    overflow.c.cancel("cA:9", 100);
    vi.advanceTimersByTime(5_000);
    expect(overflow.reported).toEqual([]);
    // The executor ended: its cancelled tasks ended with it.
    overflow.c.executorGone();
    expect(overflow.reported).toHaveLength(1);
  });
});
