import { createRequire } from "node:module";
import type CliProgress from "cli-progress";

const requireCjs = createRequire(import.meta.url);
let loaded: typeof CliProgress | undefined;

/**
 * cli-progress, loaded when the first bar is drawn (on a terminal): imported at the top, it added
 * about 30 ms to every client's start-up, and so to every `ptcluster` command that connects.
 */
export function cliProgress(): typeof CliProgress {
  return (loaded ??= requireCjs("cli-progress") as typeof CliProgress);
}
