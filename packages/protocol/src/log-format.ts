/** pino's numeric levels, by name. */
const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** ANSI colours (foreground, reset with 39): the caller decides whether the terminal wants them. */
const GRAY = 90;
const COLORS: Record<string, number> = { TRACE: GRAY, DEBUG: GRAY, INFO: 32, WARN: 33, ERROR: 31, FATAL: 31 };
const paint = (code: number, text: string) => `\u001b[${code}m${text}\u001b[39m`;
/** Fields every line has, shown in its own place rather than as `key=value`. */
const PLACED = new Set(["time", "level", "msg", "pid", "hostname", "name", "component", "engineId", "err"]);

const pad2 = (n: number) => String(n).padStart(2, "0");

function clock(ms: unknown): string {
  const d = new Date(typeof ms === "number" ? ms : Date.now());
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function show(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/**
 * One pino JSON line as a line for a person at a terminal:
 * `12:04:05.123 INFO  engine[3] engine registered reason=…`, an error's stack indented below.
 * Lines that are not pino's JSON pass through unchanged.
 */
export function formatLogLine(line: string, colors = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (o === null || typeof o !== "object") return line;
  const levelName = LEVELS[o["level"] as number] ?? String(o["level"]);
  const level = levelName.padEnd(5);
  const who = `${typeof o["component"] === "string" ? o["component"] : (o["name"] ?? "")}${o["engineId"] !== undefined ? `[${String(o["engineId"])}]` : ""}`;
  const fields = Object.entries(o)
    .filter(([k]) => !PLACED.has(k))
    .map(([k, v]) => `${k}=${show(v)}`);
  let out = `${clock(o["time"])} ${colors ? paint(COLORS[levelName] ?? 39, level) : level} ${who ? `${who} ` : ""}${String(o["msg"] ?? "")}`;
  if (fields.length) out += ` ${colors ? paint(GRAY, fields.join(" ")) : fields.join(" ")}`;
  const err = o["err"] as { stack?: unknown; message?: unknown } | undefined;
  if (err && typeof err === "object")
    out += `\n    ${String(err.stack ?? err.message ?? show(err)).replace(/\n/g, "\n    ")}`;
  return `${out}\n`;
}
