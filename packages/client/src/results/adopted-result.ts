import { CompositeError, InvalidOptionError, decodeValue } from "@ptcluster/protocol";
import type { TaskSink } from "../session/view-port.js";
import { AsyncResult, pendingMetadata, recordResult } from "./async-result.js";
import { failureToError } from "./remote-errors.js";

/** What fetching another client's result needs from the session. */
export interface AdoptPort {
  readonly id: string;
  assertOpen(): void;
  /** Asks for task `n` of client `from`, delivered to `sink` under a new id of this client. */
  adopt(from: string, n: number, sink: TaskSink): number;
  release(id: number): void;
  cancel(ids: number[]): void;
}

/**
 * The result of a task another client submitted (`msgId`, from its `ar.msgIds`): the value, or one
 * value per engine (in engine order) for a task sent to several, however many the result says.
 */
export function adoptedResult(port: AdoptPort, msgId: string): AsyncResult<unknown> {
  port.assertOpen();
  const m = typeof msgId === "string" ? /^([0-9a-f]{32}):(\d+)$/.exec(msgId) : null;
  if (!m)
    throw new InvalidOptionError(
      `Expected a task id like "<client id>:<number>" (from \`ar.msgIds\`), got ${JSON.stringify(msgId)}`,
    );
  const meta = pendingMetadata(-1);
  const ids: number[] = [];
  return AsyncResult.create<unknown>(
    (resolve, reject) => {
      const got: Array<{ engine: number; value: unknown; error: Error | undefined }> = [];
      let total: number | undefined;
      const sink: TaskSink = {
        onResult: (r, part) => {
          total ??= r.total ?? 1;
          recordResult(meta, r);
          let value: unknown;
          let error: Error | undefined;
          if (r.ok) {
            try {
              value = decodeValue(part.body, part.frames);
            } catch (err) {
              error = err as Error;
            }
          } else error = failureToError(r, part);
          got.push({ engine: r.engine, value, error });
          if (got.length < total) return;
          port.release(id);
          got.sort((a, b) => a.engine - b.engine);
          const failed = got.find((g) => g.error);
          if (failed?.error)
            reject(
              got.length === 1
                ? failed.error
                : new CompositeError(
                    got.flatMap((g) => (g.error ? [g.error] : [])),
                    got.map((g) => g.error ?? g.value),
                  ),
            );
          else resolve(got.length === 1 ? got[0]?.value : got.map((g) => g.value));
        },
        onFailure: (err) => reject(err),
      };
      const id = port.adopt(m[1] as string, Number(m[2]), sink);
      ids.push(id);
    },
    [meta],
    () => port.cancel(ids),
    ids,
    port.id,
  );
}
