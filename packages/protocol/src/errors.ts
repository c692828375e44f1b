import { inspectCompositeError, inspectCustom, inspectRemoteError } from "./error-display.js";

/**
 * Every error ptcluster raises is a `PtclusterError` with a stable `code`.
 * Messages say what happened and what to do next; tests assert on classes and codes.
 */
export class PtclusterError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** A value could not be serialised; `path` names the offending part (`args[0].fn`, `result.cb`). */
export class SerializationError extends PtclusterError {
  readonly path: string;
  /** What is wrong with the value at `path`, and what to do instead. */
  readonly reason: string;
  /** Set when an engine could not send a task's value back. */
  readonly engineId: number | undefined;
  /** For a map: the index, in the input, of the item whose result could not be sent. */
  readonly item: number | undefined;
  constructor(
    path: string,
    reason: string,
    options?: { cause?: unknown; engineId?: number | undefined; item?: number | undefined },
  ) {
    const from =
      options?.engineId === undefined
        ? ""
        : ` back from engine ${options.engineId}${options.item === undefined ? "" : ` (item ${options.item})`}`;
    super("ERR_PTC_UNSERIALIZABLE", `Cannot send \`${path}\`${from}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
    this.engineId = options?.engineId;
    this.item = options?.item;
  }
}

/** An option was given a value it cannot take. */
export class InvalidOptionError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_INVALID_OPTION", message);
  }
}

/** A connection file is missing, unreadable, malformed or too widely readable. */
export class ConnectionFileError extends PtclusterError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "ERR_PTC_CONNECTION_FILE", message, options);
    this.file = file;
  }
}

/** No cluster is running for the requested profile. */
export class NoClusterError extends ConnectionFileError {
  readonly profile: string;
  constructor(profile: string, file: string) {
    super(
      file,
      `No cluster is running for profile \`${profile}\` (no ${file}). Start one with \`ptcluster start -n 4${profile === "default" ? "" : ` --profile ${profile}`}\`.`,
      { code: "ERR_PTC_NO_CLUSTER" },
    );
    this.profile = profile;
  }
}

/** A malformed or unexpected message, or a peer that broke the protocol. */
export class ProtocolError extends PtclusterError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "ERR_PTC_PROTOCOL", message, options);
  }
}

/** The peer refused our messages: the keys differ. */
export class AuthenticationError extends ProtocolError {
  constructor(message: string) {
    super(message, { code: "ERR_PTC_AUTH" });
  }
}

/** The two sides speak different major protocol versions. */
export class VersionMismatchError extends PtclusterError {
  readonly localVersion: string;
  readonly remoteVersion: string;
  constructor(message: string, localVersion: string, remoteVersion: string) {
    super("ERR_PTC_VERSION", message);
    this.localVersion = localVersion;
    this.remoteVersion = remoteVersion;
  }
}

/** The controller went away (or never answered) while work was pending. */
export class HubLostError extends PtclusterError {
  /** The reason the controller gave when it said it was shutting down; undefined when it went without a word. */
  readonly notice: string | undefined;
  constructor(message: string, options?: { cause?: unknown; notice?: string }) {
    super("ERR_PTC_HUB_LOST", message, options);
    this.notice = options?.notice;
  }
}

/** The client was closed while this work was pending. */
export class ClientClosedError extends PtclusterError {
  constructor(message = "The client was closed before this result arrived.") {
    super("ERR_PTC_CLIENT_CLOSED", message);
  }
}

/**
 * The controller took this client for gone (it sent nothing, not even its pings, for longer than
 * the cluster's `--client-timeout`: its event loop was held by synchronous work, or the process
 * was stopped) and cancelled its tasks; what was pending then fails with this, and the client
 * connects again by itself, so the next call works.
 */
export class ClientDroppedError extends PtclusterError {
  constructor(reason?: string) {
    super(
      "ERR_PTC_CLIENT_DROPPED",
      `The controller took this client for gone${reason ? ` (${reason})` : ""} and cancelled its pending tasks and calls; the client has connected again, so run the call again. ` +
        "A client sends pings while its event loop runs: split long synchronous work, or start the cluster with a larger --client-timeout.",
    );
  }
}

/** The view has no engines to run on. */
export class NoEnginesError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_NO_ENGINES", message);
  }
}

/** A target engine id is not registered. */
export class UnknownEngineError extends PtclusterError {
  readonly engineId: number;
  constructor(engineId: number, known: readonly number[]) {
    super(
      "ERR_PTC_UNKNOWN_ENGINE",
      `Engine ${engineId} is not registered (registered: ${known.length ? `[${known.join(", ")}]` : "none"}). Use an id from \`rc.ids\`.`,
    );
    this.engineId = engineId;
  }
}

