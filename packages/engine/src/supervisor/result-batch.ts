import type { EngineResultsMsg, Part, TaskResult } from "@ptcluster/protocol";

/** Results for the controller, sent as one `engine_results` message per turn of the event loop. */
export class ResultBatch {
  private readonly results: Array<{ result: TaskResult; part: Part }> = [];
  private scheduled = false;

  /** `live()` false: the engine stopped, nothing more goes out. */
  constructor(
    private readonly send: (msg: EngineResultsMsg, parts: Part[]) => void,
    private readonly live: () => boolean,
  ) {}

  push(result: TaskResult, part: Part): void {
    this.results.push({ result, part });
    if (this.scheduled) return;
    this.scheduled = true;
    // After the poll phase, so results from several executor messages travel in one message.
    setImmediate(() => {
      this.scheduled = false;
      if (this.results.length === 0 || !this.live()) return;
      const batch = this.results.splice(0, this.results.length);
      this.send(
        { type: "engine_results", results: batch.map((b) => b.result), pf: batch.map((b) => b.part.frames.length) },
        batch.map((b) => b.part),
      );
    });
  }
}
