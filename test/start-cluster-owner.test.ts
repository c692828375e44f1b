import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@ptcluster/client";
import { ptcluster, tempClusterDir } from "./helpers/cluster.js";
import { jsonLines } from "./helpers/json-lines.js";
import { processesUsing, running, waitExited, waitFor } from "./helpers/wait.js";

// A cluster started by startCluster() ends with the process that started it (its owner), however
// that process ends: SIGINT, SIGTERM, process.exit(), an uncaught error or unhandled rejection,
// its last line, even SIGKILL. Its controller and engines are gone within a few seconds, and the
// owner ends exactly as it would have without a cluster (same signal, same exit code). With
// `detached: true` the cluster outlives its owner. Each case is a real script, test/fixtures/cluster-owner.ts.

const root = fileURLToPath(new URL("..", import.meta.url));
/** How long after its owner ended a cluster's processes may take to be gone (ms). */
const GONE_WITHIN_MS = 5_000;

type Line = { clusterId?: string; pids?: number[]; ready?: boolean; afterSigint?: string[] };

const tmp = tempClusterDir();

/** Runs the fixture in its own Node process (no tsx parent: the script's process is the owner). */
function owner(how: string, dir = tmp.dir) {
  const child = execa(process.execPath, ["--import", "tsx", "test/fixtures/cluster-owner.ts", how], {
    cwd: root,
    env: { PTCLUSTER_DIR: dir },
    reject: false,
    timeout: 60_000,
    stdin: "ignore",
    buffer: { stdout: false },
  });
  /** `next(key)` resolves once the script printed a line with `key`; rejects if it ended first. */
  const { lines, next } = jsonLines<Line>(child);
  /** Every process of the clusters the script started: controllers and engines. */
  const pids = () => lines.flatMap((l) => l.pids ?? []);
  return { child, lines, next, pids };
}

/**
 * Starts the script, waits until it holds its clusters, ends it with `end` (or lets it end by
 * itself), and returns how it ended and its clusters' pids.
 */
async function endOwner(how: string, end?: (pid: number) => void) {
  const o = owner(how);
  await o.next("ready");
  const pids = o.pids();
  if (end) {
    expect(running(pids)).toEqual(pids);
    end(o.child.pid!);
  }
  const r = await o.child;
  return { r, pids, o };
}

describe.concurrent("a cluster of startCluster() ends with the process that started it", () => {
  afterAll(async () => {
    const left = processesUsing(tmp.dir);
    if (left.length) await ptcluster(tmp.dir, ["stop", "--all"]);
    tmp.cleanup();
    expect(left).toEqual([]);
  });

  it("SIGINT: both clusters of the script are gone within 5 s, and the script ends by SIGINT", async () => {
    const { r, pids, o } = await endOwner("two", (pid) => process.kill(pid, "SIGINT"));
    expect(o.lines.filter((l) => l.pids)).toHaveLength(2);
    expect(pids).toHaveLength(5); // two controllers, 2 + 1 engines
    expect(r.signal, r.stderr).toBe("SIGINT");
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("SIGTERM: gone within 5 s, and the script ends by SIGTERM", async () => {
    const { r, pids } = await endOwner("wait", (pid) => process.kill(pid, "SIGTERM"));
    expect(r.signal, r.stderr).toBe("SIGTERM");
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("process.exit(0) inside the `await using` scope: gone within 5 s, exit code 0", async () => {
    const { r, pids } = await endOwner("exit");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("an uncaught error: gone within 5 s, and the script fails as Node makes it (exit code 1, the error on stderr)", async () => {
    const { r, pids } = await endOwner("throw");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("uncaught in the owner");
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("an unhandled rejection: gone within 5 s, exit code 1", async () => {
    const { r, pids } = await endOwner("reject");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("unhandled in the owner");
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("a script that never stops its cluster still ends after its last line (the link does not hold it), and the cluster with it", async () => {
    const { r, pids } = await endOwner("end");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("SIGKILL (no code of the script runs): the controller and engines notice and are gone within 5 s", async () => {
    const { r, pids } = await endOwner("wait", (pid) => process.kill(pid, "SIGKILL"));
    expect(r.signal).toBe("SIGKILL");
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("SIGKILL while startCluster() is still starting: the controller and the engines it was launching are gone within 5 s", async () => {
    // A PTCLUSTER_DIR of its own: every process under it is this cluster's.
    const own = mkdtempSync(join(tmpdir(), "ptc-owner-"));
    try {
      const o = owner("wait", own);
      const run = join(own, "profile_default", "run");
      // The controller is up (its state file says so) and launching engines; the script still awaits startCluster().
      await waitFor(() => existsSync(run) && readdirSync(run).some((f) => f.endsWith(".json")), {
        what: "the controller's state file",
        timeout: 20_000,
      });
      expect(o.lines).toEqual([]);
      process.kill(o.child.pid!, "SIGKILL");
      expect((await o.child).signal).toBe("SIGKILL");
      await waitFor(() => processesUsing(own).length === 0, {
        what: "no process of the cluster",
        timeout: GONE_WITHIN_MS,
      });
      expect(readdirSync(run)).toEqual([]);
    } finally {
      if (processesUsing(own).length) await ptcluster(own, ["stop", "--all"]);
      rmSync(own, { recursive: true, force: true });
    }
  });

  it("the user's own SIGINT handler decides: the cluster stays up and serves, then stops when the scope ends", async () => {
    const o = owner("own-handler");
    await o.next("ready");
    const pids = o.pids();
    process.kill(o.child.pid!, "SIGINT");
    await o.next("afterSigint");
    expect(o.lines.find((l) => l.afterSigint)?.afterSigint).toEqual(["still up", "still up"]);
    const r = await o.child;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });

  it("detached: true, then SIGKILL of the script: the cluster stays up and serves; `ptcluster stop` stops it", async () => {
    const { r, pids, o } = await endOwner("detached", (pid) => process.kill(pid, "SIGKILL"));
    expect(r.signal).toBe("SIGKILL");
    const clusterId = o.lines.find((l) => l.clusterId)!.clusterId!;
    const [controller] = pids as [number];
    // Nothing ties it to the script: no pipe to follow (stdin is /dev/null, as `ptcluster start`'s).
    expect(readlinkSync(`/proc/${controller}/fd/0`)).toBe("/dev/null");
    const rc = await connect({ clusterId });
    expect(await rc.view().applySync(() => process.pid)).toEqual(pids.slice(1));
    await rc.close();
    expect(running(pids)).toEqual(pids);
    const stop = await ptcluster(tmp.dir, ["stop", "--cluster-id", clusterId]);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(await waitExited(pids, GONE_WITHIN_MS)).toEqual([]);
  });
});