/** The engine running this task died or was declared dead. */
export class EngineLostError extends PtclusterError {
  readonly engineId: number;
  constructor(engineId: number, message?: string) {
    super(
      "ERR_PTC_ENGINE_LOST",
      message ??
        `Engine ${engineId} died while running this task. Other engines are unaffected; re-run the task or check the engine's log.`,
    );
    this.engineId = engineId;
  }
}

/** The task ran longer than its `timeout`. */
export class TaskTimeoutError extends PtclusterError {
  readonly engineId: number | undefined;
  readonly timeoutMs: number;
  constructor(timeoutMs: number, engineId?: number) {
    super(
      "ERR_PTC_TASK_TIMEOUT",
      `The task ran longer than its timeout of ${timeoutMs} ms${engineId === undefined ? "" : ` on engine ${engineId}`} and was stopped.`,
    );
    this.engineId = engineId;
    this.timeoutMs = timeoutMs;
  }
}

/** The task was cancelled (AbortSignal, `abort()`, or a closed iterator). */
export class TaskCancelledError extends PtclusterError {
  /** The engine it was cancelled on (undefined: it never reached one). */
  readonly engineId: number | undefined;
  constructor(message = "The task was cancelled.", options?: { cause?: unknown; engineId?: number | undefined }) {
    super("ERR_PTC_TASK_CANCELLED", message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.engineId = options?.engineId;
  }
}

/** An engine threw: the remote error's name, message and stack are kept apart from the local stack. */
export class RemoteError extends PtclusterError {
  readonly engineId: number;
  readonly remoteName: string;
  readonly remoteMessage: string;
  readonly remoteStack: string;
  readonly remoteCode: string | undefined;
  /** For a map: the index, in the input, of the item that failed. */
  readonly item: number | undefined;
  constructor(
    info: {
      engineId: number;
      name: string;
      message: string;
      stack: string;
      code?: string | undefined;
      item?: number | undefined;
    },
    message?: string,
    code = "ERR_PTC_REMOTE",
  ) {
    super(
      code,
      message ??
        `${info.name} on engine ${info.engineId}${info.item === undefined ? "" : ` (item ${info.item})`}: ${info.message}`,
    );
    this.engineId = info.engineId;
    this.remoteName = info.name;
    this.remoteMessage = info.message;
    this.remoteStack = info.stack;
    this.remoteCode = info.code;
    this.item = info.item;
  }
  /** Printed short: the message and the first frame on the engine (see error-display.ts). */
  [inspectCustom](_depth: number, options: object): string {
    return inspectRemoteError(this, options);
  }
}

/** Shipped code used a name that is defined neither in the function, its arguments, `scope`, nor the engine namespace. */
export class UndefinedNameError extends RemoteError {
  readonly undefinedName: string;
  /** Set when the name was used inside a function shipped as a value (pushed, scoped or passed as an argument). */
  readonly shippedFunction: { name: string; path: string } | undefined;
  constructor(
    info: { engineId: number; name: string; message: string; stack: string; item?: number | undefined },
    undefinedName: string,
    shippedFunction?: { name: string; path: string },
  ) {
    const n = undefinedName;
    const where = shippedFunction ? `, in \`${shippedFunction.name}\` (sent as \`${shippedFunction.path}\`)` : "";
    const why = shippedFunction
      ? "Functions travel as source, without the variables they close over or the imports of their module: "
      : "Shipped functions see only their arguments, their `scope` and the engine's namespace: ";
    const alt = shippedFunction
      ? ` Or define \`${shippedFunction.name}\` on the engines with \`execute\`, or export it and ship \`moduleFunction(url, "${shippedFunction.name}")\`, whose module the engines import.`
      : "";
    super(
      info,
      `\`${n}\` is not defined on engine ${info.engineId}${where}. ${why}` +
        `pass it as an argument, ship it with \`view.with({ scope: { ${n} } })\`, or \`push({ ${n} })\` it to the engines first (functions too: they travel as source).${alt}`,
      "ERR_PTC_UNDEFINED_NAME",
    );
    this.undefinedName = undefinedName;
    this.shippedFunction = shippedFunction;
  }
}

/** Several engines of a view failed; `errors` has one entry per failed engine, `results` what the others returned. */
export class CompositeError extends PtclusterError {
  readonly errors: Error[];
  readonly results: unknown[];
  constructor(errors: Error[], results: unknown[]) {
    const lines = errors.slice(0, 5).map((e) => `  [${(e as { engineId?: number }).engineId ?? "?"}] ${e.message}`);
    super(
      "ERR_PTC_COMPOSITE",
      `${errors.length} of ${results.length} engines failed:\n${lines.join("\n")}${errors.length > 5 ? `\n  … and ${errors.length - 5} more` : ""}`,
    );
    this.errors = errors;
    this.results = results;
  }
  /** Printed short: one line per failed engine (see error-display.ts). */
  [inspectCustom](_depth: number, options: object): string {
    return inspectCompositeError(this, options);
  }
}

/** `ptcluster start` or `startCluster()` could not bring the cluster up. */
export class ClusterStartError extends PtclusterError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "ERR_PTC_START", message, options);
  }
}

