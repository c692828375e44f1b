import { pino, type DestinationStream, type Logger } from "pino";
import { formatLogLine } from "./log-format.js";

export type { Logger } from "pino";
export { formatLogLine } from "./log-format.js";

/**
 * How logs to stderr look: `pretty` (one readable line per entry) or `json` (pino's lines).
 * `PTCLUSTER_LOG_FORMAT` decides; by default, readable on a terminal and JSON otherwise (piped,
 * redirected to a file, read by a launcher).
 */
function stderrFormat(): "pretty" | "json" {
  const set = process.env["PTCLUSTER_LOG_FORMAT"];
  if (set === "json" || set === "pretty") return set;
  return process.stderr.isTTY ? "pretty" : "json";
}

/** Writes each pino line to stderr as a readable line, synchronously (as pino's own stderr destination). */
function prettyStderr(): DestinationStream {
  const colors = process.stderr.hasColors?.() ?? false;
  return { write: (line: string) => void process.stderr.write(formatLogLine(line, colors)) };
}

/**
 * A pino logger. With `file`, logs go there as JSON (created with mode 0600), and with `echo`
 * also to stderr as readable lines when that is a terminal (a controller in the foreground);
 * without `file`, to stderr: readable lines on a terminal, JSON when piped (see
 * `PTCLUSTER_LOG_FORMAT`). Components add bindings with `logger.child({ component: "hub" })`.
 */
export function createLogger(options: {
  name: string;
  file?: string | undefined;
  level?: string | undefined;
  echo?: boolean;
}): Logger {
  const level = options.level ?? process.env["PTCLUSTER_LOG_LEVEL"] ?? "info";
  const opts = { name: options.name, level, base: { pid: process.pid } };
  if (!options.file)
    return pino(opts, stderrFormat() === "pretty" ? prettyStderr() : pino.destination({ dest: 2, sync: true }));
  const file = pino.destination({ dest: options.file, mkdir: true, sync: false, mode: 0o600 });
  if (!options.echo || stderrFormat() !== "pretty") return pino(opts, file);
  return pino(
    opts,
    pino.multistream([
      { level: level as pino.Level, stream: file },
      { level: level as pino.Level, stream: prettyStderr() },
    ]),
  );
}

/** A logger that writes nothing (clients, by default, stay silent). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
