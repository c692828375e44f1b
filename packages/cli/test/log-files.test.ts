import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capControllerLog, pruneLogs } from "../src/util/log-files.js";

describe("log pruning and capping (pure file-system rules)", () => {
  const dir = mkdtempSync(join(tmpdir(), "ptc-logs-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const put = (name: string, daysAgo: number, bytes = 0) => {
    writeFileSync(join(dir, name), Buffer.alloc(bytes));
    const t = new Date(Date.now() - daysAgo * 24 * 3600_000);
    utimesSync(join(dir, name), t, t);
  };

  it("removes stale files older than the age limit even under the count limit; keeps live writers' and foreign files", () => {
    // Dead writers: pids above Linux's pid_max (2^22).
    put("engine-4194400.log", 1);
    put("engine-local-4194401-1.stderr", 20);
    put("slurm-123.stdout", 20);
    put("hub-old.log.1", 20);
    put(`engine-${process.pid}.log`, 20); // alive: this process
    put("README", 20); // not a log of ours
    const removed = pruneLogs(dir, "nosuchprofile", { keep: 60, maxAgeMs: 14 * 24 * 3600_000 });
    expect(removed.sort()).toEqual(["engine-local-4194401-1.stderr", "hub-old.log.1", "slurm-123.stdout"]);
    expect(readdirSync(dir).sort()).toEqual(["README", `engine-${process.pid}.log`, "engine-4194400.log"].sort());
  });

  it("keeps only the newest `keep` stale files", () => {
    for (let i = 0; i < 5; i++) put(`engine-${4194410 + i}.log`, i);
    const removed = pruneLogs(dir, "nosuchprofile", { keep: 3 });
    // engine-4194400.log (1 day, older by the ms between the two tests than engine-4194411.log) and
    // the 5 new ones (0 to 4 days): the 3 newest stay.
    expect(removed.sort()).toEqual(["engine-4194412.log", "engine-4194413.log", "engine-4194414.log"]);
    expect(
      readdirSync(dir)
        .filter((f) => f.startsWith("engine-419"))
        .sort(),
    ).toEqual(["engine-4194400.log", "engine-4194410.log", "engine-4194411.log"]);
  });

  it("moves a controller log past its size limit aside", () => {
    put("hub.log", 0, 2048);
    capControllerLog(join(dir, "hub.log"), 1024);
    expect(statSync(join(dir, "hub.log.1")).size).toBe(2048);
    expect(() => statSync(join(dir, "hub.log"))).toThrow();
    put("hub-small.log", 0, 100);
    capControllerLog(join(dir, "hub-small.log"), 1024);
    expect(statSync(join(dir, "hub-small.log")).size).toBe(100);
  });
});
