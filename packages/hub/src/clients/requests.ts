import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { assertNever, type AbortSummary, type ClientToHub, type HubToClient } from "@ptcluster/protocol";
import type { AbortRequest } from "./abort-request.js";

export type HubRequest = Extract<ClientToHub, { type: "request" }>["req"];

/** Starts more engines (given by `ptcluster start`, which owns the launchers). */
export type Launch = (req: { n: number; launcher: string; options: Record<string, unknown> }) => Promise<unknown>;

export interface RequestDeps {
  toClient(msg: HubToClient, to: Buffer): void;
  status(): unknown;
  queueStatus(): unknown;
  launch: Launch | undefined;
  /** Something was queued to send outside of a message handler. */
  flush(): void;
  /** Stops the controller once what was sent to clients is delivered. */
  shutdown(): void;
  /** Cancels the tasks the request names (`client`: who asks, whose own ids they are). */
  abort(client: Buffer, req: AbortRequest): AbortSummary;
}

/**
 * Full garbage collections, for `status({ gc: true })`: a diagnostic, to measure what is live. A
 * second one after a turn of the event loop, when freed buffers' finalizers have run.
 */
async function collectGarbage(): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setImmediate(r));
}

/** Answers a client's request (`rc.status()`, `queue_status`, `ptcluster engines`, abort, shutdown). */
export function handleRequest(d: RequestDeps, client: Buffer, rid: number, req: HubRequest): void {
  const reply = (data: unknown) => d.toClient({ type: "reply", rid, ok: true, data }, client);
  switch (req.what) {
    case "status":
      // With `gc`, after a full collection (twice, around the finalizers of freed buffers).
      if (req.gc)
        void collectGarbage().then(
          () => reply(d.status()),
          () => reply(d.status()),
        );
      else reply(d.status());
      break;
    case "queue_status":
      reply(d.queueStatus());
      break;
    case "launch": {
      const launch = d.launch;
      const fail = (code: string, message: string) =>
        d.toClient({ type: "reply", rid, ok: false, error: { code, message } }, client);
      if (!launch) {
        fail(
          "ERR_PTC_NO_LAUNCHER",
          "This controller runs without launchers (`ptcluster hub`): start engines with `ptcluster engine --file …` on each host.",
        );
        break;
      }
      if (!Number.isInteger(req.n) || req.n < 1 || req.n > 10_000) {
        fail("ERR_PTC_INVALID_OPTION", `Expected \`n\` to be a positive integer, got \`${String(req.n)}\``);
        break;
      }
      launch({
        n: req.n,
        launcher: String(req.launcher),
        options: req.options && typeof req.options === "object" ? req.options : {},
      }).then(
        (data) => {
          reply(data);
          d.flush();
        },
        (err: Error & { code?: string }) => {
          fail(err.code ?? "ERR_PTC_START", err.message);
          d.flush();
        },
      );
      break;
    }
    case "abort":
      reply(d.abort(client, req));
      break;
    case "shutdown":
      reply({ stopping: true });
      d.shutdown();
      break;
    default:
      assertNever(req, "request");
  }
}
