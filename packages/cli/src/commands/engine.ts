import { runEngine, type RunEngineOptions } from "@ptcluster/engine";

/** `ptcluster engine`: one engine in the foreground, registering with the controller of `--file` (or `--url` and `--key`). */
export async function engine(o: RunEngineOptions): Promise<void> {
  process.exitCode = await runEngine({ ...o, logDir: o.logDir ?? process.env["PTCLUSTER_ENGINE_LOG_DIR"] });
}
