import {
  partFrameCounts,
  type Logger,
  type Part,
  type SharedCallMsg,
  type SharedReplyMsg,
  type SharedWithdrawMsg,
} from "@ptcluster/protocol";
import type { Holder, SharedReply } from "./call.js";
import { SharedStore } from "./store.js";

export interface SharedStateDeps {
  /** Sends a reply (with its parts) to the peer with this routing id, on the socket it came from. */
  reply(kind: "client" | "engine", msg: SharedReplyMsg, parts: readonly Part[] | undefined, to: Buffer): void;
  log: Logger;
}

/**
 * Shared state as the controller serves it: calls from clients and engines go to the store, its
 * answers go back to the caller, and the store hears when a holder is gone. A client is one holder
 * (`c:<its id>`); an engine is one holder per executor (`e:<id>:<generation>`), since replacing
 * the executor ends every task in it, and with them what they held.
 */
export class SharedState {
  readonly store: SharedStore;
  /** Executor generations seen per engine, to free all of an engine's holds when it dies. */
  private readonly generations = new Map<number, Set<number>>();

  constructor(
    maxBytes: number,
    private readonly deps: SharedStateDeps,
  ) {
    this.store = new SharedStore({ maxBytes });
  }

  fromClient(key: string, routingId: Buffer, msg: SharedCallMsg | SharedWithdrawMsg, parts: Part[]): void {
    this.handle(`c:${key}`, "client", routingId, msg, parts, undefined);
  }

  fromEngine(engineId: number, routingId: Buffer, msg: SharedCallMsg | SharedWithdrawMsg, parts: Part[]): void {
    const gen = msg.gen ?? 0;
    let gens = this.generations.get(engineId);
    if (!gens) this.generations.set(engineId, (gens = new Set()));
    gens.add(gen);
    this.handle(`e:${engineId}:${gen}`, "engine", routingId, msg, parts, gen);
  }

  clientGone(key: string): void {
    this.store.holderGone(`c:${key}`);
  }

  /** An engine replaced its executor: what the tasks of the old one held is freed. */
  executorGone(engineId: number, gen: number): void {
    this.generations.get(engineId)?.delete(gen);
    this.store.holderGone(`e:${engineId}:${gen}`);
  }

  engineGone(engineId: number): void {
    for (const gen of this.generations.get(engineId) ?? []) this.store.holderGone(`e:${engineId}:${gen}`);
    this.generations.delete(engineId);
  }

  private handle(
    holder: Holder,
    kind: "client" | "engine",
    routingId: Buffer,
    msg: SharedCallMsg | SharedWithdrawMsg,
    parts: Part[],
    gen: number | undefined,
  ): void {
    if (msg.type === "shared_withdraw") {
      this.store.withdraw(holder, msg.rid);
      return;
    }
    const rid = msg.rid;
    const reply = (r: SharedReply): void => {
      const out: SharedReplyMsg = { type: "shared_reply", rid, ok: r.ok };
      if (gen !== undefined) out.gen = gen;
      if (!r.ok) {
        out.error = { code: r.code, message: r.message };
        this.deps.reply(kind, out, undefined, routingId);
        return;
      }
      if (r.value !== undefined) out.value = r.value;
      if (r.parts && r.parts.length > 0) out.pf = partFrameCounts(r.parts);
      this.deps.reply(kind, out, r.parts, routingId);
    };
    try {
      this.store.call(msg.name, msg.spec, msg.op, { holder, rid, reply }, { ...msg.args, parts });
    } catch (err) {
      // A bug in the store must not take the controller down: the caller gets the error.
      this.deps.log.error({ err, name: msg.name, op: msg.op }, "shared-state call failed");
      reply({
        ok: false,
        code: "ERR_PTC_SHARED_INTERNAL",
        message: `The controller failed on ${msg.op} of \`${msg.name}\`: ${(err as Error).message}`,
      });
    }
  }
}