/**
 * `startCluster()` could not load the package that runs controllers (`@ptcluster/cli`, an
 * optional peer dependency of `@ptcluster/client`): it is not installed, or too old to have the
 * `@ptcluster/cli/controller` entry point.
 */
export class MissingPeerError extends ClusterStartError {
  /** the package to install */
  readonly peer: string;
  constructor(peer: string, message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: "ERR_PTC_MISSING_PEER" });
    this.peer = peer;
  }
}

/** `rc.getResult(id)` found nothing under that id. */
export class UnknownTaskError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_UNKNOWN_TASK", message);
  }
}

/** A message (a task's arguments, a result, a push) is larger than the cluster allows. */
export class MessageTooLargeError extends PtclusterError {
  readonly bytes: number;
  readonly limit: number;
  constructor(what: string, bytes: number, limit: number) {
    super(
      "ERR_PTC_MESSAGE_TOO_LARGE",
      `${what} is ${formatBytes(bytes)}, more than the cluster's limit of ${formatBytes(limit)} per message. ` +
        "Send it in parts (scatter, or several pushes), or start the cluster with a larger --max-message-mb.",
    );
    this.bytes = bytes;
    this.limit = limit;
  }
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`;
}

/** A task exhausted its engine's memory; the engine replaced its executor and lives on. */
export class ResourceLimitError extends PtclusterError {
  readonly engineId: number;
  constructor(engineId: number, message: string) {
    super("ERR_PTC_OUT_OF_MEMORY", message);
    this.engineId = engineId;
  }
}

/**
 * A task ended its own executor (`process.exit` in its code, or a crash of the executor thread
 * while it ran). The engine replaced the executor (its namespace is empty again) and lives on;
 * the task is not run again unless its `retries` ask.
 */
export class TaskCrashedError extends PtclusterError {
  readonly engineId: number;
  constructor(engineId: number, message?: string) {
    super(
      "ERR_PTC_TASK_CRASHED",
      message ??
        `The task ended engine ${engineId}'s executor (did it call process.exit?). The engine started a fresh executor; its namespace is empty.`,
    );
    this.engineId = engineId;
  }
}

/** A task's `after` or `follow` dependency failed, or its `follow` dependencies ran on different engines. */
export class DependencyError extends PtclusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_PTC_DEPENDENCY", message, options);
  }
}

/**
 * A pipeline was used in a way it cannot be: run a second time (its input, an async generator
 * perhaps, can be read only once), or given no stage.
 */
export class PipelineUsageError extends PtclusterError {
  constructor(message: string) {
    super("ERR_PTC_PIPELINE_USAGE", message);
  }
}

/**
 * A value that travelled through a same-host shared-memory file (`/dev/shm`) failed its check:
 * the file's content, name or length is not what its sender tagged with the cluster key. The
 * value is refused (a task that would have received it never runs).
 */
export class ShmTamperedError extends ProtocolError {
  readonly file: string;
  constructor(file: string, what: string) {
    super(
      `The shared-memory file ${file} was refused: ${what}. Something other than the sender changed it; the value is not used. ` +
        "Check who can write to the cluster's shared-memory folder, or start the cluster with --shm-threshold-kb 0 to send every value over the network.",
      { code: "ERR_PTC_SHM_TAMPERED" },
    );
    this.file = file;
  }
}

/**
 * A shared-memory reference reached a process that cannot read it: the file is gone (removed by a
 * sweep after its receiver or sender was declared gone, or read already), or this process is not on
 * the controller's host.
 */
export class ShmUnavailableError extends ProtocolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { code: "ERR_PTC_SHM_UNAVAILABLE", ...options });
  }
}
