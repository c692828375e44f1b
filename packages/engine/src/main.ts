#!/usr/bin/env node
/**
 * Lean entry point that launchers spawn for each engine (`ptcluster engine` does the same through
 * the CLI): no argument-parsing library to load, so engines start sooner.
 */
import { parseArgs } from "node:util";
import { runEngine } from "./run-engine.js";

const { values } = parseArgs({
  options: {
    file: { type: "string" },
    url: { type: "string" },
    key: { type: "string" },
    profile: { type: "string" },
    "cluster-id": { type: "string" },
    concurrency: { type: "string" },
    id: { type: "string" },
    "orphan-timeout": { type: "string" },
    "log-dir": { type: "string" },
    "max-memory": { type: "string" },
    "id-base": { type: "string" },
    "launch-tag": { type: "string" },
    "exit-on-stdin-close": { type: "boolean" },
    "peer-ip": { type: "string" },
  },
  strict: true,
});
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
try {
  process.exitCode = await runEngine({
    file: values.file,
    url: values.url,
    key: values.key,
    profile: values.profile,
    clusterId: values["cluster-id"],
    concurrency: num(values.concurrency),
    id: num(values.id),
    orphanTimeout: num(values["orphan-timeout"]),
    logDir: values["log-dir"],
    maxMemory: num(values["max-memory"]),
    idBase: num(values["id-base"]),
    launchTag: values["launch-tag"],
    exitOnStdinClose: values["exit-on-stdin-close"],
    peerIp: values["peer-ip"],
  });
} catch (err) {
  process.stderr.write(`ptcluster engine: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
