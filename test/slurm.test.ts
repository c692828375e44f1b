/**
 * The slurm launcher against a real single-node Slurm (munged, slurmctld and slurmd started as
 * root by helpers/slurm.ts): engines run as the tasks of batch jobs, the controller follows the
 * jobs in the queue, and stopping (with or without the controller) cancels them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@ptcluster/client";
import { connect } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";
import { batchScript, parseJobId, sbatchArgs } from "../packages/cli/dist/launchers/slurm.js";
import { ptcluster, tempClusterDir } from "./helpers/cluster.js";
import { slurmUnavailable, useSlurm } from "./helpers/slurm.js";
import { processesUsing, range, waitFor } from "./helpers/wait.js";

const unavailable = slurmUnavailable();
if (unavailable) console.warn(`test/slurm.test.ts: Slurm tests skipped: ${unavailable}`);

const ctx = {
  profile: "p",
  clusterId: "",
  engineFile: "/shared/home/u/.ptcluster/profile_p/security/engine.json",
  logDir: "/shared/home/u/.ptcluster/profile_p/log",
  ip: "10.0.0.1",
  concurrency: 2,
};

describe("slurm batch script and sbatch arguments", () => {
  it("runs one engine per task with srun, with the launch tag and id idBase + task rank, and checks the connection file is readable on the node", () => {
    const s = batchScript({ ctx, settings: {}, tag: "slurm-1-1", count: 4, idBase: 5 });
    expect(s.startsWith("#!/bin/sh\n")).toBe(true);
    expect(s).toContain("if [ ! -r /shared/home/u/.ptcluster/profile_p/security/engine.json ]; then");
    expect(s).toMatch(
      /^exec srun --ntasks=4 \$\{SLURM_CPUS_PER_TASK:\+--cpus-per-task=\$SLURM_CPUS_PER_TASK\} \/bin\/sh -c 'GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1\$\{GLIBC_TUNABLES:\+:\$GLIBC_TUNABLES\} exec "\$@" --id "\$\(\(5 \+ SLURM_PROCID\)\)"' ptcluster-engine \S+ \S+ --file \/shared\/home\/u\/.ptcluster\/profile_p\/security\/engine.json --concurrency 2 --launch-tag slurm-1-1$/m,
    );
    // A routable controller address: no same-host check.
    expect(s).not.toContain("SLURM_JOB_NUM_NODES");
  });

  it("with a loopback controller address, the job fails at once with why unless it runs on the controller's host", () => {
    const s = batchScript({
      ctx: { ...ctx, ip: "127.0.0.1" },
      settings: {},
      tag: "t",
      count: 1,
      idBase: 0,
      controllerHost: "login1",
    });
    expect(s).toContain(`if [ "\${SLURM_JOB_NUM_NODES:-1}" != 1 ] || [ "$(hostname)" != login1 ]; then`);
    expect(s).toContain("--ip set to an address the compute nodes reach");
  });

  it("is a valid shell script", async () => {
    for (const ip of ["10.0.0.1", "127.0.0.1"]) {
      const r = await execa("sh", ["-n"], {
        input: batchScript({
          ctx: { ...ctx, ip },
          settings: { remoteCommand: "npx 'my ptcluster'" },
          tag: "t",
          count: 3,
          idBase: 0,
        }),
        reject: false,
      });
      expect(r.exitCode, r.stderr).toBe(0);
    }
  });

  it("--remote-command replaces this node and ptcluster, quoted for the shell", () => {
    const s = batchScript({
      ctx: { ...ctx, engineFile: "/home/a b/engine.json" },
      settings: { remoteCommand: "npx ptcluster" },
      tag: "t",
      count: 1,
      idBase: 0,
    });
    expect(s).toMatch(/ npx ptcluster engine --file '\/home\/a b\/engine.json' /);
  });

  it("sbatch gets the job's name, tasks, output files in the log directory, and the settings", () => {
    const args = sbatchArgs({
      ctx: { ...ctx, clusterId: "c2" },
      settings: {
        slurmPartition: "short",
        slurmTime: "01:00:00",
        slurmAccount: "A",
        slurmArgs: "--qos=debug --mem=4G",
      },
      tag: "t",
      count: 64,
      idBase: 0,
    });
    expect(args).toEqual([
      "--parsable",
      "--job-name=ptcluster-p-c2",
      "--ntasks=64",
      "--output=/shared/home/u/.ptcluster/profile_p/log/slurm-%j.stdout",
      "--error=/shared/home/u/.ptcluster/profile_p/log/slurm-%j.stderr",
      "--partition=short",
      "--time=01:00:00",
      "--account=A",
      "--qos=debug",
      "--mem=4G",
    ]);
    expect(parseJobId("42\n")).toBe("42");
    expect(parseJobId("42;cluster2\n")).toBe("42");
    expect(parseJobId("Submitted batch job 42")).toBeUndefined();
  });
});

describe.skipIf(unavailable)("slurm launcher on a real Slurm", () => {
  const slurm = useSlurm();
  let tmp: ReturnType<typeof tempClusterDir>;
  let dir: string;
  const clients: Client[] = [];
  beforeAll(() => {
    tmp = tempClusterDir();
    dir = tmp.dir;
  });

  // Runs before useSlurm's (hooks after tests run in reverse order); stops Slurm itself even if it throws.
  afterAll(async () => {
    let left: ReturnType<typeof processesUsing> = [];
    try {
      for (const rc of clients) await rc.close().catch(() => undefined);
      if (!dir) return;
      await ptcluster(dir, ["stop", "--all"]);
      // Cancelled jobs' processes get SIGTERM, then SIGKILL after KillWait (2 s).
      await waitFor(() => processesUsing(dir).length === 0, {
        timeout: 10_000,
        what: "the cluster's processes to exit",
      }).catch(() => undefined);
      left = processesUsing(dir);
      for (const p of left) process.kill(p.pid, "SIGKILL");
    } finally {
      await slurm.h?.stop();
      tmp?.cleanup();
    }
    if (left.length) throw new Error(`processes left: ${left.map((p) => `${p.pid} ${p.cmdline}`).join("; ")}`);
  }, 30_000);

  /** The ids of the jobs in the queue that are not over. */
  const queued = async () => (await slurm.h.jobs()).map((j) => j.id).sort();

  it("engines run as the tasks of a job; map, `engines -n 1` (another job), a cancelled job replaced, `stop` cancels every job", async () => {
    const env = { SLURM_CONF: slurm.h.conf };
    const r = await ptcluster(
      dir,
      [
        "start",
        "--json",
        "--engines",
        "slurm",
        "-n",
        "2",
        "--slurm-partition",
        "short",
        "--slurm-time",
        "00:10:00",
        "--heartbeat",
        "2000",
      ],
      { env },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { ids: number[]; controllerPid: number; enginePids: number[] };
    expect(s.ids).toEqual([0, 1]);
    expect(s.enginePids).toEqual([]); // no engine is a process of this host's launcher: they are the job's
    const rc = await connect({ profile: "default" });
    clients.push(rc);

    // Both engines are tasks 0 and 1 of the one job in the queue, named after the profile.
    const jobs = await slurm.h.jobs();
    expect(jobs.map((j) => [j.state, j.name])).toEqual([["RUNNING", "ptcluster-default"]]);
    const job1 = jobs[0]!.id;
    // Engine ids follow the task ranks.
    const where = await rc.view().applySync(() => [process.env["SLURM_JOB_ID"], process.env["SLURM_PROCID"]]);
    expect(where).toEqual([
      [job1, "0"],
      [job1, "1"],
    ]);
    // The state file records the job, for `stop` without the controller.
    const state = JSON.parse(readFileSync(join(dir, "profile_default", "run", "cluster.json"), "utf8")) as {
      jobs: unknown[];
    };
    expect(state.jobs).toEqual([{ launcher: "slurm", id: job1 }]);

    const lb = rc.loadBalancedView();
    expect(await lb.map((x: number) => x * x, range(20))).toEqual(range(20).map((x) => x * x));

    // One more engine with the cluster's own launcher: a second job.
    const added = await ptcluster(dir, ["engines", "-n", "1", "--json"], { env });
    expect(added.exitCode, added.stderr).toBe(0);
    expect((JSON.parse(added.stdout) as { ids: number[] }).ids).toEqual([2]);
    const [job2, rank2] = await rc.engine(2).apply(() => [process.env["SLURM_JOB_ID"], process.env["SLURM_PROCID"]]);
    expect(job2).not.toBe(job1);
    expect(rank2).toBe("0");
    expect(await queued()).toEqual([job1, job2 as string].sort());

    // Cancelling that job (its engine says goodbye on SIGTERM): the engine is gone at once, and a new job replaces it.
    const downs = new Map<number, string>();
    const ups: number[] = [];
    rc.on("engine_down", (d) => downs.set(d.id, d.reason));
    rc.on("engine_up", (e) => ups.push(e.id));
    let since = Date.now();
    await execa("scancel", [job2 as string], { env });
    await waitFor(() => downs.has(2), { timeout: 5_000, what: "engine 2 to be reported down" });
    expect(Date.now() - since).toBeLessThan(5_000);
    await waitFor(() => ups.length === 1, { timeout: 15_000, what: "a replacement engine" });
    const job3 = (await rc.engine(ups[0]!).apply(() => process.env["SLURM_JOB_ID"])) as string;
    expect([job1, job2]).not.toContain(job3);
    expect((await rc.status()).engines.map((e) => e.id).sort()).toEqual([0, 1, ups[0]]);
    await waitFor(async () => (await queued()).join() === [job1, job3].sort().join(), {
      timeout: 5_000,
      what: "the queue to hold the first job and the replacement",
    });

    // The replacement's engine dies without a word (SIGKILL), which ends its one-task job: the controller
    // learns it from the queue, well before 6 missed heartbeats (12 s here), and replaces it.
    const pid3 = await rc.engine(ups[0]!).apply(() => engine.pid);
    since = Date.now();
    process.kill(pid3, "SIGKILL");
    await waitFor(() => downs.has(ups[0]!), { timeout: 6_000, what: "the replacement to be reported down" });
    expect(Date.now() - since).toBeLessThan(6_000);
    expect(downs.get(ups[0]!)).toMatch(/^launch ended \(/);
    await waitFor(() => ups.length === 2, { timeout: 15_000, what: "a second replacement engine" });
    const job4 = (await rc.engine(ups[1]!).apply(() => process.env["SLURM_JOB_ID"])) as string;
    expect([job1, job2, job3]).not.toContain(job4);
    expect((await rc.status()).engines.map((e) => e.id).sort()).toEqual([0, 1, ups[1]]);

    await rc.close();
    const stopped = await ptcluster(dir, ["stop"], { env });
    expect(stopped.exitCode, stopped.stderr).toBe(0);
    expect(pidAlive(s.controllerPid)).toBe(false);
    await waitFor(async () => (await queued()).length === 0, { timeout: 10_000, what: "no job in the queue" });
    await waitFor(() => processesUsing(dir).length === 0, { timeout: 10_000, what: "every engine to exit" });
  });

  it("after the controller is killed with SIGKILL, `ptcluster stop` still cancels the job (from the state file)", async () => {
    const env = { SLURM_CONF: slurm.h.conf };
    const r = await ptcluster(
      dir,
      ["start", "--json", "--profile", "orphan", "--engines", "slurm", "-n", "1", "--slurm-partition", "short"],
      { env },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const { controllerPid } = JSON.parse(r.stdout) as { controllerPid: number };
    const [job] = await queued();
    expect(job).toBeDefined();
    process.kill(controllerPid, "SIGKILL");
    await waitFor(() => !pidAlive(controllerPid), { timeout: 5_000, what: "the controller to die" });
    expect(await queued()).toEqual([job]); // the job outlives its controller
    const stopped = await ptcluster(dir, ["stop", "--profile", "orphan"], { env });
    expect(stopped.exitCode, stopped.stderr).toBe(0);
    await waitFor(async () => (await queued()).length === 0, { timeout: 10_000, what: "the job to be cancelled" });
    await waitFor(() => processesUsing(dir).length === 0, { timeout: 10_000, what: "the orphaned engine to exit" });
    expect(existsSync(join(dir, "profile_orphan", "run", "cluster.json"))).toBe(false);
  });

  it("an sbatch failure (no such partition) makes `start` fail at once with sbatch's message", async () => {
    const t0 = Date.now();
    const r = await ptcluster(
      dir,
      ["start", "--profile", "bad", "--engines", "slurm", "-n", "2", "--slurm-partition", "nosuchpartition"],
      { env: { SLURM_CONF: slurm.h.conf } },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/sbatch failed \(exit code 1\)/);
    expect(r.stderr).toMatch(/Invalid partition name specified/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await queued()).toEqual([]);
    await waitFor(() => processesUsing(dir).length === 0, { timeout: 5_000, what: "the failed controller to exit" });
  });

  it("engines that fail inside the job: `start` fails as soon as the job ends, with the job's output", async () => {
    const t0 = Date.now();
    const r = await ptcluster(
      dir,
      [
        "start",
        "--profile",
        "broken",
        "--engines",
        "slurm",
        "-n",
        "2",
        "--remote-command=/bin/sh -c 'echo broken install on $(hostname) >&2; exit 3'",
      ],
      { env: { SLURM_CONF: slurm.h.conf } },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/The engines started by slurm job \d+ exited \((FAILED|ENDED)\) before registering/);
    expect(r.stderr).toContain(`broken install on ${slurm.h.node}`);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await waitFor(async () => (await queued()).length === 0, {
      timeout: 5_000,
      what: "the failed job to leave the queue",
    });
    await waitFor(() => processesUsing(dir).length === 0, { timeout: 5_000, what: "the failed controller to exit" });
  });

  it("a job still pending at `--timeout`: `start` says so, with the queue's reason, and the job is cancelled", async () => {
    const r = await ptcluster(
      dir,
      [
        "start",
        "--profile",
        "pending",
        "--engines",
        "slurm",
        "-n",
        "1",
        "--timeout",
        "2500",
        "--slurm-args=--begin=now+3600",
      ],
      { env: { SLURM_CONF: slurm.h.conf } },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Only 0 of 1 engines registered within 2500 ms/);
    expect(r.stderr).toMatch(/job \d+ is still PENDING \(BeginTime\)/);
    await waitFor(async () => (await queued()).length === 0, {
      timeout: 10_000,
      what: "the pending job to be cancelled",
    });
    await waitFor(() => processesUsing(dir).length === 0, { timeout: 5_000, what: "the failed controller to exit" });
  });
});
