import { createRequire } from "node:module";
import type * as Pino from "pino";
import type { DestinationStream, Level, Logger } from "pino";
import { formatLogLine } from "./log-format.js";

export type { Logger } from "pino";
export { formatLogLine } from "./log-format.js";

const requireCjs = createRequire(import.meta.url);
let loaded: typeof Pino.pino | undefined;
/**
 * pino, loaded when the first logger that writes is made: loading it costs about 45 ms, a sixth of
 * a CLI command's start-up, and clients (so most CLI commands) log nothing.
 */
function pino(): typeof Pino.pino {
  return (loaded ??= (requireCjs("pino") as typeof Pino).pino);
}

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
  const p = pino();
  if (!options.file)
    return p(opts, stderrFormat() === "pretty" ? prettyStderr() : p.destination({ dest: 2, sync: true }));
  const file = p.destination({ dest: options.file, mkdir: true, sync: false, mode: 0o600 });
  if (!options.echo || stderrFormat() !== "pretty") return p(opts, file);
  return p(
    opts,
    p.multistream([
      { level: level as Level, stream: file },
      { level: level as Level, stream: prettyStderr() },
    ]),
  );
}

const ignore = (): void => undefined;
/**
 * A logger that writes nothing (clients, by default, stay silent), made without loading pino. It
 * has every method pino's own silent logger has that this code base calls; a caller that needs
 * more of pino's API passes its own logger.
 */
const SILENT = {
  level: "silent",
  levelVal: Infinity,
  trace: ignore,
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  fatal: ignore,
  silent: ignore,
  child: () => SILENT,
  bindings: () => ({}),
  isLevelEnabled: () => false,
  flush: ignore,
} as unknown as Logger;

export function silentLogger(): Logger {
  return SILENT;
}
