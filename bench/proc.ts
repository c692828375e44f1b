import { readFileSync, writeFileSync } from "node:fs";

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM), or undefined where /proc is missing. */
export function procMb(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resets a process's peak RSS (VmHWM) to its current RSS; false where the kernel does not allow it. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `work` while measuring the memory growth of this process and of `otherPid` (MiB over their
 * RSS just before): peaks from the kernel's high-water mark (VmHWM, reset first), or from samples
 * every 25 ms where /proc does not allow the reset (samples miss peaks while this process is busy).
 */
export async function measureGrowth<T>(
  otherPid: number,
  work: () => Promise<T>,
): Promise<{ value: T; clientGrowthMb: number; otherPeakMb: number; otherGrowthMb: number | undefined }> {
  const clientBase = process.memoryUsage().rss / 2 ** 20;
  const otherBase = procMb(otherPid, "VmRSS");
  const exact = resetPeak(otherPid) && resetPeak(process.pid);
  let clientPeak = clientBase;
  let otherPeak = otherBase ?? 0;
  const sample = () => {
    clientPeak = Math.max(clientPeak, process.memoryUsage().rss / 2 ** 20);
    otherPeak = Math.max(otherPeak, procMb(otherPid, "VmRSS") ?? 0);
  };
  const sampler = setInterval(sample, 25);
  let value: T;
  try {
    value = await work();
  } finally {
    clearInterval(sampler);
  }
  sample();
  if (exact) {
    otherPeak = Math.max(otherPeak, procMb(otherPid, "VmHWM") ?? 0);
    clientPeak = Math.max(clientPeak, procMb(process.pid, "VmHWM") ?? 0);
  }
  return {
    value,
    clientGrowthMb: clientPeak - clientBase,
    otherPeakMb: otherPeak,
    otherGrowthMb: otherBase === undefined ? undefined : otherPeak - otherBase,
  };
}
