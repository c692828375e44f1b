import { describe, expect, it } from "vitest";
import { MessageTooLargeError, RemoteError } from "@ptcluster/client";
import { profilePaths } from "@ptcluster/protocol";
import { useCluster } from "./helpers/cluster.js";
import { RawPeer } from "./helpers/raw-peer.js";

// Messages above the cluster's limit are refused before they are sent, with the limit in the message.
describe("message size limits", () => {
  const ctx = useCluster({ n: 2, extra: ["--max-message-mb", "1"] });

  it("the limit travels in the connection file", () => {
    expect(ctx.rc.maxMessageBytes).toBe(1 << 20);
  });

  it("a push, an argument or a map chunk above the limit fails before anything is sent; the client stays usable", async () => {
    const big = new Uint8Array(2 << 20);
    let thrown: unknown;
    try {
      void ctx.rc.view().push({ big });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(MessageTooLargeError);
    expect((thrown as MessageTooLargeError).code).toBe("ERR_PTC_MESSAGE_TOO_LARGE");
    expect((thrown as MessageTooLargeError).limit).toBe(1 << 20);
    expect((thrown as Error).message).toMatch(/limit of 1\.0 MiB/);
    expect(() => ctx.rc.loadBalancedView().apply((b: Uint8Array) => b.length, big)).toThrow(MessageTooLargeError);
    const chunked = await ctx.rc
      .loadBalancedView()
      .map((b: Uint8Array) => b.length, [big], { chunkSize: 1 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(chunked).toBeInstanceOf(MessageTooLargeError);
    // Many small tasks whose total is over the limit travel in several messages instead.
    const parts = Array.from({ length: 8 }, () => new Uint8Array(300 << 10));
    expect(await ctx.rc.loadBalancedView().map((b: Uint8Array) => b.length, parts, { chunkSize: 1 })).toEqual(
      Array(8).fill(300 << 10),
    );
    expect(await ctx.rc.view().applySync(() => "still fine")).toEqual(["still fine", "still fine"]);
  });

  it("a result above the limit fails on the engine with the sizes, instead of being sent", async () => {
    const err = await ctx.rc
      .engine(0)
      .apply(() => new Uint8Array(3 << 20))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).remoteCode).toBe("ERR_PTC_MESSAGE_TOO_LARGE");
    expect((err as Error).message).toMatch(/The result is 3\.0 MiB, more than the cluster's limit of 1\.0 MiB/);
    expect(await ctx.rc.engine(0).apply(() => engine.id)).toBe(0);
  });

  it("a peer that sends a frame above the limit, key or not, is cut off before the frame is buffered; the cluster keeps serving", async () => {
    const peer = RawPeer.forClientFile(profilePaths("default").clientFile);
    await peer.sendRaw([Buffer.from("ptc1"), Buffer.alloc(40), Buffer.alloc(3 << 20)]);
    peer.dealer.close();
    const s = await ctx.rc.status();
    expect(s.dropped.client.malformed).toBe(0);
    expect(s.dropped.client.badMac).toBe(0);
    expect(await ctx.rc.view().applySync(() => engine.id)).toEqual([0, 1]);
  });
});
