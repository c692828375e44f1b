import type CliProgress from "cli-progress";
import { cliProgress } from "./load-cli-progress.js";

/**
 * A progress bar with rate and ETA on stderr, drawn only when stderr is a terminal (so logs and
 * CI output stay clean). Uses cli-progress; for an input of unknown length it shows count and rate.
 */
export class ProgressReporter {
  private readonly bar: CliProgress.SingleBar | undefined;
  private readonly started = Date.now();
  private stopped = false;

  constructor(total: number | undefined, stream: NodeJS.WriteStream = process.stderr) {
    if (!stream.isTTY) return;
    const known = total !== undefined;
    this.bar = new (cliProgress().SingleBar)(
      {
        stream,
        format: known
          ? "{bar} {percentage}% | {value}/{total} items | {rate} items/s | ETA {eta_formatted}"
          : "{value} items | {rate} items/s",
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
        fps: 10,
      },
      cliProgress().Presets.shades_classic,
    );
    this.bar.start(total ?? 0, 0, { rate: "0" });
  }

  update(done: number): void {
    if (!this.bar || this.stopped) return;
    const secs = Math.max((Date.now() - this.started) / 1000, 1e-3);
    this.bar.update(done, { rate: Math.round(done / secs).toLocaleString("en-US") });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar?.stop();
  }
}
