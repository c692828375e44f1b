import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidOptionError, startCluster } from "@ptcluster/client";
import { profilePaths, readClusterState } from "@ptcluster/protocol";
import { ptcluster, tempClusterDir } from "./helpers/cluster.js";
import { processesUsing, running } from "./helpers/wait.js";

// startCluster() starts the controller through the declared entry point of @ptcluster/cli (an
// optional peer dependency of the client, imported at run time), with the options of the one
// table: checked before anything starts, handed to a daemonised controller that the command line
// sees and stops.

const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("startCluster() and the controller entry point", () => {
  let tmp: ReturnType<typeof tempClusterDir>;
  beforeAll(() => {
    tmp = tempClusterDir();
  });
  afterAll(async () => {
    const left = processesUsing(tmp.dir);
    if (left.length) await ptcluster(tmp.dir, ["stop", "--all"]);
    tmp.cleanup();
    expect(left).toEqual([]);
  });

  it("checks its options before anything starts, naming the option and quoting the value", async () => {
    const cases: Array<[object, string]> = [
      [{ concurrency: 0 }, "Expected `concurrency` to be a whole number of tasks, 1 or more, got `0` (number)"],
      [{ n: 1.5 }, "Expected `n` to be a whole number of engines, 0 or more, got `1.5` (number)"],
      [
        { scheme: "fastest" },
        "Expected `scheme` to be one of leastload, lru, random, weighted, got `fastest` (string)",
      ],
      [
        { maxMessageMb: 0 },
        "Expected `maxMessageMb` to be a number of MiB, above 0 and at most 4096, got `0` (number)",
      ],
      [{ foreground: true }, "Unknown startCluster option `foreground`."],
    ];
    for (const [options, message] of cases) {
      const err = await startCluster(options as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, message).toBeInstanceOf(InvalidOptionError);
      expect((err as Error).message).toContain(message);
    }
    expect(processesUsing(tmp.dir)).toEqual([]);
    expect(existsSync(join(tmp.dir, "profile_default"))).toBe(false);
  });

  it("starts a daemonised controller with the table's options, which `ptcluster list` shows; disposal stops it", async () => {
    let pids: number[] = [];
    {
      await using cluster = await startCluster({
        n: 1,
        clusterId: "entry",
        scheme: "lru",
        restart: false,
        maxMemory: 256,
        maxMessageMb: 2,
      });
      const state = readClusterState(profilePaths(cluster.profile, "entry").stateFile);
      expect(state?.state).toBe("running");
      const hubPid = state!.hubPid;
      pids = [hubPid, ...state!.enginePids];
      expect(running(pids)).toEqual(pids);
      // A daemon: a session of its own (detached), so it outlives this script's terminal.
      const stat = readFileSync(`/proc/${hubPid}/stat`, "utf8");
      const session = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
      expect(session).toBe(hubPid);
      // The options reached it: on its command line, and in what it tells clients.
      const cmdline = readFileSync(`/proc/${hubPid}/cmdline`, "utf8").split("\0");
      expect(cmdline).toEqual(
        expect.arrayContaining([
          "--scheme=lru",
          "--no-restart",
          "--max-memory=256",
          "--max-message-mb=2",
          "--cluster-id=entry",
        ]),
      );
      const rc = await cluster.connect();
      expect(rc.maxMessageBytes).toBe(2 << 20);
      const listed = await ptcluster(tmp.dir, ["list", "--json"]);
      expect(JSON.parse(listed.stdout)).toEqual([
        expect.objectContaining({
          profile: "default",
          clusterId: "entry",
          state: "running",
          controllerPid: hubPid,
          engines: 1,
        }),
      ]);
    }
    expect(running(pids)).toEqual([]);
    expect(processesUsing(tmp.dir)).toEqual([]);
  });

  it("without @ptcluster/cli installed, rejects with a MissingPeerError that says what to install, before anything starts", async () => {
    // An install of the client alone: its package and its dependencies, no @ptcluster/cli.
    const app = join(tmp.dir, "app");
    const mods = join(app, "node_modules");
    mkdirSync(join(mods, "@ptcluster", "client"), { recursive: true });
    cpSync(join(ROOT, "packages/client/package.json"), join(mods, "@ptcluster/client/package.json"));
    cpSync(join(ROOT, "packages/client/dist"), join(mods, "@ptcluster/client/dist"), { recursive: true });
    symlinkSync(join(ROOT, "packages/protocol"), join(mods, "@ptcluster/protocol"));
    const client = JSON.parse(readFileSync(join(ROOT, "packages/client/package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    for (const dep of Object.keys(client.dependencies).filter((d) => !d.startsWith("@ptcluster/")))
      symlinkSync(join(ROOT, "node_modules", dep), join(mods, dep));
    expect(client.peerDependenciesMeta?.["@ptcluster/cli"]?.optional).toBe(true);
    writeFileSync(
      join(app, "main.mjs"),
      `import { startCluster } from "@ptcluster/client";
      const e = await startCluster({ n: 1 }).then(() => undefined, (e) => e);
      process.stdout.write(JSON.stringify({ name: e?.name, code: e?.code, peer: e?.peer, message: e?.message, start: e?.code && e instanceof (await import("@ptcluster/client")).ClusterStartError }));`,
    );
    const r = await execa(process.execPath, [join(app, "main.mjs")], {
      cwd: app,
      env: { PTCLUSTER_DIR: tmp.dir },
      reject: false,
      timeout: 20_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { name: string; code: string; peer: string; message: string; start: boolean };
    expect(out).toMatchObject({
      name: "MissingPeerError",
      code: "ERR_PTC_MISSING_PEER",
      peer: "@ptcluster/cli",
      start: true,
    });
    expect(out.message).toContain("npm install @ptcluster/cli");

    // A @ptcluster/cli too old to have the entry point: named as such.
    mkdirSync(join(mods, "@ptcluster", "cli"));
    writeFileSync(
      join(mods, "@ptcluster/cli/package.json"),
      JSON.stringify({ name: "@ptcluster/cli", type: "module", exports: { "./bin": "./bin.js" } }),
    );
    const old = await execa(process.execPath, [join(app, "main.mjs")], {
      cwd: app,
      env: { PTCLUSTER_DIR: tmp.dir },
      reject: false,
      timeout: 20_000,
    });
    expect(old.exitCode, old.stderr).toBe(0);
    expect(JSON.parse(old.stdout)).toMatchObject({
      name: "MissingPeerError",
      code: "ERR_PTC_MISSING_PEER",
      message: expect.stringContaining("is too old"),
    });
    expect(processesUsing(tmp.dir)).toEqual([]);
  });
});
