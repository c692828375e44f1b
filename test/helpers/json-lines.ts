/** What `jsonLines` needs of an execa child: its stdout, and how it ended. */
type ScriptProcess = PromiseLike<{ signal?: string | undefined; exitCode?: number | undefined; stderr?: unknown }> & {
  stdout: NodeJS.ReadableStream | null;
};

/**
 * The JSON lines a test script prints on stdout (one object per line), as they come, and a wait
 * for the first line with a given key, which rejects if the script ends before printing it.
 * `child` must be started with `buffer: { stdout: false }`.
 */
export function jsonLines<Line extends object>(
  child: ScriptProcess,
): { lines: Line[]; next: (key: string) => Promise<Line> } {
  const lines: Line[] = [];
  const waiters: Array<{ key: string; resolve: (l: Line) => void }> = [];
  let text = "";
  child.stdout?.on("data", (d: Buffer) => {
    text += d.toString();
    let nl;
    while ((nl = text.indexOf("\n")) >= 0) {
      const line = JSON.parse(text.slice(0, nl)) as Line;
      text = text.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.filter((x) => x.key in line)) w.resolve(line);
    }
  });
  const next = (key: string): Promise<Line> => {
    const seen = lines.find((l) => key in l);
    if (seen) return Promise.resolve(seen);
    return new Promise<Line>((resolve, reject) => {
      waiters.push({ key, resolve });
      void Promise.resolve(child).then((r) =>
        reject(new Error(`the script ended (${r.signal ?? r.exitCode}) before printing "${key}": ${String(r.stderr)}`)),
      );
    });
  };
  return { lines, next };
}
