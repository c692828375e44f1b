import {
  ClusterStartError,
  HubLostError,
  InvalidOptionError,
  ProtocolError,
  type HubRequest,
} from "@ptcluster/protocol";
import { WorkMap } from "../keep-alive.js";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** A failed request's error as its class: a start failure, a bad option, or else a protocol error. */
export function replyError(e: { code: string; message: string } | undefined): Error {
  const message = e?.message ?? "request failed";
  if (e?.code === "ERR_PTC_START") return new ClusterStartError(message);
  if (e?.code === "ERR_PTC_INVALID_OPTION") return new InvalidOptionError(message);
  return new ProtocolError(message, { code: e?.code ?? "ERR_PTC_PROTOCOL" });
}

/**
 * Requests to the controller (`status`, `queue_status`, `launch`, `shutdown`) and their replies,
 * matched by request id. Each has a deadline: a controller that does not answer is taken for lost.
 */
export class Requests {
  #nextRid = 1;
  readonly #pending: WorkMap<number, Pending>;

  /** `changed` is called when requests start or stop being pending (the session's hold on the process). */
  constructor(changed: () => void) {
    this.#pending = new WorkMap(changed);
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Sends `req` with `send` and resolves with the reply's data. */
  request(req: HubRequest, send: (rid: number, req: HubRequest) => void, timeoutMs = 10_000): Promise<unknown> {
    const rid = this.#nextRid++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new HubLostError(`The controller did not answer a \`${req.what}\` request within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.#pending.set(rid, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      send(rid, req);
    });
  }

  /** A reply arrived: settle its request (a late reply, after the deadline, is dropped). */
  settle(rid: number, ok: boolean, data: unknown, error: { code: string; message: string } | undefined): void {
    const pending = this.#pending.get(rid);
    this.#pending.delete(rid);
    if (!pending) return;
    if (ok) pending.resolve(data);
    else pending.reject(replyError(error));
  }

  /** Rejects every pending request (the connection is gone). */
  failAll(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const r of all) r.reject(err);
  }
}
