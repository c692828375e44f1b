import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * A pino logger. With `file`, logs go there (created with mode 0600); otherwise to stderr.
 * Components add bindings with `logger.child({ component: "hub" })`.
 */
export function createLogger(options: { name: string; file?: string | undefined; level?: string | undefined }): Logger {
  const level = options.level ?? process.env["PTCLUSTER_LOG_LEVEL"] ?? "info";
  const dest = options.file
    ? pino.destination({ dest: options.file, mkdir: true, sync: false, mode: 0o600 })
    : pino.destination({ dest: 2, sync: true });
  return pino({ name: options.name, level, base: { pid: process.pid } }, dest);
}

/** A logger that writes nothing (clients, by default, stay silent). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
