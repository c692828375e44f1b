import type CliProgress from "cli-progress";
import { cliProgress } from "../views/load-cli-progress.js";
import type { StageStats } from "@ptcluster/protocol";

/**
 * One progress bar per stage on stderr (`progress: true`), drawn from the controller's stats, and
 * only when stderr is a terminal, so logs and CI output stay clean (as a map's bar, views/progress.ts).
 */
export class StageBars {
  private readonly multi: CliProgress.MultiBar | undefined;
  private readonly bars: CliProgress.SingleBar[] = [];
  private stopped = false;

  /** `names` label the bars; `known(i)` is the number of items stage `i` will see, when known. */
  constructor(
    names: readonly string[],
    private readonly known: (stage: number) => number | undefined,
    stream: NodeJS.WriteStream = process.stderr,
  ) {
    if (!stream.isTTY) return;
    const width = Math.min(24, Math.max(...names.map((n) => n.length)));
    this.multi = new (cliProgress().MultiBar)(
      {
        stream,
        format: "{name} {bar} {value}/{total} | {inFlight} in flight | {failed} failed | {rate}/s | p50 {p50} ms",
        barsize: 16,
        hideCursor: true,
        clearOnComplete: false,
        fps: 10,
      },
      cliProgress().Presets.shades_classic,
    );
    names.forEach((n, i) => {
      const label = `${i}:${n}`.slice(0, width + 3).padEnd(width + 3);
      this.bars.push(
        (this.multi as CliProgress.MultiBar).create(known(i) ?? 0, 0, {
          name: label,
          inFlight: 0,
          failed: 0,
          rate: 0,
          p50: 0,
        }),
      );
    });
  }

  update(stats: readonly StageStats[]): void {
    if (!this.multi || this.stopped) return;
    stats.forEach((s, i) => {
      const bar = this.bars[i];
      if (!bar) return;
      // An unknown total (a generator's, or after a flatMap) grows with what the stage has seen.
      bar.setTotal(this.known(i) ?? s.done + s.inFlight);
      bar.update(s.done, {
        inFlight: s.inFlight,
        failed: s.failed,
        rate: Math.round(s.itemsPerSec).toLocaleString("en-US"),
        p50: Math.round(s.p50Ms * 10) / 10,
      });
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.multi?.stop();
  }
}
