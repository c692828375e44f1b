import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { BIN, expectGone, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { filesStartingWith, scratchDir } from "./helpers/lb.js";
import { spawnInPty, type PtySession } from "./helpers/pty.js";
import { waitFor } from "./helpers/wait.js";

// Ctrl-C at `ptcluster repl`, typed into a real pseudo-terminal (util-linux `script`), against a
// real two-engine cluster: it cancels the remote call of the line it interrupts, and only that.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());
const ctx = useCluster({ n: 2, dir: tmp.dir });

/** The engine's grace period for a running task that ignores `engine.signal` (engine default). */
const GRACE_MS = 1_000;
const CTRL_C = "\x03";

let sessions: PtySession[] = [];
afterEach(() => {
  for (const s of sessions) s.kill();
  sessions = [];
});

async function openRepl(): Promise<{ s: PtySession; pids: number[] }> {
  const s = spawnInPty([process.execPath, BIN, "repl"], { PTCLUSTER_DIR: tmp.dir });
  sessions.push(s);
  await s.waitFor(/Connected to profile default: engines \[0, 1\][^\n]*\n[\s\S]*ptcluster> $/, { timeout: 20_000 });
  return { s, pids: s.pids() };
}

/** Types `line` and Enter; resolves with what it printed, once the next prompt shows. */
async function enter(s: PtySession, line: string, timeout = 10_000): Promise<string> {
  const from = s.text().length;
  s.type(`${line}\r`);
  const m = await s.waitFor(/^[^\n]*\n([\s\S]*)ptcluster> $/, { from, timeout });
  return m[1]!;
}

/**
 * Types `line` and Enter without waiting for it to finish; resolves once its echo is shown (what
 * the terminal shows travels slower than what the line does, and must not be taken for its output)
 * with where its output starts.
 */
async function start(s: PtySession, line: string): Promise<number> {
  const from = s.text().length;
  s.type(`${line}\r`);
  const echo = await s.waitFor(/^[^\n]*\n/, { from });
  return from + echo[0].length;
}

/** Presses Ctrl-C; resolves with what was printed after it up to the next prompt, and how long that took. */
async function interrupt(s: PtySession, withinMs: number): Promise<{ out: string; ms: number }> {
  const from = s.text().length;
  const t0 = Date.now();
  s.type(CTRL_C);
  const m = await s.waitFor(/([\s\S]*)ptcluster> $/, { from, timeout: withinMs });
  return { out: m[1]!, ms: Date.now() - t0 };
}

async function exits(s: PtySession, pids: number[]): Promise<number | null> {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`the REPL did not exit; it shows:\n${s.text()}`)), 8_000).unref(),
  );
  const { code } = await Promise.race([s.exited, timeout]);
  await expectGone(pids, 2_000);
  return code;
}

/**
 * The remote functions, typed on one line each (dir as a literal, so nothing but the function is
 * shipped). `spin` marks `spin-<engine>` and then runs synchronously for 20 s, deaf to
 * `engine.signal` (the engine must force it after its grace period); `hold` marks `<tag>-<engine>`
 * and waits, watching `engine.signal` (marks `<tag>-cancelled`), until the file `gate` exists.
 */
function definitions(dir: string): string[] {
  const d = JSON.stringify(dir);
  return [
    `const spin = () => { require("node:fs").writeFileSync(${d} + "/spin-" + engine.id, ""); const end = Date.now() + 20000; while (Date.now() < end); return "spun to the end"; }`,
    `const hold = async (tag) => { const fs = require("node:fs"); fs.writeFileSync(${d} + "/" + tag + "-" + engine.id, ""); const end = Date.now() + 20000; while (!fs.existsSync(${d} + "/gate")) { if (engine.signal.aborted) { fs.writeFileSync(${d} + "/" + tag + "-cancelled", ""); return "cancelled"; } if (Date.now() > end) return "timed out"; await new Promise((r) => setTimeout(r, 5)); } return "opened"; }`,
  ];
}

async function define(s: PtySession, dir: string): Promise<void> {
  for (const line of definitions(dir)) expect(await enter(s, line)).toBe("undefined\n");
}

