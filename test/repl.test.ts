import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { CompositeError, EngineLostError, RemoteError, UndefinedNameError } from "@ptcluster/client";
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
  await s.waitFor(
    new RegExp(`Connected to profile ${profile}: engines \\[${ids.join(", ")}\\][^\\n]*\\n[\\s\\S]*ptcluster> $`),
    { timeout: 20_000 },
  );
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
    setTimeout(
      () => reject(new Error(`the REPL did not exit within ${withinMs} ms; it shows:\n${s.text()}`)),
      withinMs,
    ).unref(),
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
    expect(steps.map((x) => x.input)).toEqual([
      "rc.ids",
      'await rc.view().applySync(() => "Hello, World")',
      "await rc.view().map((x) => x * x, [1, 2, 3, 4, 5, 6, 7, 8])",
    ]);
    const { s, pids } = await openRepl("default", [0, 1, 2, 3]);
    expect(s.text()).toMatch(/`rc` is your client; try `await rc\.view\(\)\.applySync\(\(\) => "Hello, World"\)`/);
    for (const step of steps) expect(await enter(s, step.input), step.input).toBe(step.output);
    // The client's exports are in scope, as in a script's `import { … } from "@ptcluster/client"`.
    expect(await enter(s, "typeof connect + ' ' + typeof CompositeError")).toBe("'function function'\n");
    s.type(".exit\r");
    expect(await ends(s, pids, 8_000)).toMatchObject({ code: 0 });
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
    const exit = await ends(s, pids, 8_000);
    expect(exit.code).toBe(0);
    expect(exit.after).toBeLessThan(4_000);
  });

  it("after an awaited remote rejection, Ctrl-D ends the REPL", async () => {
    const { s, pids } = await openRepl2();
    const out = await enter(s, 'await rc.view().applySync(() => { throw new RangeError("remote boom") })');
    expect(out).toMatch(/Uncaught/);
    expect(out).toMatch(/RangeError: remote boom/);
    s.type("\x04");
    const exit = await ends(s, pids, 8_000);
    expect(exit.code).toBe(0);
    expect(exit.after).toBeLessThan(4_000);
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
    expect(out).toMatch(
      /UndefinedNameError: `undefinedThing` is not defined on engine [01]\. .*push\(\{ undefinedThing \}\)/,
    ); // the advice, once
    expect(out.match(/Shipped functions see only/g)).toHaveLength(1);
    // Nothing of ptcluster's own machinery (local or remote) is printed.
    expect(out).not.toMatch(/channel\.js|worker\.js|direct-view\.js/);
    // The whole error is kept: every engine's error, with its stack on the engine.
    expect(await enter(s, "_error.errors.length")).toMatch(/^2\n$/);
    expect(await enter(s, "_error.errors.map((e) => e.constructor.name + ' ' + e.engineId).join()")).toMatch(
      /'UndefinedNameError 0,UndefinedNameError 1'/,
    );
    expect(await enter(s, "_error.errors[1].remoteStack.split('\\n').length > 2")).toMatch(/^true\n$/);
    s.type(".exit\r");
    expect(await ends(s, pids, 8_000)).toMatchObject({ code: 0 });
  });

  it("piped input with an error finishes every line and exits", async () => {
    const r = await ptcluster(tmp.dir, ["repl", "--profile", "two"], {
      input: "undefinedThing\n1+1\n",
      timeout: 10_000,
    });
    expect(r.timedOut, r.stdout).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Uncaught ReferenceError: undefinedThing is not defined/);
    expect(r.stdout).toMatch(/ptcluster> 2\n/);
  });

  it("piped input with errors, shown at a terminal (`echo … | ptcluster repl`), finishes every line and exits", async () => {
    const lines = "await rc.view().applySync(() => undefinedThing)\\n_error.errors.length\\nundefinedThing\\n1+1\\n";
    const s = spawnInPty(["sh", "-c", `printf '${lines}' | '${process.execPath}' '${BIN}' repl --profile two`], {
      PTCLUSTER_DIR: tmp.dir,
    });
    sessions.push(s);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no exit within 15 s:\n${s.text()}`)), 15_000).unref(),
    );
    expect((await Promise.race([s.exited, timeout])).code).toBe(0);
    expect(s.text()).toMatch(
      /CompositeError: 2 of 2 engines failed[\s\S]*_error\.errors\.length\n2\n[\s\S]*Uncaught ReferenceError: undefinedThing is not defined\nptcluster> 1\+1\n2\n/,
    );
  });

  it("piped lines run one at a time, as typed ones do (`_error` of the line above is there), and `.exit` ends the REPL while the pipe stays open", async () => {
    const child = spawn(process.execPath, [BIN, "repl", "--profile", "two"], {
      env: { ...process.env, PTCLUSTER_DIR: tmp.dir },
      stdio: ["pipe", "pipe", "pipe"],
    });
    try {
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      // The writer never closes its end: only `.exit` can end the REPL.
      child.stdin.write(
        "await rc.view().applySync(() => undefinedThing)\n_error.errors.length\nconst r = await rc.view().applySync(() => 21)\nr.map((x) => x * 2)\n.exit\n",
      );
      const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 8_000).unref());
      expect(await Promise.race([exited, timeout]), out).toBe(0);
      expect(out).toMatch(
        /CompositeError: 2 of 2 engines failed[\s\S]*\nptcluster> 2\nptcluster> undefined\nptcluster> \[ 42, 42 \]\n/,
      );
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      child.stdin.destroy();
    }
  });

  it("piped input whose awaited remote call fails also exits, after printing it", async () => {
    const r = await ptcluster(tmp.dir, ["repl", "--profile", "two"], {
      input: "await rc.view().applySync(() => undefinedThing)\n",
      timeout: 10_000,
    });
    expect(r.timedOut, r.stdout).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/CompositeError: 2 of 2 engines failed/);
  });
});

describe("ptcluster repl when its controller is lost for a while", () => {
  const ctx = useCluster({ n: 1, dir: tmp.dir, profile: "frozen" });
  afterAll(() => process.kill(ctx.cluster.controllerPid, "SIGCONT"));

  it("says so on a line of its own, says when it answers again, and `rc` works then", async () => {
    const { s } = await openRepl("frozen", ctx.cluster.ids);
    const from = s.text().length;
    process.kill(ctx.cluster.controllerPid, "SIGSTOP");
    try {
      await s.waitFor(/The controller at [^\n]* presumed [^\n]*connects again by itself[^\n]*\n[\s\S]*ptcluster> $/, {
        from,
        timeout: 15_000,
      });
    } finally {
      process.kill(ctx.cluster.controllerPid, "SIGCONT");
    }
    await s.waitFor(/The controller answers again: `rc` is connected \(engines \[0\]\)\.\n[\s\S]*ptcluster> $/, {
      from,
      timeout: 15_000,
    });
    expect(await enter(s, 'await rc.view().applySync(() => "back")')).toContain("[ 'back' ]");
  });
});

// The same short form outside the REPL: anything that goes through util.inspect (console.log, loggers).
describe("util.inspect of errors from engines", () => {
  const remoteStack = (name: string, message: string) =>
    `${name}: ${message}\n    at ptcluster-task-abc.js:1:42\n    at perform (file:///x/packages/engine/dist/executor/worker.js:210:54)\n    at drain (file:///x/packages/engine/dist/executor/worker.js:149:14)`;
  const remote = (engineId: number, message = "boom", extra: { item?: number } = {}) =>
    new RemoteError({ engineId, name: "TypeError", message, stack: remoteStack("TypeError", message), ...extra });

  it("a RemoteError: its message and the first frame on the engine, not ptcluster's local or remote machinery", () => {
    const out = inspect(remote(3));
    expect(out.split("\n")).toEqual([
      "RemoteError [ERR_PTC_REMOTE]: TypeError on engine 3: boom",
      "    at ptcluster-task-abc.js:1:42 (engine 3)",
      "  (the whole stack on the engine: .remoteStack)",
    ]);
  });

  it("a CompositeError: a line per engine (first line of each message, the map item), one frame, the advice once; beyond 20 engines the rest are named on one line", () => {
    const errors: Error[] = [
      new UndefinedNameError(
        {
          engineId: 0,
          name: "ReferenceError",
          message: "x is not defined",
          stack: remoteStack("ReferenceError", "x is not defined"),
        },
        "x",
      ),
      remote(1, "first line\nsecond line", { item: 7 }),
      new EngineLostError(2),
      ...Array.from({ length: 22 }, (_, i) => remote(i + 3)),
    ];
    const lines = inspect(new CompositeError(errors, errors)).split("\n");
    expect(lines[0]).toBe("CompositeError: 25 of 25 engines failed; each one's error is in .errors");
    expect(lines[1]).toBe("  [0] ReferenceError: x is not defined");
    expect(lines[2]).toBe("  [1] TypeError: first line … (item 7)");
    expect(lines[3]).toMatch(/^ {2}\[2\] EngineLostError: Engine 2 died while running this task\./);
    expect(lines[20]).toBe("  [19] TypeError: boom");
    expect(lines[21]).toBe("  … and 5 more: engines 20, 21, 22, 23, 24");
    expect(lines[22]).toBe("    at ptcluster-task-abc.js:1:42 (engine 0)");
    expect(lines[23]).toMatch(/^ {2}UndefinedNameError: `x` is not defined on engine 0\. .*push\(\{ x \}\)/);
    expect(lines).toHaveLength(24);
  });
});
