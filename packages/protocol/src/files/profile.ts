import { homedir } from "node:os";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { InvalidOptionError } from "../errors.js";

/** Root of all ptcluster state: `$PTCLUSTER_DIR`, default `~/.ptcluster`. */
export function ptclusterDir(): string {
  return process.env["PTCLUSTER_DIR"] || join(homedir(), ".ptcluster");
}

/** Paths of one cluster's files. */
export interface ProfilePaths {
  profile: string;
  clusterId: string;
  dir: string;
  securityDir: string;
  logDir: string;
  runDir: string;
  clientFile: string;
  engineFile: string;
  stateFile: string;
  /** Extra CURVE public keys the controller accepts (one per line). */
  allowedKeysFile: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function validateName(kind: "profile" | "clusterId", value: string): string {
  if (typeof value !== "string" || (kind === "profile" ? !NAME.test(value) : value !== "" && !NAME.test(value))) {
    throw new InvalidOptionError(
      `Expected \`${kind}\` to be 1-64 letters, digits, '.', '_' or '-', got \`${String(value)}\` (${typeof value})`,
    );
  }
  return value;
}

/** Paths for `profile` (default `default`) and an optional cluster id (several clusters per profile). */
export function profilePaths(profile = "default", clusterId = ""): ProfilePaths {
  validateName("profile", profile);
  validateName("clusterId", clusterId);
  const dir = join(ptclusterDir(), `profile_${profile}`);
  const suffix = clusterId ? `-${clusterId}` : "";
  const securityDir = join(dir, "security");
  const runDir = join(dir, "run");
  return {
    profile,
    clusterId,
    dir,
    securityDir,
    logDir: join(dir, "log"),
    runDir,
    clientFile: join(securityDir, `client${suffix}.json`),
    engineFile: join(securityDir, `engine${suffix}.json`),
    stateFile: join(runDir, `cluster${suffix}.json`),
    allowedKeysFile: join(securityDir, "allowed_keys"),
  };
}

/** Creates the profile's directories, owner-only. */
export function ensureProfileDirs(paths: ProfilePaths): void {
  for (const d of [paths.dir, paths.securityDir, paths.logDir, paths.runDir])
    mkdirSync(d, { recursive: true, mode: 0o700 });
}
