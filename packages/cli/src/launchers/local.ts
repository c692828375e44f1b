import { execa, type Options } from "execa";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tunablesEnv } from "./malloc-tunables.js";
import { engineArgs, engineCommand, newTag, type EngineGroup, type LaunchContext, type Launcher } from "./launcher.js";

/** Reads a log file, or "" if there is none yet. */
export function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** Starts engines as child processes of this machine, their stdout and stderr in the profile's log directory. */
export class LocalLauncher implements Launcher {
  readonly name = "local";
  constructor(private readonly ctx: LaunchContext) {}

  async start(count: number): Promise<EngineGroup[]> {
    const out: EngineGroup[] = [];
    for (let i = 0; i < count; i++) out.push(this.startOne());
    return out;
  }

  private startOne(): EngineGroup {
    const tag = newTag("local");
    const errFile = join(this.ctx.logDir, `engine-${tag}.stderr`);
    const outFile = join(this.ctx.logDir, `engine-${tag}.stdout`);
    const [cmd, ...pre] = engineCommand();
    const args = [...pre, ...engineArgs(this.ctx, tag, this.ctx.engineFile, ["--log-dir", this.ctx.logDir])];
    const options: Options = {
      stdin: "ignore",
      stdout: { file: outFile },
      stderr: { file: errFile },
      reject: false,
      cleanup: false,
      // Huge pages for the engine's large buffers (malloc-tunables.ts); the rest of the environment is inherited.
      env: tunablesEnv(),
    };
    const child = execa(cmd as string, args, options);
    const exited = child.then((r) => (r.signal ?? r.exitCode ?? 0) as number | string);
    return {
      tag,
      count: 1,
      where: "local",
      pids: child.pid ? [child.pid] : [],
      exited,
      output: () => readLog(errFile),
      kill: (signal = "SIGTERM") => void child.kill(signal),
      relaunch: async () => [this.startOne()],
    };
  }
}