describe("Ctrl-C at ptcluster repl", () => {
  it("during `await rc.view().applySync(spin)`: cancels its tasks, says so in one line, returns to the prompt; the engines serve the next line; then Ctrl-C twice exits", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    await define(s, dir);
    const from = await start(s, "await rc.view().applySync(spin)");
    await waitFor(() => filesStartingWith(dir, "spin-").length === 2, { what: "spin running on both engines" });
    const { out, ms } = await interrupt(s, 5_000);
    expect(out).toBe("Cancelled: 2 tasks of this line (Ctrl-C)\n");
    expect(ms).toBeLessThan(2_000);
    // Both engines answer, after forcing out the spin that ignored engine.signal.
    const t0 = Date.now();
    expect(await enter(s, "await rc.view().applySync(() => 1)", 10_000)).toBe("[ 1, 1 ]\n");
    expect(Date.now() - t0).toBeLessThan(GRACE_MS + 2_000);
    expect(s.text().slice(from)).not.toMatch(/spun to the end/);
    // At the idle prompt Ctrl-C is Node's: a hint first (the REPL stays), then exit.
    const hint = await interrupt(s, 5_000);
    expect(hint.out).toBe("\n(To exit, press Ctrl+C again or Ctrl+D or type .exit)\n");
    s.type(CTRL_C);
    expect(await exits(s, pids)).toBe(0);
  });

  it("during a load-balanced `await lb.map(hold, …)`: cancels every item, the running ones see engine.signal, and the engines serve the next line at once", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    await define(s, dir);
    expect(await enter(s, "const lb = rc.loadBalancedView()")).toBe("undefined\n");
    await start(s, 'await lb.map(hold, ["m0", "m1", "m2", "m3", "m4", "m5"])');
    await waitFor(() => filesStartingWith(dir, "m").length > 0, { what: "a map item running" });
    const { out, ms } = await interrupt(s, 5_000);
    expect(out).toBe("Cancelled: 6 map items of this line (Ctrl-C)\n");
    expect(ms).toBeLessThan(2_000);
    const t0 = Date.now();
    expect(await enter(s, "await lb.map((x) => x * 2, [1, 2, 3])")).toBe("[ 2, 4, 6 ]\n");
    expect(Date.now() - t0).toBeLessThan(GRACE_MS + 2_000);
    // Every item that started stopped through engine.signal (no item waited out its gate).
    const started = filesStartingWith(dir, "m").filter((f) => !f.endsWith("-cancelled"));
    const cancelled = filesStartingWith(dir, "m").filter((f) => f.endsWith("-cancelled"));
    expect(started.length).toBeGreaterThan(0);
    expect(cancelled.map((f) => f.split("-")[0]).sort()).toEqual(started.map((f) => f.split("-")[0]).sort());
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("cancels the tasks of the interrupted line only: a task an earlier line started without `await` runs on", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    await define(s, dir);
    await enter(s, 'const bg = rc.engine(0).apply(hold, "bg")');
    await waitFor(() => existsSync(join(dir, "bg-0")), { what: "the background task running" });
    await start(s, 'await rc.engine(1).apply(hold, "fg")');
    await waitFor(() => existsSync(join(dir, "fg-1")), { what: "the awaited task running" });
    const { out } = await interrupt(s, 5_000);
    expect(out).toBe("Cancelled: 1 task of this line (Ctrl-C)\n");
    await waitFor(() => existsSync(join(dir, "fg-cancelled")), { what: "the awaited task to see engine.signal" });
    expect(await enter(s, "bg.ready()")).toBe("false\n");
    writeFileSync(join(dir, "gate"), "");
    expect(await enter(s, "await bg")).toBe("'opened'\n");
    expect(existsSync(join(dir, "bg-cancelled"))).toBe(false);
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("during a `for await` over `lb.imap`: cancels the stream (known length: its items; a generator: the stream)", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    await define(s, dir);
    expect(await enter(s, "const lb = rc.loadBalancedView()")).toBe("undefined\n");
    await start(s, 'for await (const x of lb.imap(hold, ["a", "b", "c"])) console.log(x)');
    await waitFor(() => filesStartingWith(dir, "a-").length > 0, { what: "the first item running" });
    expect((await interrupt(s, 5_000)).out, s.text()).toBe("Cancelled: 3 map items of this line (Ctrl-C)\n");
    await waitFor(() => existsSync(join(dir, "a-cancelled")), { what: "item a to see engine.signal" });
    await start(
      s,
      'for await (const x of lb.imap(hold, (function* () { for (let i = 0; ; i++) yield "g" + i; })())) console.log(x)',
    );
    await waitFor(() => existsSync(join(dir, "g0-0")) || existsSync(join(dir, "g0-1")), { what: "item g0 running" });
    expect((await interrupt(s, 5_000)).out, s.text()).toBe("Cancelled: 1 imap stream of this line (Ctrl-C)\n");
    await waitFor(() => existsSync(join(dir, "g0-cancelled")), { what: "item g0 to see engine.signal" });
    expect(await enter(s, "await rc.view().applySync(() => 3)")).toBe("[ 3, 3 ]\n");
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("during a `for await` over `rc.pipeline`: cancels the pipeline (its running item sees engine.signal)", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    await define(s, dir);
    await start(s, 'for await (const x of rc.pipeline(["p"]).map((t) => t).map(hold)) console.log(x)');
    await waitFor(() => filesStartingWith(dir, "p-").length > 0, { what: "the item running in the second stage" });
    expect((await interrupt(s, 5_000)).out, s.text()).toBe("Cancelled: 1 pipeline of this line (Ctrl-C)\n");
    await waitFor(() => existsSync(join(dir, "p-cancelled")), { what: "the item to see engine.signal" });
    expect(await enter(s, "await rc.pipeline([1, 2]).map((x) => x * 3).toArray()")).toBe("[ 3, 6 ]\n");
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("what an interrupted line still starts (a loop that catches the cancellation) is cancelled at once", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    await define(s, dir);
    const d = JSON.stringify(dir);
    expect(await enter(s, "const lb = rc.loadBalancedView()")).toBe("undefined\n");
    await start(
      s,
      `for (const t of ["x", "y", "z"]) { try { await lb.apply(hold, t) } catch {} } require("node:fs").writeFileSync(${d} + "/loop-done", "")`,
    );
    await waitFor(() => filesStartingWith(dir, "x-").length > 0, { what: "the first call running" });
    expect((await interrupt(s, 5_000)).out, s.text()).toBe("Cancelled: 1 task of this line (Ctrl-C)\n");
    // Without the cancellation of y and z, each would hold an engine for 20 s.
    await waitFor(() => existsSync(join(dir, "loop-done")), {
      what: "the interrupted loop to run out",
      timeout: 5_000,
    });
    // y and z never ran, or saw engine.signal at once.
    for (const t of ["y", "z"]) {
      const marks = filesStartingWith(dir, `${t}-`);
      if (marks.length > 0) expect(marks).toContain(`${t}-cancelled`);
    }
    expect(await enter(s, "await rc.view().applySync(() => 4)")).toBe("[ 4, 4 ]\n");
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("during local code, as Node's REPL: a synchronous loop and a local await are interrupted, and the REPL goes on", async () => {
    const dir = scratchDir(tmp.dir);
    const { s, pids } = await openRepl();
    // Each line says when it is running: a Ctrl-C before that (between Enter and the start of the
    // evaluation) would be lost, at `node`'s own REPL too. The synchronous loop says it in a file:
    // Node 20 can lose a Ctrl-C that follows a write to the terminal from synchronous code.
    const looping = join(dir, "looping");
    await start(s, `require("node:fs").writeFileSync(${JSON.stringify(looping)}, ""); for (;;) {}`);
    await waitFor(() => existsSync(looping), { what: "the loop running" });
    const sync = await interrupt(s, 5_000);
    // Node's error ("^C" is the terminal's echo of the signal), without the frames of the REPL's machinery.
    expect(sync.out).toMatch(/^(\^C)?Uncaught \[?Error: Script execution was interrupted by `SIGINT`/);
    expect(sync.out).not.toMatch(/repl-lines|result-scope|node:/);
    const from = await start(s, 'await new Promise(() => setTimeout(() => process.stdout.write("waiting\\n")))');
    await s.waitFor(/^waiting\n$/, { from });
    const pending = await interrupt(s, 5_000);
    expect(pending.out).toMatch(/^Uncaught \[?Error: Script execution was interrupted by `SIGINT`/);
    expect(pending.out).not.toMatch(/Cancelled/);
    expect(await enter(s, "await rc.view().applySync(() => 2)")).toBe("[ 2, 2 ]\n");
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("during a waiting `await rc.shared.queue(q).get()`: the get is withdrawn at the controller, so it never takes the next item", async () => {
    const { s, pids } = await openRepl();
    const from = await start(s, 'await rc.shared.queue("ctrl-c").get()');
    await waitFor(async () => (await ctx.rc.status()).shared.objects.find((o) => o.name === "ctrl-c")?.waiting === 1, {
      what: "the get to wait at the controller",
    });
    // The line must still be waiting when Ctrl-C comes (it failed once in CI with the idle prompt's
    // hint: this says whether the line had already ended, and how).
    expect(s.text().slice(from), "the line ended before Ctrl-C").toBe("");
    const { out } = await interrupt(s, 5_000);
    expect(out, s.text()).toBe("Cancelled: 1 shared-state call of this line (Ctrl-C)\n");
    expect(await enter(s, 'await rc.shared.queue("ctrl-c").put("item")')).toBe("undefined\n");
    expect(await enter(s, 'await rc.shared.queue("ctrl-c").get({ timeout: 2000 })')).toBe("'item'\n");
    s.type(".exit\r");
    expect(await exits(s, pids)).toBe(0);
  });

  it("twice at an idle prompt exits the REPL (code 0, no process left)", async () => {
    const { s, pids } = await openRepl();
    const hint = await interrupt(s, 5_000);
    expect(hint.out).toBe("\n(To exit, press Ctrl+C again or Ctrl+D or type .exit)\n");
    s.type(CTRL_C);
    expect(await exits(s, pids)).toBe(0);
  });
});
