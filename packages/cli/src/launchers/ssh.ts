import { execa } from "execa";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterStartError, InvalidOptionError } from "@ptcluster/protocol";
import { isLoopback } from "../util/exposure.js";
import {
  engineArgs,
  engineCommand,
  newTag,
  shellQuote,
  splitArgs,
  type EngineGroup,
  type LaunchContext,
  type Launcher,
  type LauncherSettings,
} from "./launcher.js";
import { readLog } from "./local.js";
import { tunablesShellPrefix } from "./malloc-tunables.js";

/** One entry of `--hosts`: where to ssh, and how many engines it takes. */
export interface SshHost {
  /** `host` or `user@host`, as ssh takes it */
  target: string;
  count: number;
}

/** Parses `--hosts b:4,c:4` (also `user@b`, `[fe80::1]:2`; a host without a count takes 1). */
export function parseHosts(spec: string | undefined): SshHost[] {
  if (!spec || !spec.trim())
    throw new InvalidOptionError(
      "`--engines ssh` needs `--hosts`, as `--hosts b:4,c:4` (host:engines, comma-separated)",
    );
  return spec.split(",").map((raw) => {
    const item = raw.trim();
    const m = /^(?<target>(?:[^@\s:[\]]+@)?(?:\[[^\]]+\]|[^:\s[\]]+))(?::(?<count>\d+))?$/.exec(item);
    if (!m?.groups)
      throw new InvalidOptionError(
        `Expected each of \`--hosts\` to be host[:count] or user@host[:count], got \`${item}\``,
      );
    const count = m.groups["count"] === undefined ? 1 : Number(m.groups["count"]);
    if (!Number.isInteger(count) || count < 1)
      throw new InvalidOptionError(`Expected a positive engine count in \`--hosts\`, got \`${item}\``);
    return { target: (m.groups["target"] as string).replace(/^(.*@)?\[(.*)\]$/, "$1$2"), count };
  });
}

/**
 * Starts each engine over OpenSSH: `ssh HOST exec ptcluster engine --file -`. The engine
 * connection file travels on the session's standard input and is never written on the remote
 * host; the session stays open as the engine's lifeline, so when the cluster stops (or this
 * controller dies and its ssh processes go), the engine's standard input ends and it exits.
 * Engines are placed over the hosts in order, each host up to its count, then round again.
 */
export class SshLauncher implements Launcher {
  readonly name = "ssh";
  private readonly hosts: SshHost[];
  /** Engines placed on each host so far (by index into `hosts`). */
  private readonly placed: number[];

  constructor(
    private readonly ctx: LaunchContext,
    private readonly settings: LauncherSettings,
  ) {
    this.hosts = parseHosts(settings.hosts);
    this.placed = this.hosts.map(() => 0);
    const remoteOnly = this.hosts.some((h) => !/^(.*@)?(localhost|127\.\d+\.\d+\.\d+|::1)$/.test(h.target));
    if (remoteOnly && isLoopback(ctx.ip)) {
      throw new ClusterStartError(
        `Engines on other hosts cannot reach a controller bound to ${ctx.ip}. Start with \`--ip\` set to an address those hosts reach (with --curve), e.g. \`ptcluster start --engines ssh --hosts ${settings.hosts} --ip 10.0.0.1 --curve\`.`,
      );
    }
  }

  /** The default count: every host's engines. */
  get capacity(): number {
    return this.hosts.reduce((a, h) => a + h.count, 0);
  }

  async start(count: number): Promise<EngineGroup[]> {
    const out: EngineGroup[] = [];
    for (let i = 0; i < count; i++) out.push(this.startOn(this.nextHost()));
    return out;
  }

  /** The first host below its count, or (all full) the least loaded relative to its count. */
  private nextHost(): SshHost {
    let best = 0;
    for (let i = 0; i < this.hosts.length; i++) {
      const h = this.hosts[i] as SshHost;
      if ((this.placed[i] as number) < h.count) {
        best = i;
        break;
      }
      if ((this.placed[i] as number) / h.count < (this.placed[best] as number) / (this.hosts[best] as SshHost).count)
        best = i;
    }
    this.placed[best] = (this.placed[best] as number) + 1;
    return this.hosts[best] as SshHost;
  }

  private startOn(host: SshHost): EngineGroup {
    const tag = newTag("ssh");
    const errFile = join(this.ctx.logDir, `engine-${tag}.stderr`);
    const outFile = join(this.ctx.logDir, `engine-${tag}.stdout`);
    const remote = [
      ...engineCommand(this.settings.remoteCommand),
      ...engineArgs(this.ctx, tag, "-", ["--exit-on-stdin-close"]),
    ];
    const sshArgs = [
      ...splitArgs(this.settings.sshOptions),
      // Never prompt (a prompt would hang `start`); keep the session alive through short cuts only.
      "-o",
      "BatchMode=yes",
      "-o",
      "ServerAliveInterval=5",
      "-o",
      "ServerAliveCountMax=6",
      "-T",
      host.target,
      // The remote shell merges huge pages into the GLIBC_TUNABLES set there (malloc-tunables.ts).
      `${tunablesShellPrefix()}exec ${remote.map(shellQuote).join(" ")}`,
    ];
    const child = execa(this.settings.sshCommand || "ssh", sshArgs, {
      stdin: "pipe",
      stdout: { file: outFile },
      stderr: { file: errFile },
      reject: false,
      cleanup: false,
    });
    // The key goes over the encrypted session, on standard input; the pipe then stays open.
    child.stdin?.on("error", () => undefined);
    child.stdin?.write(`${JSON.stringify(JSON.parse(readFileSync(this.ctx.engineFile, "utf8")))}\n`);
    const exited = child.then((r) => (r.signal ?? r.exitCode ?? 0) as number | string);
    return {
      tag,
      count: 1,
      where: `ssh ${host.target}`,
      pids: child.pid ? [child.pid] : [],
      exited,
      output: () => readLog(errFile),
      kill: (signal = "SIGTERM") => {
        child.stdin?.end();
        child.kill(signal);
      },
      relaunch: async () => [this.startOn(host)],
    };
  }
}
