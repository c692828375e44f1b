import { describe, expect, it } from "vitest";
import { CommMismatchError, type CommAbortMsg, type CommMsg, type Part } from "@ptcluster/protocol";
import { Collectives } from "../src/comm/collectives.js";
import { CommGroups } from "../src/comm/group.js";

/**
 * Two engines' `CommGroups` in one process, their messages delivered as an executor link does:
 * everything one engine sent in a turn arrives in one read, handed over in one synchronous loop.
 */
function pair(): { groups: CommGroups[] } {
  const groups: CommGroups[] = [];
  const pending: [number, CommMsg | CommAbortMsg, Part[]][] = [];
  let scheduled = false;
  const pump = () => {
    scheduled = false;
    for (const [to, msg, parts] of pending.splice(0)) groups[to]!.incoming(msg, parts);
  };
  for (const id of [0, 1]) {
    groups.push(
      new CommGroups(
        (msg, parts) => {
          // Copies, as a transport does: the value codec reuses its output buffer.
          const own = parts.map((p) => ({ body: Buffer.from(p.body), frames: p.frames.map((f) => Buffer.from(f)) }));
          const targets = msg.type === "comm" ? [msg.to] : msg.to;
          for (const to of targets) pending.push([to, msg.type === "comm" ? msg : { ...msg, to: [to] }, own]);
          if (!scheduled) {
            scheduled = true;
            setImmediate(pump);
          }
        },
        () => id,
      ),
    );
  }
  return { groups };
}

describe("engine.comm messages delivered several at a time", () => {
  it(
    "rank 0 handles a call check before the messages read after it: its next call fails, not completes",
    { timeout: 2_000 },
    async () => {
      const { groups } = pair();
      const group = { g: "g1", ranks: [0, 1] };
      const task = new AbortController();
      const comms = groups.map((gr) => new Collectives(gr.open(group, task.signal).wire!));
      const programs = [
        async (c: Collectives) => {
          await c.bcast("x", { root: 0 }); // the root waits for nobody: returns at once
          await c.barrier({ timeout: 1_000 });
        },
        async (c: Collectives) => {
          await c.reduce(1, "sum", { root: 0 }); // a non-root reduce only sends
          await c.barrier({ timeout: 1_000 });
        },
      ];
      const out = await Promise.allSettled(comms.map((c, r) => programs[r]!(c)));
      for (const c of comms) c.close();
      // Rank 0 reads rank 1's check, then its barrier message, in one go: the mismatch must win.
      // (Rank 1 may complete its barrier on rank 0's message, sent before rank 0 saw the check; it
      // learns of the mismatch at its next call.)
      expect(out[0]!.status).toBe("rejected");
      expect((out[0] as PromiseRejectedResult).reason).toBeInstanceOf(CommMismatchError);
    },
  );
});
