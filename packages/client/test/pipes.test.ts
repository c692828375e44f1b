import { describe, expect, it } from "vitest";
import { encodeValue, type ClientTask, type ClientToHub, type Part, type PipeStage } from "@ptcluster/protocol";
import { Submitter } from "../src/session/submitter.js";
import { PipeTable } from "../src/session/pipes.js";
import type { PipeSink } from "../src/pipeline/pipe-port.js";

const EMPTY: Part = { body: Buffer.alloc(0), frames: [] };

function harness() {
  const sent: ClientToHub[] = [];
  const tasks: ClientTask[] = [];
  const submitter = new Submitter({
    maxMessageBytes: 1_000_000,
    send: (t) => tasks.push(...t),
    defer: () => undefined,
  });
  let holdChanges = 0;
  const table = new PipeTable(
    (msg) => sent.push(msg),
    (hash, src) => submitter.firstUse(hash, src),
    () => holdChanges++,
  );
  const events: string[] = [];
  const sink: PipeSink = {
    onOut: (m) => events.push(`out ${m.pipe} ${m.done.length}`),
    onFailed: (m) => events.push(`failed ${m.pipe}`),
    onFailure: (e) => events.push(`failure ${e.message}`),
    abort: (reason) => events.push(`abort ${String(reason)}`),
  };
  return { sent, tasks, submitter, table, sink, events, holds: () => holdChanges };
}

const stage = (fn: string): PipeStage => ({ kind: "map", fn, src: `(x) => x /* ${fn} */`, name: fn });

describe("PipeTable", () => {
  it("a stage's source travels with its hash's first use on the connection, shared with tasks", () => {
    const { sent, tasks, submitter, table, sink } = harness();
    submitter.add({ op: "apply", to: [0], fn: "h1" }, encodeValue(1), "(x) => x /* h1 */");
    submitter.flush();
    expect(tasks[0]?.src).toBeDefined();
    table.open([stage("h1"), stage("h2"), stage("h2")], [EMPTY, EMPTY, EMPTY], "fail", sink);
    const open = sent[0] as Extract<ClientToHub, { type: "pipe_open" }>;
    expect(open.type).toBe("pipe_open");
    expect(open.stages.map((s) => s.src !== undefined)).toEqual([false, true, false]);
    expect(open.pf).toEqual([0, 0, 0]);
    // A task using h2 later carries no source: the pipeline shipped it.
    submitter.add({ op: "apply", to: [0], fn: "h2" }, encodeValue(2), "(x) => x /* h2 */");
    submitter.flush();
    expect(tasks[1]?.src).toBeUndefined();
  });

  it("numbers pipes, routes by pipe, holds while busy, and fails every open pipe when the connection ends", () => {
    const { sent, table, sink, events, holds } = harness();
    const a = table.open([stage("f")], [EMPTY], "fail", sink);
    const b = table.open([stage("f")], [EMPTY], "skip", sink);
    expect([a.pipe, b.pipe]).toEqual([1, 2]);
    a.items(0, [encodeValue(1), encodeValue(2)]);
    a.end(2);
    b.cancel("stop");
    expect(sent.slice(2)).toEqual([
      { type: "pipe_items", pipe: 1, first: 0, pf: [0, 0] },
      { type: "pipe_end", pipe: 1, total: 2 },
      { type: "pipe_cancel", pipe: 2, reason: "stop" },
    ]);
    a.busy(true);
    b.busy(true);
    expect([table.busy, holds()]).toEqual([2, 1]);
    table.out({ type: "pipe_out", pipe: 1, done: [[0, 1]], pf: [0] }, [encodeValue(1)]);
    table.out({ type: "pipe_out", pipe: 9, done: [[0, 1]], pf: [0] }, [encodeValue(1)]);
    table.failed({ type: "pipe_failed", pipe: 2 }, []);
    // A failed pipe is forgotten: it no longer holds, and what comes for it is dropped.
    expect(table.busy).toBe(1);
    table.out({ type: "pipe_out", pipe: 2, done: [], pf: [] }, []);
    a.close();
    expect([table.busy, holds()]).toEqual([0, 2]);
    table.open([stage("f")], [EMPTY], "fail", sink);
    table.abortAll("rc.abort()");
    table.failAll(new Error("closed"));
    expect(events).toEqual(["out 1 1", "failed 2", "abort rc.abort()", "failure closed"]);
  });
});
