import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zmq from "zeromq";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AuthenticationError, HubLostError, connect, type Client } from "@ptcluster/client";
import { ensureProfileDirs, profilePaths, type ConnectionInfo, type CurveClientKeys } from "@ptcluster/protocol";
import { ptcluster, startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";

// `--curve`: every connection encrypted with CurveZMQ; only allow-listed public keys connect.
describe("CURVE encryption with an allow-list", () => {
  const tmp = tempClusterDir();
  // A key with `#` in it (a Z85 character): allowed_keys must not read it as a comment.
  let extra = zmq.curveKeyPair();
  while (!extra.publicKey.includes("#")) extra = zmq.curveKeyPair();
  let cluster: TestCluster;
  let rc: Client;
  const paths = profilePaths("default");

  /** A copy of the client connection file with other CURVE keys (or none), owner-only. */
  function clientFileWith(name: string, curve: CurveClientKeys | null): string {
    const info = JSON.parse(readFileSync(paths.clientFile, "utf8")) as ConnectionInfo;
    if (curve === null) delete info.curve;
    else info.curve = curve;
    const file = join(tmp.dir, name);
    writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
    return file;
  }

  beforeAll(async () => {
    ensureProfileDirs(paths);
    writeFileSync(paths.allowedKeysFile, `# another workstation\n${extra.publicKey}\n`, { mode: 0o600 });
    cluster = await startTestCluster(tmp.dir, { n: 2, extra: ["--curve"] });
    rc = await cluster.connect();
  });
  afterAll(async () => {
    await rc?.close();
    await cluster?.stop();
    tmp.cleanup();
  });

  it("the cluster works over CURVE; connection files carry the keys and are owner-only", async () => {
    expect(await rc.view().applySync(() => "secret")).toEqual(["secret", "secret"]);
    expect(await rc.loadBalancedView().map((x: number) => x * 2, [1, 2, 3])).toEqual([2, 4, 6]);
    for (const file of [paths.clientFile, paths.engineFile]) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const info = JSON.parse(readFileSync(file, "utf8")) as ConnectionInfo;
      expect(info.curve?.serverKey).toHaveLength(40);
      expect(info.curve?.secretKey).toHaveLength(40);
    }
  });

  it("a key listed in security/allowed_keys may connect; any other is refused with AuthenticationError, fast", async () => {
    const serverKey = rc.connection.curve!.serverKey;
    const allowed = await connect({ file: clientFileWith("allowed.json", { serverKey, ...extra }) });
    expect(await allowed.view().applySync(() => 1)).toEqual([1, 1]);
    await allowed.close();

    const t0 = Date.now();
    const stranger = zmq.curveKeyPair();
    const err = await connect({
      file: clientFileWith("stranger.json", { serverKey, ...stranger }),
      timeout: 10_000,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).code).toBe("ERR_PTC_AUTH");
    expect((err as Error).message).toMatch(/allow-list/);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(await rc.view().applySync(() => "still serving")).toEqual(["still serving", "still serving"]);
  });

  it("a client without CURVE keys cannot talk to a CURVE controller", async () => {
    const err = await connect({ file: clientFileWith("plain.json", null), timeout: 3_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Depending on timing libzmq reports the mechanism mismatch to the client (AuthenticationError
    // at once) or only drops the handshake (the connect times out: HubLostError); either way the
    // error says what to check.
    expect(err instanceof AuthenticationError ? "auth" : err instanceof HubLostError ? "timeout" : err).toMatch(
      /^(auth|timeout)$/,
    );
    expect((err as Error).message).toMatch(/--curve/);
    expect(await rc.view().applySync(() => 2)).toEqual([2, 2]);
  });

  it("binding a non-loopback address needs --curve or an explicit --no-encryption", async () => {
    const r = await ptcluster(tmp.dir, ["start", "-n", "0", "--ip", "0.0.0.0", "--profile", "exposed"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/reachable from the network\. Add --curve/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
