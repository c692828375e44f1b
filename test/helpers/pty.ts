import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { stripVTControlCharacters } from "node:util";

/**
 * A command run in a real pseudo-terminal, through util-linux `script` (no native dependency):
 * what it writes arrives as a user at a terminal would see it, and what is written to it arrives
 * as keystrokes (`\r` is Enter, `\x04` Ctrl-D).
 */
export interface PtySession {
  /** Everything the command wrote so far, escape sequences removed and line ends made `\n`. */
  text(): string;
  /** Types `keys`. */
  type(keys: string): void;
  /** Resolves when `text()` from `from` on matches `pattern` (checked on each output), with the match; rejects after `timeout` ms. */
  waitFor(pattern: RegExp, options?: { from?: number; timeout?: number }): Promise<RegExpMatchArray>;
  /** The exit of the command (script passes its code on), with how long after `since` it came. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** The pids of `script` and everything under it (the command, its children) still running. */
  pids(): number[];
  /** SIGKILLs every process of the session; for cleanup after a failed test. */
  kill(): void;
}

/** `script -qfec` runs its argument with `sh -c`: quote each word for it. */
function shellQuote(words: string[]): string {
  return words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(" ");
}

/** Direct children of every pid, from /proc. */
function childrenByParent(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = map.get(ppid) ?? [];
      list.push(Number(name));
      map.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  return map;
}

function descendants(pid: number): number[] {
  const children = childrenByParent();
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

export function spawnInPty(
  argv: string[],
  env: Record<string, string>,
  options: { columns?: number } = {},
): PtySession {
  // `exec`: the command replaces the shell `script` runs it with. dash (`/bin/sh`, what `script`
  // uses where SHELL is unset) would otherwise stay, in the terminal's foreground process group,
  // and die of the SIGINT a Ctrl-C raises in cooked mode, and `script` reports its child's death.
  const child: ChildProcess = spawn("script", ["-qfec", `exec ${shellQuote(argv)}`, "/dev/null"], {
    // A fixed width, so that what wraps (and the REPL's own line breaking) does not depend on who runs the test.
    env: { ...process.env, ...env, COLUMNS: String(options.columns ?? 200), LINES: "50", TERM: "xterm" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let raw = "";
  const waiters = new Set<() => void>();
  const onOutput = (d: Buffer) => {
    raw += d.toString("utf8");
    for (const w of [...waiters]) w();
  };
  child.stdout!.on("data", onOutput);
  child.stderr!.on("data", onOutput);
  const text = () => stripVTControlCharacters(raw).replace(/\r+\n/g, "\n");
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    text,
    type: (keys) => void child.stdin!.write(keys),
    waitFor: (pattern, o = {}) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = text()
            .slice(o.from ?? 0)
            .match(pattern);
          if (!m) return;
          cleanup();
          resolve(m);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `timed out after ${o.timeout ?? 10_000} ms waiting for ${pattern} in:\n${text().slice(o.from ?? 0)}`,
            ),
          );
        }, o.timeout ?? 10_000);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    exited,
    pids: () => (child.pid === undefined || child.exitCode !== null ? [] : [child.pid, ...descendants(child.pid)]),
    kill: () => {
      for (const p of child.pid === undefined ? [] : [...descendants(child.pid), child.pid]) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    },
  };
}
