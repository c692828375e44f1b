import { describe, expect, it } from "vitest";
import { CommPeerLostError, CommTimeoutError } from "@ptcluster/protocol";
import { CommGroups } from "../src/comm/group.js";

/** Engine 0's groups, told that engine 1 is gone; nothing it sends goes anywhere. */
function engineZero(): CommGroups {
  const groups = new CommGroups(
    () => undefined,
    () => 0,
  );
  groups.incoming({ type: "peer_state", id: 1, up: false, reason: "missed 6 heartbeats" }, []);
  return groups;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe("a call that names a member this engine was told is gone", () => {
  it("fails its waits on that member with CommPeerLostError, within the grace period, not at their timeout", async () => {
    const groups = engineZero();
    const { wire, close } = groups.open({ g: "g1", ranks: [0, 1] }, new AbortController().signal);
    const t0 = Date.now();
    const err = await failure(wire!.recv(1, "u:0", { timeout: 10_000 }));
    expect(err).toBeInstanceOf(CommPeerLostError);
    expect(Date.now() - t0).toBeLessThan(2_000);
    close();
  });

  it("does not fail when the news that the member is back comes just after the call (the client heard it first)", async () => {
    const groups = engineZero();
    const { wire, close } = groups.open({ g: "g2", ranks: [0, 1] }, new AbortController().signal);
    setTimeout(() => groups.incoming({ type: "peer_state", id: 1, up: true, reason: "registered again" }, []), 20);
    // Nothing comes from rank 1 in this test: the wait ends at its own timeout, not as lost.
    const err = await failure(wire!.recv(1, "u:0", { timeout: 800 }));
    expect(err).toBeInstanceOf(CommTimeoutError);
    close();
  });
});
