/**
 * ipyparallel side by side in `npm run bench` (bench/anchors/ipp_push_pull.py): its one-host
 * push_pull_50MB, latency_apply_sync and direct_broadcast_apply_sync, and push_pull_50MB_remote
 * with its engine in another network namespace, as bench/remote.ts runs ours. Its lines go out as
 * they are (their own `system`); where it cannot run, one skip line on stderr says why.
 */
import { execa } from "execa";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pidAlive } from "@ptcluster/protocol";
import { createTestNet, netnsUnavailable } from "../test/helpers/netns.js";

const ANCHOR = fileURLToPath(new URL("./anchors/ipp_push_pull.py", import.meta.url));
/** Debian's interpreter: python3-ipyparallel installs there, whatever `python3` is first on PATH. */
const PYTHON = "/usr/bin/python3";
/** The workloads the anchor measures on one host. */
export const IPP_WORKLOADS = ["latency_apply_sync", "direct_broadcast_apply_sync", "push_pull_50MB"];

const lastLine = (text: unknown) => String(text).trim().split("\n").at(-1) ?? "";

let unavailable: Promise<string | undefined> | undefined;
/** Why the anchor cannot run here (asked once), or undefined if it can. */
function ippUnavailable(): Promise<string | undefined> {
  unavailable ??= execa(PYTHON, ["-c", "import ipyparallel"], { reject: false, timeout: 60_000 }).then((r) =>
    r.exitCode === 0
      ? undefined
      : `${PYTHON} cannot import ipyparallel (${lastLine(r.stderr || r.shortMessage)}); ` +
        "install it with `apt-get install python3-ipyparallel`",
  );
  return unavailable;
}

const skip = (label: string, why: string) => process.stderr.write(`ipyparallel anchor (${label}) skipped: ${why}\n`);

/**
 * Kills what the anchor left (it waits for its processes itself; this is for a crash or a
 * timeout): every process that inherited its IPYTHONDIR, nannies included, which leave its
 * session; then waits until they are gone.
 */
async function killLeftovers(ipythonDir: string): Promise<void> {
  const mark = `IPYTHONDIR=${ipythonDir}`;
  const left = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(mark);
      } catch {
        return false; // gone, or not ours to read
      }
    });
  if (left.length === 0) return;
  process.stderr.write(`ipyparallel anchor left ${left.length} processes behind; killing them\n`);
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 5_000;
  while (left.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Runs the anchor with `args` in a fresh IPYTHONDIR (removed after, whatever happens) and writes
 * its lines out; a failure adds a line on stderr saying why.
 */
async function runAnchor(args: string[], label: string): Promise<void> {
  const ipythonDir = mkdtempSync(join(tmpdir(), "ptc-bench-ipp-"));
  try {
    const py = await execa(PYTHON, [ANCHOR, ...args], {
      env: { IPYTHONDIR: ipythonDir },
      reject: false,
      timeout: 180_000,
    });
    // The lines it printed before a failure are figures too.
    if (py.stdout.trim()) process.stdout.write(`${py.stdout.trim()}\n`);
    if (py.exitCode !== 0)
      process.stderr.write(`ipyparallel anchor (${label}) failed: ${lastLine(py.stderr || py.shortMessage)}\n`);
  } finally {
    await killLeftovers(ipythonDir);
    rmSync(ipythonDir, { recursive: true, force: true });
  }
}

/** ipyparallel on this host: those of {@link IPP_WORKLOADS} that `want` selects. */
export async function ippOneHost(want: (name: string) => boolean): Promise<void> {
  const workloads = IPP_WORKLOADS.filter(want);
  if (workloads.length === 0) return;
  const why = await ippUnavailable();
  if (why) skip("one host", why);
  else await runAnchor(workloads, "one host");
}

/**
 * ipyparallel's push_pull_50MB_remote: its controller on a bridge, its one engine in another
 * network namespace; the namespace and every process in it are removed after.
 */
export async function ippRemote(): Promise<void> {
  const why = netnsUnavailable() ?? (await ippUnavailable());
  if (why) {
    skip("remote", why);
    return;
  }
  const net = createTestNet(1);
  try {
    await runAnchor(["--controller-ip", net.controllerIp, "--engine-netns", net.hosts[0]!.ns], "remote");
  } finally {
    await net.destroy();
  }
}
