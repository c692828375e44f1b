import type { ClientTask, EngineInfo, Part, TaskResult } from "@ptcluster/protocol";

/** Receives the results of one submitted task. */
export interface TaskSink {
  onResult(result: TaskResult, part: Part): void;
  onFailure(err: Error): void;
}

/** A task as a view describes it: the session gives it its id and ships its function's source once. */
export type NewTask = Omit<ClientTask, "id" | "src">;

/**
 * What views and results may ask of the client's session, and nothing more: views import this
 * type, never the `Client`, so they cannot reach its connection, and the public types carry none
 * of it.
 */
export interface ViewPort {
  /** This client's id, the first half of its tasks' `msgIds`. */
  readonly id: string;
  /** Engine ids, sorted. */
  readonly ids: number[];
  /** What the controller said about an engine when it registered. */
  engineInfo(id: number): EngineInfo | undefined;
  /** Throws `ClientClosedError` or `HubLostError` when no task can be submitted. */
  assertOpen(): void;
  /** Throws `MessageTooLargeError` if this part could never be sent. */
  checkSize(part: Part, what: string): void;
  /** Queues a task (tasks queued in the same tick travel in one message); its results go to `sink`. */
  submit(task: NewTask, part: Part, sink: TaskSink, src?: string): number;
  /** Cancels tasks by id: queued ones are dropped, running ones signalled. */
  cancel(ids: number[]): void;
  /** The task's sink is done: forget it (a task no longer pending lets the process exit). */
  release(id: number): void;
}
