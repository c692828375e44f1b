/**
 * How errors that come from engines look when printed (`util.inspect`: the REPL, `console.log`,
 * a script that crashes on one). Node's default shows, for every engine, the whole error with its
 * local stack (ptcluster's message loop, never the caller's code) and the engine's stack as a
 * quoted string: about 60 lines per engine, the same lines on every engine. These show one line
 * per engine and the first frame on the engine; the whole error stays on the object
 * (`.errors`, `.remoteStack`, `.stack`). No runtime import of ./errors.js: it imports this file.
 */

/** `util.inspect.custom`, without importing `node:util` into every user of the error classes. */
export const inspectCustom: unique symbol = Symbol.for("nodejs.util.inspect.custom");

/** At most this many engines get a line of their own; the rest are named on one line. */
const MAX_ENGINE_LINES = 20;

/** What `util.inspect` passes a custom inspector, as far as these use it. */
interface InspectOptions {
  stylize?: (text: string, style: string) => string;
}

/** The fields of a `RemoteError` read here. */
interface RemoteLike extends Error {
  code: string;
  engineId: number;
  remoteName: string;
  remoteMessage: string;
  remoteStack: string;
  item: number | undefined;
}

function isRemote(e: unknown): e is RemoteLike {
  return (
    e instanceof Error &&
    typeof (e as Partial<RemoteLike>).remoteStack === "string" &&
    typeof (e as Partial<RemoteLike>).engineId === "number"
  );
}

/** The first `at …` line of a stack, trimmed. */
export function firstFrame(stack: string): string | undefined {
  for (const line of stack.split("\n")) if (/^\s+at /.test(line)) return line.trim();
  return undefined;
}

function firstLine(text: string): string {
  const i = text.indexOf("\n");
  return i < 0 ? text : `${text.slice(0, i)} …`;
}

function grey(options: InspectOptions | undefined, text: string): string {
  return options?.stylize ? options.stylize(text, "undefined") : text;
}

function frameLine(e: RemoteLike, options: InspectOptions | undefined): string[] {
  const frame = firstFrame(e.remoteStack);
  return frame ? [grey(options, `    ${frame} (engine ${e.engineId})`)] : [];
}

/** A `RemoteError`: its message, the first frame on the engine, and where the rest is. */
export function inspectRemoteError(e: RemoteLike, options?: InspectOptions): string {
  return [
    `${e.name} [${e.code}]: ${e.message}`,
    ...frameLine(e, options),
    grey(options, "  (the whole stack on the engine: .remoteStack)"),
  ].join("\n");
}

/**
 * A `CompositeError`: one line per failed engine (what its code threw), the first frame on an
 * engine, and ptcluster's advice once when it has some (an `UndefinedNameError` says how to pass the name).
 */
export function inspectCompositeError(
  e: Error & { code: string; errors: Error[]; results: unknown[] },
  options?: InspectOptions,
): string {
  const lines = [`${e.name}: ${e.errors.length} of ${e.results.length} engines failed; each one's error is in .errors`];
  const shown = e.errors.slice(0, MAX_ENGINE_LINES);
  for (const err of shown) {
    const id = (err as { engineId?: number }).engineId ?? "?";
    if (isRemote(err))
      lines.push(
        `  [${id}] ${err.remoteName}: ${firstLine(err.remoteMessage)}${err.item === undefined ? "" : ` (item ${err.item})`}`,
      );
    else lines.push(`  [${id}] ${err.name}: ${firstLine(err.message)}`);
  }
  if (e.errors.length > shown.length) {
    const rest = e.errors.slice(shown.length).map((err) => (err as { engineId?: number }).engineId ?? "?");
    lines.push(`  … and ${rest.length} more: engines ${rest.join(", ")}`);
  }
  const remote = e.errors.find(isRemote);
  if (remote) lines.push(...frameLine(remote, options));
  // A plain RemoteError's message only repeats its line above; a subclass's explains what to do.
  const advised = e.errors.find((err) => isRemote(err) && err.code !== "ERR_PTC_REMOTE");
  if (advised) lines.push(`  ${advised.name}: ${firstLine(advised.message)}`);
  return lines.join("\n");
}
