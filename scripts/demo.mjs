#!/usr/bin/env node
// `npm run demo`: start a 4-engine cluster, run examples/hello.ts against it, stop it.
import { execa } from "execa";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));
const opts = { cwd: root, stdio: "inherit" };
await execa(process.execPath, [bin, "start", "-n", "4"], opts);
try {
  await execa("npx", ["tsx", "examples/hello.ts"], opts);
} finally {
  await execa(process.execPath, [bin, "stop"], opts);
}
