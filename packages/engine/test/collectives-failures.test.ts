import { describe, expect, it } from "vitest";
import {
  CommCancelledError,
  CommMismatchError,
  CommPeerLostError,
  CommTimeoutError,
  CommUsageError,
} from "@ptcluster/protocol";
import { Collectives } from "../src/comm/collectives.js";
import { Fabric } from "./comm-fabric.js";

// Each test has a short vitest timeout: a hang fails the test rather than passing it.
const NO_HANG = { timeout: 2_000 };

/** Runs one program per rank; resolves with each rank's outcome. */
async function run(fabric: Fabric, programs: ((comm: Collectives) => Promise<unknown>)[]) {
  const comms = fabric.wires.map((w) => new Collectives(w));
  try {
    return await Promise.allSettled(comms.map((c, r) => programs[r]!(c)));
  } finally {
    for (const c of comms) c.close();
  }
}

function rejectedWith(outcome: PromiseSettledResult<unknown>): unknown {
  expect(outcome.status).toBe("rejected");
  return (outcome as PromiseRejectedResult).reason;
}

describe("collectives called differently by two ranks", () => {
  it(
    "reduce on rank 0 and bcast on rank 1, each waiting on the other with no message in flight: both fail",
    NO_HANG,
    async () => {
      const fabric = new Fabric(2, { shuffle: true });
      const out = await run(fabric, [(c) => c.reduce(1, "sum", { root: 0 }), (c) => c.bcast(undefined, { root: 0 })]);
      for (const o of out) {
        const error = rejectedWith(o);
        expect(error).toBeInstanceOf(CommMismatchError);
        expect((error as Error).message).toMatch(/reduce \(root 0\)/);
        expect((error as Error).message).toMatch(/bcast \(root 0\)/);
        expect((error as Error).message).toMatch(/rank 0.*rank 1|rank 1.*rank 0/);
      }
    },
  );

  it("a message of another collective is refused by its receiver, which aborts the group", NO_HANG, async () => {
    // Rank 0 is played by hand (no check at rank 0): only the receiver's own check can see this.
    const fabric = new Fabric(2);
    await fabric.wires[0]!.send(1, "c:0", 7, { op: "reduce", root: 1 });
    const comm = new Collectives(fabric.wires[1]!);
    const error = await comm.bcast(undefined, { root: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommMismatchError);
    expect((error as Error).message).toBe(
      "Collective #0 was called differently: rank 1 called bcast (root 0), rank 0 called reduce (root 1). " +
        "Every rank must call the same collectives, in the same order, with the same root.",
    );
    expect(fabric.abortError?.code).toBe("ERR_PTC_COMM_MISMATCH");
    comm.close();
  });

  it("bcast with different roots: every rank's program fails, none hangs", NO_HANG, async () => {
    // Ranks 0 and 1 agree on root 0 and finish their bcast; rank 2 waits for root 1's tree,
    // which nobody sends: only the check at rank 0 can see it.
    const fabric = new Fabric(3, { shuffle: true });
    const program = (root: number) => async (c: Collectives) => {
      await c.bcast(c.rank === root ? "x" : undefined, { root });
      await c.barrier();
    };
    const out = await run(fabric, [program(0), program(0), program(1)]);
    for (const o of out) expect(rejectedWith(o)).toBeInstanceOf(CommMismatchError);
    expect((await fabric.whenAborted()).message).toMatch(/bcast \(root 0\).*bcast \(root 1\)/);
  });

  it(
    "bcast on rank 0 and reduce on rank 1 (root 0), where neither waits: the group is aborted, the next call fails",
    NO_HANG,
    async () => {
      const fabric = new Fabric(2, { shuffle: true });
      const comms = fabric.wires.map((w) => new Collectives(w));
      // Neither call receives anything, so both may return before the mismatch is known.
      await Promise.allSettled([comms[0]!.bcast("v", { root: 0 }), comms[1]!.reduce(1, "sum", { root: 0 })]);
      const error = await fabric.whenAborted();
      expect(error.code).toBe("ERR_PTC_COMM_MISMATCH");
      expect(error.message).toMatch(/Collective #0 .*rank 0 called bcast \(root 0\), rank 1 called reduce \(root 0\)/);
      const next = await Promise.allSettled(comms.map((c) => c.barrier()));
      for (const o of next) expect(rejectedWith(o)).toBeInstanceOf(CommMismatchError);
      for (const c of comms) c.close();
    },
  );

  it("typed arrays of different lengths in allreduce fail every rank with CommUsageError", NO_HANG, async () => {
    const fabric = new Fabric(3, { shuffle: true });
    const out = await run(fabric, [
      (c) => c.allreduce(new Float64Array(4), "sum"),
      (c) => c.allreduce(new Float64Array(4), "sum"),
      (c) => c.allreduce(new Float64Array(5), "sum"),
    ]);
    for (const o of out) {
      const error = rejectedWith(o);
      expect(error).toBeInstanceOf(CommUsageError);
      expect((error as Error).message).toMatch(
        /Float64Array\[4\].*Float64Array\[5\]|Float64Array\[5\].*Float64Array\[4\]/,
      );
    }
  });

  it("large arrays on different sides of the ring threshold fail rather than hang", NO_HANG, async () => {
    const fabric = new Fabric(4, { shuffle: true });
    const sizes = [1 << 14, 1 << 14, 1 << 14, 16];
    const out = await run(
      fabric,
      sizes.map((n) => (c: Collectives) => c.allreduce(new Float64Array(n), "sum")),
    );
    for (const o of out) expect(rejectedWith(o)).toBeInstanceOf(CommUsageError);
  });
});

describe("timeouts, signals and usage errors", () => {
  it("times out when a rank never calls, the timeout covering the whole call", NO_HANG, async () => {
    const fabric = new Fabric(3, { shuffle: true });
    const comms = fabric.wires.map((w) => new Collectives(w));
    const started = Date.now();
    const out = await Promise.allSettled([
      comms[0]!.allreduce(1, "sum", { timeout: 80 }),
      comms[1]!.allreduce(2, "sum", { timeout: 80 }),
    ]);
    const elapsed = Date.now() - started;
    for (const o of out) {
      const error = rejectedWith(o);
      expect(error).toBeInstanceOf(CommTimeoutError);
      expect((error as Error).message).toMatch(
        /collective #0\) on rank \d did not complete within its timeout of 80 ms/,
      );
    }
    expect(elapsed).toBeGreaterThanOrEqual(75);
    expect(elapsed).toBeLessThan(1_000);
    for (const c of comms) c.close();
  });

  it("withdraws the call when its signal aborts, and refuses an aborted signal at once", NO_HANG, async () => {
    const fabric = new Fabric(2);
    const comms = fabric.wires.map((w) => new Collectives(w));
    const ac = new AbortController();
    const pending = comms[0]!.gather("x", { root: 0, signal: ac.signal });
    setImmediate(() => ac.abort());
    await expect(pending).rejects.toBeInstanceOf(CommCancelledError);
    await expect(comms[1]!.barrier({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CommCancelledError);
    for (const c of comms) c.close();
  });

  it(
    "a bad root, a scatter of the wrong length, or a sum of strings fails every rank's program with CommUsageError",
    NO_HANG,
    async () => {
      // The ranks whose own call looks right may finish it before the bad one is seen (a bcast's
      // root waits for nobody); the group is aborted, so their next call fails.
      const cases: ((c: Collectives) => Promise<unknown>)[] = [
        (c) => c.bcast(1, { root: c.rank === 1 ? 3 : 0 }),
        (c) => c.scatter(c.rank === 0 ? [1, 2] : undefined, { root: 0 }),
        (c) => c.allreduce(c.rank === 2 ? "three" : 3, "sum"),
        (c) => c.alltoall(c.rank === 0 ? [1] : [1, 2, 3]),
      ];
      for (const bad of cases) {
        const program = async (c: Collectives): Promise<void> => {
          await bad(c);
          await c.barrier();
        };
        const fabric = new Fabric(3, { shuffle: true });
        const out = await run(fabric, [program, program, program]);
        for (const o of out) expect(rejectedWith(o)).toBeInstanceOf(CommUsageError);
        expect(fabric.abortError?.message).toMatch(/expected|combines/);
      }
    },
  );

  it("an operator that throws on one rank rethrows there and ends the call of the others", NO_HANG, async () => {
    const fabric = new Fabric(4, { shuffle: true });
    const boom = new RangeError("no negative parts");
    const op = (a: number, b: number): number => {
      if (b < 0) throw boom;
      return a + b;
    };
    const out = await run(
      fabric,
      [0, 1, 2, 3].map((r) => (c: Collectives) => c.allreduce(r === 1 ? -1 : r, op)),
    );
    const errors = out.map(rejectedWith);
    // Both ranks of the pair that combines rank 1's -1 may run the operator on it (in either
    // order of arrival): each that did rethrows, and the others name whichever left first.
    const throwers = errors.flatMap((e, rank) => (e === boom ? [rank] : []));
    expect(throwers.length).toBeGreaterThanOrEqual(1);
    expect(throwers.every((r) => r === 0 || r === 1)).toBe(true);
    errors.forEach((e) => {
      if (e === boom) return;
      expect(e).toBeInstanceOf(CommPeerLostError);
      expect((e as Error).message).toMatch(
        new RegExp(
          `^Rank (${throwers.join("|")}) left allreduce \\(collective #0\\): its reduction operator threw RangeError: no negative parts`,
        ),
      );
    });
  });

  it("refuses an unknown operator and a negative timeout with the value received", async () => {
    const fabric = new Fabric(1);
    const c = new Collectives(fabric.wires[0]!);
    // @ts-expect-error not an operator
    await expect(c.allreduce(1, "avg")).rejects.toThrow(/got "avg"/);
    await expect(c.barrier({ timeout: -1 })).rejects.toThrow(/got -1 \(number\)/);
    c.close();
  });
});
