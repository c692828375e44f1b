/**
 * Engines and the controller start with glibc's huge-pages tunable (launchers/malloc-tunables.ts),
 * merged with the user's own GLIBC_TUNABLES (theirs last, so theirs wins), and not at all with
 * PTCLUSTER_HUGEPAGES=0.
 */
import { afterEach, describe, expect, it } from "vitest";
import { execa } from "execa";
import { readFileSync } from "node:fs";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";
import { tunablesShellPrefix } from "../packages/cli/dist/launchers/malloc-tunables.js";

const USER = "glibc.malloc.mmap_threshold=4194304";

/**
 * What the process itself sees. (/proc/<pid>/environ is no witness here: glibc parses the variable
 * in place, cutting it after the first entry there, and gives the process a copy.)
 */
async function tunablesOf(c: TestCluster): Promise<Array<string | null>> {
  const rc = await c.connect();
  try {
    return await rc.view().applySync(() => process.env["GLIBC_TUNABLES"] ?? null);
  } finally {
    await rc.close();
  }
}

function controllerSees(pid: number): string | undefined {
  const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  return env.find((v) => v.startsWith("GLIBC_TUNABLES="));
}

describe("huge pages for spawned processes", () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  it("local engines and the controller get the tunable before the user's own", async () => {
    const t = tempClusterDir();
    cleanup = t.cleanup;
    const c = await startTestCluster(t.dir, { n: 1, env: { GLIBC_TUNABLES: USER } });
    try {
      expect(await tunablesOf(c)).toEqual([`glibc.malloc.hugetlb=1:${USER}`]);
      expect(controllerSees(c.controllerPid)).toMatch(/^GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1/);
    } finally {
      await c.stop();
    }
  });

  it("PTCLUSTER_HUGEPAGES=0 leaves the environment as it is", async () => {
    const t = tempClusterDir();
    cleanup = t.cleanup;
    const c = await startTestCluster(t.dir, { n: 1, env: { PTCLUSTER_HUGEPAGES: "0" } });
    try {
      expect(await tunablesOf(c)).toEqual([null]);
      expect(controllerSees(c.controllerPid)).toBeUndefined();
    } finally {
      await c.stop();
    }
  });

  it("on another host (ssh, Slurm) the remote shell merges it with the tunables set there", async () => {
    const run = (env: Record<string, string>) =>
      execa("sh", ["-c", `${tunablesShellPrefix({})}exec printenv GLIBC_TUNABLES`], { env, extendEnv: false });
    expect((await run({})).stdout).toBe("glibc.malloc.hugetlb=1");
    expect((await run({ GLIBC_TUNABLES: USER })).stdout).toBe(`glibc.malloc.hugetlb=1:${USER}`);
    expect(tunablesShellPrefix({ PTCLUSTER_HUGEPAGES: "0" })).toBe("");
  });
});
