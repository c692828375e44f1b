import { execa, type Options } from "execa";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ENGINE_MAIN = fileURLToPath(import.meta.resolve("@ptcluster/engine/main"));
import type { LaunchedEngine, Launcher } from "./launcher.js";

export interface LocalLauncherOptions {
  engineFile: string;
  logDir: string;
  concurrency: number;
  /** Heap limit of each engine's executor (MB). */
  maxMemoryMb?: number | undefined;
  /** Exit after the controller has been silent this long (ms). */
  orphanTimeoutMs?: number;
}

/** Starts engines as child processes of this machine, their stdout and stderr in the profile's log directory. */
export class LocalLauncher implements Launcher {
  readonly name = "local";
  private seq = 0;
  constructor(private readonly opts: LocalLauncherOptions) {}

  start(count: number): LaunchedEngine[] {
    const out: LaunchedEngine[] = [];
    for (let i = 0; i < count; i++) out.push(this.startOne());
    return out;
  }

  private startOne(): LaunchedEngine {
    const n = this.seq++;
    const errFile = join(this.opts.logDir, `engine-${process.pid}-${n}.stderr`);
    const outFile = join(this.opts.logDir, `engine-${process.pid}-${n}.stdout`);
    const args = [ENGINE_MAIN, "--file", this.opts.engineFile, "--concurrency", String(this.opts.concurrency), "--log-dir", this.opts.logDir];
    if (this.opts.orphanTimeoutMs !== undefined) args.push("--orphan-timeout", String(this.opts.orphanTimeoutMs));
    if (this.opts.maxMemoryMb !== undefined) args.push("--max-memory", String(this.opts.maxMemoryMb));
    const options: Options = {
      stdin: "ignore", stdout: { file: outFile }, stderr: { file: errFile }, reject: false, cleanup: false,
    };
    const child = execa(process.execPath, args, options);
    const exited = child.then((r) => (r.signal ?? r.exitCode ?? 0) as number | string);
    return {
      pid: child.pid ?? -1,
      exited,
      output: () => {
        try {
          return readFileSync(errFile, "utf8");
        } catch {
          return "";
        }
      },
      kill: (signal = "SIGTERM") => child.kill(signal),
    };
  }
}
