import { readFileSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { BIN, expectGone, ptcluster, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { spawnInPty, type PtySession } from "./helpers/pty.js";

// `ptcluster repl` at a real terminal (a pseudo-terminal through util-linux `script`), and with
// piped input, against real clusters: the README's walk-through on 4 engines, the rest on 2.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

let sessions: PtySession[] = [];
afterEach(() => {
  for (const s of sessions) s.kill();
  sessions = [];
});

/** A REPL at a terminal, once its first prompt is shown; `pids` are its processes then. */
async function openRepl(profile: string, ids: number[]): Promise<{ s: PtySession; pids: number[] }> {
  const s = spawnInPty([process.execPath, BIN, "repl", "--profile", profile], { PTCLUSTER_DIR: tmp.dir });
  sessions.push(s);
  await s.waitFor(new RegExp(`Connected to profile ${profile}: engines \\[${ids.join(", ")}\\][^\\n]*\\n[\\s\\S]*ptcluster> $`));
  return { s, pids: s.pids() };
}

/** Types `line` and Enter; resolves with what it printed, once the next prompt shows. */
async function enter(s: PtySession, line: string): Promise<string> {
  const from = s.text().length;
  s.type(`${line}\r`);
  const m = await s.waitFor(/^[^\n]*\n([\s\S]*)ptcluster> $/, { from });
  return m[1]!;
}

/** Resolves with the exit once the REPL ends, and its processes are gone; fails after `withinMs`. */
async function ends(s: PtySession, pids: number[], withinMs: number) {
  const since = Date.now();
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`the REPL did not exit within ${withinMs} ms; it shows:\n${s.text()}`)), withinMs).unref(),
  );
  const exit = await Promise.race([s.exited, timeout]);
  await expectGone(pids, 2_000);
  return { ...exit, after: exit.at - since };
}

/** The README's REPL walk-through: each `ptcluster>` line and the lines it shows after it. */
function readmeReplLines(): Array<{ input: string; output: string }> {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /## A REPL walk-through\s+```console\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error("README.md has no REPL walk-through block");
  const session = block.slice(block.indexOf("$ npx ptcluster repl")).split("\n").slice(1);
  const steps: Array<{ input: string; output: string }> = [];
  for (const line of session) {
    if (line.startsWith("$ ")) break;
    if (line.startsWith("ptcluster> ")) steps.push({ input: line.slice("ptcluster> ".length), output: "" });
    else if (steps.length) steps[steps.length - 1]!.output += `${line}\n`;
  }
  return steps;
}

describe("the README's REPL walk-through, at a terminal", () => {
  useCluster({ n: 4, dir: tmp.dir });

  it("prints the startup line, then exactly what README shows for each line", async () => {
    const steps = readmeReplLines();
    expect(steps.map((x) => x.input)).toEqual(["rc.ids", 'await rc.view().applySync(() => "Hello, World")', "await rc.view().map((x) => x * x, [1, 2, 3, 4, 5, 6, 7, 8])"]);
    const { s, pids } = await openRepl("default", [0, 1, 2, 3]);
    expect(s.text()).toMatch(/`rc` is your client; try `await rc\.view\(\)\.applySync\(\(\) => "Hello, World"\)`/);
    for (const step of steps) expect(await enter(s, step.input), step.input).toBe(step.output);
    // The client's exports are in scope, as in a script's `import { … } from "@ptcluster/client"`.
    expect(await enter(s, "typeof connect + ' ' + typeof CompositeError")).toBe("'function function'\n");
    s.type(".exit\r");
    expect(await ends(s, pids, 5_000)).toMatchObject({ code: 0 });
  });
});

describe("ptcluster repl", () => {
  useCluster({ n: 2, dir: tmp.dir, profile: "two" });
  const openRepl2 = () => openRepl("two", [0, 1]);

  it("after a line that throws (Uncaught ReferenceError), `.exit` ends the REPL", async () => {
    const { s, pids } = await openRepl2();
    expect(await enter(s, "undefinedThing")).toMatch(/Uncaught ReferenceError: undefinedThing is not defined/);
    expect(await enter(s, "1 + 1")).toMatch(/^2\n$/);
    s.type(".exit\r");
    const exit = await ends(s, pids, 5_000);
    expect(exit.code).toBe(0);
    expect(exit.after).toBeLessThan(3_000);
  });

  it("after an awaited remote rejection, Ctrl-D ends the REPL", async () => {
    const { s, pids } = await openRepl2();
    const out = await enter(s, 'await rc.view(0).applySync(() => { throw new RangeError("remote boom") })');
    expect(out).toMatch(/Uncaught/);
    expect(out).toMatch(/RangeError: remote boom/);
    s.type("\x04");
    const exit = await ends(s, pids, 5_000);
    expect(exit.code).toBe(0);
    expect(exit.after).toBeLessThan(3_000);
  });

  it("an UndefinedNameError from every engine prints a line per engine and the first remote frame; the whole error stays on `_error`", async () => {
    const { s, pids } = await openRepl2();
    const out = await enter(s, "await rc.view().applySync(() => undefinedThing)");
    const lines = out.split("\n").filter((l) => l.trim() !== "");
    expect(lines.length, out).toBeLessThanOrEqual(2 + 3);
    expect(out).toMatch(/CompositeError: 2 of 2 engines failed/);
    expect(out).toMatch(/^ {2}\[0\] ReferenceError: undefinedThing is not defined$/m);
    expect(out).toMatch(/^ {2}\[1\] ReferenceError: undefinedThing is not defined$/m);
    expect(out).toMatch(/^ {4}at \S+:\d+:\d+ \(engine [01]\)$/m); // the first frame on the engine
    expect(out).toMatch(/UndefinedNameError: `undefinedThing` is not defined on engine [01]\. .*push\(\{ undefinedThing \}\)/); // the advice, once
    expect(out.match(/Shipped functions see only/g)).toHaveLength(1);
    // Nothing of ptcluster's own machinery (local or remote) is printed.
    expect(out).not.toMatch(/channel\.js|worker\.js|direct-view\.js/);
    // The whole error is kept: every engine's error, with its stack on the engine.
    expect(await enter(s, "_error.errors.length")).toMatch(/^2\n$/);
    expect(await enter(s, "_error.errors.map((e) => e.constructor.name + ' ' + e.engineId).join()")).toMatch(/'UndefinedNameError 0,UndefinedNameError 1'/);
    expect(await enter(s, "_error.errors[1].remoteStack.split('\\n').length > 2")).toMatch(/^true\n$/);
    s.type(".exit\r");
    expect(await ends(s, pids, 5_000)).toMatchObject({ code: 0 });
  });

  it("piped input with an error finishes every line and exits", async () => {
    const started = Date.now();
    const r = await ptcluster(tmp.dir, ["repl", "--profile", "two"], { input: "undefinedThing\n1+1\n", timeout: 10_000 });
    expect(r.timedOut, r.stdout).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Uncaught ReferenceError: undefinedThing is not defined/);
    expect(r.stdout).toMatch(/ptcluster> 2\n/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("piped input whose awaited remote call fails also exits, after printing it", async () => {
    const r = await ptcluster(tmp.dir, ["repl", "--profile", "two"], { input: "await rc.view().applySync(() => undefinedThing)\n", timeout: 10_000 });
    expect(r.timedOut, r.stdout).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/CompositeError: 2 of 2 engines failed/);
  });
});
