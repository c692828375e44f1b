import { describe, expect, it } from "vitest";
import { ptcluster, useCluster } from "./helpers/cluster.js";

// The README's REPL walk-through, line by line, on a real 4-engine cluster.
describe("REPL walk-through", () => {
  const ctx = useCluster({ n: 4 });

  it("start registers 4 engines", () => {
    expect(ctx.cluster.ids).toEqual([0, 1, 2, 3]);
    expect(ctx.rc.ids).toEqual([0, 1, 2, 3]);
  });

  it("applySync runs on every engine", async () => {
    expect(await ctx.rc.view().applySync(() => "Hello, World")).toEqual(Array(4).fill("Hello, World"));
  });

  it("map returns squares in input order", async () => {
    expect(await ctx.rc.view().map((x: number) => x * x, [1, 2, 3, 4, 5, 6, 7, 8])).toEqual([
      1, 4, 9, 16, 25, 36, 49, 64,
    ]);
  });

  it("`ptcluster repl` gives a REPL with `rc` connected, where the walk-through's lines work", async () => {
    const input = [
      "rc.ids",
      'await rc.view().applySync(() => "Hello, World")',
      "await rc.view().map((x) => x * x, [1, 2, 3, 4, 5, 6, 7, 8])",
      ".exit",
      "",
    ].join("\n");
    const r = await ptcluster(ctx.dir, ["repl"], { input });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Connected to profile default: engines \[0, 1, 2, 3\]/);
    expect(r.stdout).toMatch(/ptcluster> \[ 0, 1, 2, 3 \]/);
    expect(r.stdout).toMatch(/\[\s*'Hello, World',\s*'Hello, World',\s*'Hello, World',\s*'Hello, World'\s*\]/);
    expect(r.stdout.replace(/\s+/g, " ")).toMatch(/\[ 1, 4, 9, 16, 25, 36, 49, 64 \]/);
    expect(r.stderr).toBe("");
  });

  it("list and status show the cluster", async () => {
    const list = await ptcluster(ctx.dir, ["list", "--json"]);
    expect(list.exitCode).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<{ profile: string; engines: number; state: string }>;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ profile: "default", engines: 4, state: "running" });
    const status = await ptcluster(ctx.dir, ["status", "--json"]);
    expect(status.exitCode).toBe(0);
    const s = JSON.parse(status.stdout) as {
      engines: Array<{ id: number; pid: number; host: string; state: string; tasksDone: number }>;
    };
    expect(s.engines.map((e) => e.id).sort()).toEqual([0, 1, 2, 3]);
    expect(s.engines.map((e) => e.pid).sort()).toEqual([...ctx.cluster.enginePids].sort());
    for (const e of s.engines) expect(e.tasksDone).toBeGreaterThanOrEqual(2);
  });
});
