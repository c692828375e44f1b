import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import {
  CommPeerLostError,
  CommTimeoutError,
  MessageTooLargeError,
  type CommAbortMsg,
  type CommMsg,
  type Part,
} from "@ptcluster/protocol";
import { CommGroups } from "../../packages/engine/src/comm/group.js";

/**
 * The executor's mailboxes of three engines (ids 10, 20, 30), wired through an in-process relay
 * that, like the controller, routes by engine id and keeps each pair's order.
 */
function engines(hold = false) {
  const held: Array<() => void> = [];
  const byId = new Map<number, CommGroups>();
  const relay = (msg: CommMsg | CommAbortMsg, parts: Part[]) => {
    const deliver = () => {
      if (msg.type === "comm") byId.get(msg.to)?.incoming(msg, parts);
      else for (const id of msg.to) byId.get(id)?.incoming({ ...msg, to: [id] }, []);
    };
    if (hold) held.push(deliver);
    else queueMicrotask(deliver);
  };
  for (const id of [10, 20, 30]) byId.set(id, new CommGroups(relay, () => id));
  const at = (id: number) => byId.get(id) as CommGroups;
  return { at, release: () => held.splice(0).forEach((d) => d()) };
}
// Each open is a task of its own, with its own signal (as in the executor).
const signal = (): AbortSignal => new AbortController().signal;
const group = (g: string, ranks = [10, 20, 30]) => ({ g, ranks });

describe("CommGroups (the executor's mailboxes)", () => {
  it("a group's task-abort listener goes when its task ends", () => {
    const net = engines();
    const shared = new AbortController().signal;
    for (let i = 0; i < 20; i++)
      net
        .at(10)
        .open(group(`t${i}`), shared)
        .close();
    expect(getEventListeners(shared, "abort")).toHaveLength(0);
  });

  it("keeps messages that arrive before the task starts; per source and channel FIFO, any-source in arrival order", async () => {
    const net = engines(true);
    const w0 = net.at(10).open(group("g1"), signal()).wire!;
    const w2 = net.at(30).open(group("g1"), signal()).wire!;
    await w0.send(1, "u:0", "a1");
    await w2.send(1, "u:0", "c1");
    await w0.send(1, "u:0", "a2");
    await w0.send(1, "u:x", "other tag");
    net.release(); // all delivered before rank 1's task exists
    const w1 = net.at(20).open(group("g1"), signal()).wire!;
    expect(w1.rank).toBe(1);
    expect((await w1.recv(0, "u:0")).value).toBe("a1");
    expect(await w1.recvAny("u:0")).toMatchObject({ value: "c1", source: 2 });
    expect(await w1.recvAny("u:0")).toMatchObject({ value: "a2", source: 0 });
    expect((await w1.recv(0, "u:x")).value).toBe("other tag");
    await expect(w1.recvAny("u:0", { timeout: 10 })).rejects.toBeInstanceOf(CommTimeoutError);
  });

  it("drops messages for a group whose task ended, and never mixes groups", async () => {
    const net = engines();
    const a = net.at(20).open(group("A"), signal());
    const b = net.at(20).open(group("B"), signal());
    const fromA = net.at(10).open(group("A"), signal()).wire!;
    const fromB = net.at(10).open(group("B"), signal()).wire!;
    await fromB.send(1, "u:0", "for B");
    await fromA.send(1, "u:0", "for A");
    expect((await b.wire!.recvAny("u:0")).value).toBe("for B");
    expect((await a.wire!.recvAny("u:0")).value).toBe("for A");
    a.close();
    await fromA.send(1, "u:0", "late");
    await new Promise((r) => setTimeout(r, 5));
    // A second task of group A here (it cannot happen, but if it did) finds nothing left over.
    const again = net.at(20).open(group("A"), signal()).wire!;
    await expect(again.recvAny("u:0", { timeout: 10 })).rejects.toBeInstanceOf(CommTimeoutError);
  });

  it("an engine gone fails the waiting and later calls of groups with it, and groups opened later; back again, it is usable", async () => {
    const net = engines();
    const w0 = net.at(10).open(group("g"), signal()).wire!;
    const other = net.at(10).open(group("h", [10, 20]), signal()).wire!;
    const waiting = w0.recv(2, "u:0");
    net.at(10).incoming({ type: "peer_state", id: 30, up: false, reason: "process exited" }, []);
    await expect(waiting).rejects.toThrow(/Engine 30 \(rank 2 of this call's 3\) is gone \(process exited\)/);
    await expect(w0.send(1, "u:0", 1)).rejects.toBeInstanceOf(CommPeerLostError);
    // A group without engine 30 is untouched.
    const sent = other.send(1, "u:0", "fine");
    await expect(sent).resolves.toBeUndefined();
    await expect(net.at(10).open(group("later"), signal()).wire!.recv(1, "u:0")).rejects.toBeInstanceOf(
      CommPeerLostError,
    );
    net.at(10).incoming({ type: "peer_state", id: 30, up: true, reason: "registered" }, []);
    await expect(
      net.at(10).open(group("after"), signal()).wire!.recv(1, "u:0", { timeout: 10 }),
    ).rejects.toBeInstanceOf(CommTimeoutError);
  });

  it("abort fails the group on every member, and a failed task aborts its group once", async () => {
    const net = engines();
    const w1 = net.at(20).open(group("g"), signal()).wire!;
    const pending = w1.recv(0, "c:1");
    const r0 = net.at(10).open(group("g"), signal());
    r0.failed(new RangeError("boom"));
    await expect(pending).rejects.toThrow(/Rank 0 \(engine 10\) of this call failed \(RangeError: boom\)/);
    await expect(r0.wire!.recv(1, "u:0")).rejects.toBeInstanceOf(CommPeerLostError);
  });

  it("refuses at send a message larger than the cluster's limit (it would be lost on the way)", async () => {
    const groups = new CommGroups(
      () => undefined,
      () => 10,
      1_000,
    );
    const wire = groups.open(group("big", [10, 20]), signal()).wire!;
    await expect(wire.send(1, "u:0", new Uint8Array(2_000))).rejects.toBeInstanceOf(MessageTooLargeError);
    await expect(wire.send(1, "u:0", new Uint8Array(100))).resolves.toBeUndefined();
  });

  it("keeps at most 256 groups that have messages but no task yet, dropping the oldest", async () => {
    const net = engines();
    const sender = (g: string) => net.at(10).open(group(g, [10, 20]), signal()).wire!;
    for (let i = 0; i < 300; i++) await sender(`g${i}`).send(1, "u:0", i);
    await new Promise((r) => setTimeout(r, 5));
    const oldest = net.at(20).open(group("g0", [10, 20]), signal()).wire!;
    await expect(oldest.recv(0, "u:0", { timeout: 10 })).rejects.toBeInstanceOf(CommTimeoutError);
    const newest = net.at(20).open(group("g299", [10, 20]), signal()).wire!;
    expect((await newest.recv(0, "u:0")).value).toBe(299);
  });
});
