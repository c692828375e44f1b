import type { Part, PipeFailedMsg, PipeOnError, PipeOutMsg, PipeStage } from "@ptcluster/protocol";

/** Receives what the controller says about one pipeline. */
export interface PipeSink {
  onOut(msg: PipeOutMsg, parts: Part[]): void;
  onFailed(msg: PipeFailedMsg, parts: Part[]): void;
  /** The connection ended (client closed, controller lost): nothing more comes. */
  onFailure(err: Error): void;
  /** Cancels the run (`rc.abort()`): it fails with `TaskCancelledError`, the controller drops what is in flight. */
  abort(reason?: unknown): void;
}

/** One open pipeline on the connection: what a run sends, and how it holds the process. */
export interface PipeHandle {
  readonly pipe: number;
  /** Input items `first`, `first + 1`, …, one encoded part each. */
  items(first: number, parts: Part[]): void;
  /** The input ended after `total` items. */
  end(total: number): void;
  /** Gives the pipeline up: the controller cancels everything in flight. */
  cancel(reason: string): void;
  /** While items are out at the controller, the pipeline holds the process as pending tasks do. */
  busy(on: boolean): void;
  /** The run is over: forget the pipe (what still comes for it is dropped). */
  close(): void;
}

/** What a pipeline run may ask of the client's session (as views see only their `ViewPort`). */
export interface PipePort {
  /** Largest message the cluster accepts (bytes): a batch of items stays within it. */
  readonly maxMessageBytes: number;
  /** Throws `ClientClosedError` or `HubLostError` when nothing can be sent. */
  assertOpen(): void;
  /**
   * Opens a pipeline: `stages` carry their function's source (`src`), which goes only with the
   * first use of its hash on the connection; `scopes` holds one part per stage.
   */
  openPipe(stages: PipeStage[], scopes: Part[], onError: PipeOnError, sink: PipeSink): PipeHandle;
}
