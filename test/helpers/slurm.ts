/**
 * A real single-node Slurm for the tests: munged, slurmctld and slurmd of Debian's slurm-wlm and
 * munge packages, run as root from a temporary directory (own munge key and socket, own
 * slurm.conf, state and spool, non-default ports), found through SLURM_CONF, so /etc and any
 * system Slurm are untouched. This host is the one compute node, of partition `short`.
 *
 * ```ts
 * const why = slurmUnavailable();
 * describe.skipIf(why)("…", () => {
 *   const slurm = useSlurm();
 *   it("…", async () => { expect(await slurm.h.jobs()).toEqual([]); });
 * });
 * ```
 */
import { execa } from "execa";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, hostname, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { waitExited, waitFor } from "./wait.js";

const PROGRAMS = ["munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scancel", "sinfo"];
const SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

function which(program: string): string | undefined {
  for (const d of [...(process.env["PATH"] ?? "").split(delimiter), ...SBIN]) {
    if (!d) continue;
    try {
      accessSync(join(d, program), constants.X_OK);
      return join(d, program);
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Why a real Slurm cannot run here (printed when the tests skip), or undefined if it can. */
export function slurmUnavailable(): string | undefined {
  if (process.platform !== "linux") return "Slurm tests need Linux";
  if (process.getuid?.() !== 0)
    return "Slurm tests start munged, slurmctld and slurmd, which needs root (CI runs them as root)";
  const missing = PROGRAMS.filter((p) => !which(p));
  if (missing.length)
    return `Slurm tests need ${missing.join(", ")} (Debian: apt-get install -y slurm-wlm munge; .ci/run installs them)`;
  return undefined;
}

export interface SlurmJob {
  id: string;
  state: string;
  name: string;
}

export interface SlurmHarness {
  /** The temporary directory of everything (config, state, spool, logs, munge). */
  dir: string;
  /** The slurm.conf (also set as SLURM_CONF in this process, so children see it). */
  conf: string;
  /** The environment the Slurm commands need (SLURM_CONF). */
  env: Record<string, string>;
  /** The node's name (this host). */
  node: string;
  /** Jobs in the queue that are not over (pending, running, completing …), as `squeue` lists them. */
  jobs(): Promise<SlurmJob[]>;
  /** The daemons' logs (for failure messages). */
  logs(): string;
  /** Cancels every job, stops the daemons (by pid) and removes the directory. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/**
 * Live processes whose environment has SLURM_CONF=`conf` (this harness's unique path), other than
 * this process and those in `except` and their children: the job steps and jobs of our daemons.
 */
function processesWithConf(conf: string, except: number[] = []): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!/^\d+$/.test(entry) || pid === process.pid || except.includes(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const [st, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (st === "Z" || except.includes(Number(ppid))) continue;
      if (readFileSync(`/proc/${entry}/environ`, "latin1").split("\0").includes(`SLURM_CONF=${conf}`)) out.push(pid);
    } catch {
      /* gone or not ours to read */
    }
  }
  return out;
}

/** Starts munged, slurmctld and slurmd, and resolves once the node is idle (a second or two). */
export async function startSlurm(): Promise<SlurmHarness> {
  const why = slurmUnavailable();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), "ptc-slurm-"));
  // munged wants every directory on the way to its socket searchable by all, and its key private.
  chmodSync(dir, 0o755);
  const d = (name: string, mode = 0o755) => {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true, mode });
    chmodSync(p, mode);
    return p;
  };
  const run = d("run");
  const keyDir = d("munge", 0o700);
  const state = d("state", 0o700);
  const spool = d("spool", 0o755);
  const log = d("log", 0o755);
  const key = join(keyDir, "munge.key");
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const socket = join(run, "munge.socket");
  const conf = join(dir, "slurm.conf");
  // The node's name is the short host name (what slurmd and `hostname` in a job say), its address loopback.
  const node = hostname().split(".")[0] as string;
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  writeFileSync(
    conf,
    [
      "ClusterName=ptctest",
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      "SlurmUser=root",
      "SlurmdUser=root",
      "AuthType=auth/munge",
      "CredType=cred/munge",
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${state}`,
      `SlurmdSpoolDir=${spool}`,
      `SlurmctldPidFile=${join(run, "slurmctld.pid")}`,
      `SlurmdPidFile=${join(run, "slurmd.pid")}`,
      `SlurmctldLogFile=${join(log, "slurmctld.log")}`,
      `SlurmdLogFile=${join(log, "slurmd.log")}`,
      "MailProg=/bin/true",
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "JobCompType=jobcomp/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_Core",
      "MpiDefault=none",
      "ReturnToService=2",
      "InactiveLimit=0",
      // Cancelled jobs' processes get SIGKILL 2 s after SIGTERM; ended jobs leave `squeue --states=all` after 2 s.
      "KillWait=2",
      "MinJobAge=2",
      // Schedule a submitted job within a second (the default batches batch jobs for 3 s).
      "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
      // More CPUs than this machine has: the tests' jobs run side by side (the node is not drained for it).
      "SlurmdParameters=config_overrides",
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${Math.max(16, availableParallelism())} RealMemory=1000 State=UNKNOWN`,
      "PartitionName=short Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
      "",
    ].join("\n"),
  );
  const env = { SLURM_CONF: conf };
  const previousConf = process.env["SLURM_CONF"];
  process.env["SLURM_CONF"] = conf;

  const children: Array<{ name: string; child: ChildProcess; out: string }> = [];
  const exitedEarly: string[] = [];
  const daemon = (name: string, args: string[]) => {
    const out = join(log, `${name}.out`);
    const fd = openSync(out, "w");
    // A clean environment: nothing of the test (PTCLUSTER_DIR …) leaks into the daemons; jobs get the submitter's.
    const child = spawn(which(name) as string, args, {
      stdio: ["ignore", fd, fd],
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env },
    });
    closeSync(fd);
    child.on("exit", (code, sig) => exitedEarly.push(`${name} exited (${sig ?? `code ${code}`})`));
    children.push({ name, child, out });
  };
  const logs = () =>
    children.map((c) => `--- ${c.name}\n${readText(c.out).trim()}`).join("\n") +
    `\n--- slurmctld.log\n${readText(join(log, "slurmctld.log")).split("\n").slice(-30).join("\n")}\n--- slurmd.log\n${readText(join(log, "slurmd.log")).split("\n").slice(-30).join("\n")}`;

  const jobs = async (): Promise<SlurmJob[]> => {
    const r = await execa("squeue", ["-h", "-o", "%i|%T|%j"], { env, reject: false, stdin: "ignore", timeout: 10_000 });
    if (r.exitCode !== 0) throw new Error(`squeue failed: ${r.stderr}`);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [id, st, name] = l.trim().split("|");
        return { id: id as string, state: st as string, name: name as string };
      });
  };

  const daemonPids = () => children.flatMap((c) => (c.child.pid ? [c.child.pid] : []));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      // Jobs first: slurmstepd outlives slurmd by design, so every job is cancelled and gone before the daemons stop.
      const left = await jobs().catch(() => []);
      if (left.length)
        await execa(
          "scancel",
          left.map((j) => j.id),
          { env, reject: false, stdin: "ignore", timeout: 10_000 },
        );
      await waitFor(
        async () => (await jobs().catch(() => [])).length === 0 && processesWithConf(conf, daemonPids()).length === 0,
        { timeout: 10_000, interval: 50, what: "the jobs to end" },
      ).catch(() => undefined);
    } finally {
      // Daemons in reverse order of start (slurmd, slurmctld, munged), by pid; then anything they left.
      for (const c of [...children].reverse()) {
        c.child.removeAllListeners("exit");
        if (c.child.exitCode !== null || c.child.signalCode !== null || !c.child.pid) continue;
        c.child.kill("SIGTERM");
        if ((await waitExited([c.child.pid], 5_000)).length) c.child.kill("SIGKILL");
        await waitExited([c.child.pid], 2_000);
      }
      const strays = processesWithConf(conf);
      for (const p of strays) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      await waitExited(strays, 2_000);
      if (previousConf === undefined) delete process.env["SLURM_CONF"];
      else process.env["SLURM_CONF"] = previousConf;
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    daemon("munged", [
      "--foreground",
      "--force",
      `--socket=${socket}`,
      `--key-file=${key}`,
      `--log-file=${join(log, "munged.log")}`,
      `--pid-file=${join(run, "munged.pid")}`,
      `--seed-file=${join(keyDir, "munged.seed")}`,
    ]);
    await waitFor(() => exitedEarly.length > 0 || readdirSync(run).includes("munge.socket"), {
      timeout: 5_000,
      interval: 10,
      what: "munged's socket",
    });
    daemon("slurmctld", ["-D", "-i"]);
    daemon("slurmd", ["-D", "-N", node]);
    await waitFor(
      async () => {
        if (exitedEarly.length) return true;
        const r = await execa("sinfo", ["-h", "-o", "%T"], { env, reject: false, stdin: "ignore", timeout: 5_000 });
        return r.exitCode === 0 && r.stdout.trim() === "idle";
      },
      { timeout: 15_000, interval: 50, what: "the Slurm node to be idle" },
    );
    if (exitedEarly.length) throw new Error(exitedEarly.join("; "));
  } catch (err) {
    const message = `could not start Slurm: ${(err as Error).message}\n${logs()}`;
    await stop();
    throw new Error(message, { cause: err });
  }
  return { dir, conf, env, node, jobs, logs, stop };
}

/** A real Slurm for one test file: started before its tests, stopped (jobs cancelled, daemons gone, files removed) after. */
export function useSlurm(): { h: SlurmHarness } {
  const ctx = {} as { h: SlurmHarness };
  beforeAll(async () => {
    ctx.h = await startSlurm();
  }, 30_000);
  afterAll(async () => {
    await ctx.h?.stop();
  }, 30_000);
  return ctx;
}
