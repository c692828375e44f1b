import { describe, expect, it } from "vitest";
import * as zmq from "zeromq";
import { randomBytes } from "node:crypto";
import { VersionMismatchError, connect } from "@ptcluster/client";
import {
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  Signer,
  TAG,
  Verifier,
  decodeBody,
  encodeBody,
  endpoint,
  profilePaths,
  readConnectionFile,
  type Message,
} from "@ptcluster/protocol";
import { useCluster } from "./helpers/cluster.js";
import { RawPeer, standInController } from "./helpers/raw-peer.js";

// Registration and connection carry the protocol version; a different major version is refused
// with an error that says which side to upgrade.
describe("version handshake", () => {
  const ctx = useCluster({ n: 1 });

  it("the controller refuses a client of another major version, naming the side to upgrade", async () => {
    for (const [v, side] of [
      ["99.0", "controller"],
      ["0.1", "client"],
    ] as const) {
      const peer = RawPeer.forClientFile(profilePaths("default").clientFile);
      await peer.send({ type: "connect", v, pkg: "9.9.9", pid: process.pid, host: "old-or-new" });
      const { header } = await peer.receiveType("connect_reply");
      expect(header.ok).toBe(false);
      expect(header.error?.code).toBe("ERR_PTC_VERSION");
      expect(header.error?.message).toContain(`Upgrade the ${side}`);
      await peer.close();
    }
    expect(await ctx.rc.view().applySync(() => "fine")).toEqual(["fine"]);
  });

  it("the controller refuses an engine of another major version", async () => {
    const info = readConnectionFile(profilePaths("default").engineFile, "engine");
    const key = Buffer.from(info.key, "hex");
    const uuid = randomBytes(16).toString("hex");
    const dealer = new zmq.Dealer({ routingId: uuid, linger: 0, receiveTimeout: 5_000 });
    dealer.connect(endpoint(info.host, info.port));
    const body = encodeBody(
      {
        type: "register",
        v: "99.0",
        pkg: "9.9.9",
        uuid,
        host: "future",
        pid: 1,
        node: process.version,
        concurrency: 1,
      },
      undefined,
    );
    await dealer.send([TAG, new Signer(key).sign("e2h", undefined, body), ...body]);
    const frames = (await dealer.receive()) as Buffer[];
    expect(new Verifier(key).verify("h2e", Buffer.from(uuid), frames[1] as Buffer, frames.slice(2))).toBe("ok");
    const { header } = decodeBody(frames, 2);
    expect(header).toMatchObject({ type: "register_reply", ok: false, error: { code: "ERR_PTC_VERSION" } });
    expect((header as Extract<Message, { type: "register_reply" }>).error?.message).toContain("Upgrade the controller");
    dealer.close();
    expect(ctx.rc.ids).toEqual([0]);
  });

  it("a client told so by the controller rejects with VersionMismatchError", async () => {
    // A stand-in controller of a future major version, speaking the protocol correctly otherwise.
    const { key, router, file, close } = await standInController(ctx.dir, "future", "99.0");
    const signer = new Signer(key);
    const serving = (async () => {
      const [from] = (await router.receive()) as Buffer[];
      const reply = encodeBody(
        {
          type: "connect_reply",
          ok: false,
          v: "99.0",
          pkg: "99.0.0",
          clusterId: "",
          engines: [],
          heartbeatMs: 500,
          error: {
            code: "ERR_PTC_VERSION",
            message: `The client speaks protocol ${PROTOCOL_VERSION} (ptcluster ${PACKAGE_VERSION}) and the controller 99.0 (ptcluster 99.0.0). Upgrade the client.`,
          },
        },
        undefined,
      );
      await router.send([from as Buffer, TAG, signer.sign("h2c", from, reply), ...reply]);
    })();
    const err = await connect({ file, timeout: 5_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await serving;
    close();
    expect(err).toBeInstanceOf(VersionMismatchError);
    expect((err as VersionMismatchError).code).toBe("ERR_PTC_VERSION");
    expect((err as VersionMismatchError).remoteVersion).toBe("99.0");
    expect((err as Error).message).toContain("Upgrade the client");
  });
});
