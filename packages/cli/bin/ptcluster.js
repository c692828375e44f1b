#!/usr/bin/env node
// The `ptcluster` command as npm links it. It is a committed file, not dist/bin.js itself:
// `npm ci` links bins before the `prepare` script builds dist/, and a bin whose target does
// not exist yet is not linked, so `npx ptcluster` would fall back to the public registry.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/bin.js", import.meta.url);
if (!existsSync(entry)) {
  const root = fileURLToPath(new URL("../../..", import.meta.url));
  process.stderr.write(
    `ptcluster: the command line is not built yet (${fileURLToPath(entry)} is missing). Run \`npm run build\` in ${root}.\n`,
  );
  process.exit(1);
}
await import(entry.href);
