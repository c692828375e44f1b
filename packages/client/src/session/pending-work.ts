import {
  PendingSharedCalls,
  type ClientToHub,
  type Part,
  type PipeFailedMsg,
  type PipeOutMsg,
  type ReplyMsg,
  type SharedReplyMsg,
} from "@ptcluster/protocol";
import { WorkMap } from "../keep-alive.js";
import { Requests } from "./requests.js";
import { PipeTable } from "./pipes.js";
import type { TaskSink } from "./view-port.js";

/**
 * A session's pending work: tasks waiting for results, requests, shared-state calls, pipelines
 * with items out, and `waitForEngines` calls. Pending work, and only that, keeps the process
 * alive (`changed` runs when it starts or stops being {@link busy}).
 */
export class PendingWork {
  readonly sinks: WorkMap<number, TaskSink>;
  readonly requests: Requests;
  // A blocking call on shared state (a queue `get`) holds the process as a pending task does.
  readonly sharedCalls: PendingSharedCalls;
  // Open pipelines (`rc.pipeline`): those with items out at the controller hold the process.
  readonly pipes: PipeTable;
  #waiting = 0;

  constructor(
    private readonly changed: () => void,
    send: (msg: ClientToHub, parts?: Part[]) => void,
    firstUse: (hash: string, src: string) => string | undefined,
  ) {
    this.sinks = new WorkMap(changed);
    this.requests = new Requests(changed);
    this.sharedCalls = new PendingSharedCalls(
      (msg, parts) => send(msg, parts.length > 0 ? [...parts] : undefined),
      changed,
    );
    this.pipes = new PipeTable(send, firstUse, changed);
  }

  get busy(): boolean {
    return this.sinks.size + this.requests.size + this.sharedCalls.size + this.pipes.busy + this.#waiting > 0;
  }

  /** Ids of the tasks waiting for results (`rc.abort()` with no argument cancels them all). */
  taskIds(): number[] {
    return [...this.sinks.keys()];
  }

  /** Holds the process while something waits (`waitForEngines`); call the returned function when done. */
  holdWhileWaiting(): () => void {
    this.#waiting++;
    this.changed();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#waiting--;
      this.changed();
    };
  }

  /** A reply to a request or a shared-state call, or a pipeline's output or failure, to what waits for it. */
  settle(m: ReplyMsg | SharedReplyMsg | PipeOutMsg | PipeFailedMsg, parts: Part[]): void {
    if (m.type === "reply") this.requests.settle(m.rid, m.ok, m.data, m.error);
    else if (m.type === "shared_reply") this.sharedCalls.settle(m, parts);
    else if (m.type === "pipe_out") this.pipes.out(m, parts);
    else this.pipes.failed(m, parts);
  }

  /** Every pending task, request, shared-state call and pipeline fails with `err`. */
  failAll(err: Error): void {
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    for (const s of sinks) s.onFailure(err);
    this.requests.failAll(err);
    this.sharedCalls.failAll(err);
    this.pipes.failAll(err);
  }
}
