import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProfilePaths } from "../files/profile.js";
import { deriveShmKey } from "./shm-ref.js";
import type { ShmConfig } from "./shm-io.js";

/** What the controller writes into the connection files: its shared-memory folder and host token. */
export interface ShmAdvert {
  dir: string;
  /** The content of `<dir>/host`: a process that reads the same is on the controller's host. */
  token: string;
  /** Frames of this many bytes or more go through a file. */
  threshold: number;
}

/** Set to `0` in a client's or an engine's environment to keep it off the shared-memory path. */
export const SHM_ENV = "PTCLUSTER_SHM";
const TOKEN_FILE = "host";
/** `<writer>_<32 hex>_<receiver>`: who wrote a file and who will read it (see shm-ref.ts). */
const FILE = /^(e\d{1,10}|c[0-9a-f]{1,64})_[0-9a-f]{32}_(e\d{1,10}|c[0-9a-f]{1,64}|any)$/;

/** `/dev/shm` where it exists (tmpfs: files never touch a disk), else the system's temp folder. */
function shmBase(): string {
  try {
    if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // no /dev/shm (macOS)
  }
  return tmpdir();
}

const uid = () => process.getuid?.() ?? 0;

/**
 * The cluster's shared-memory folder: one per profile and cluster id (so `ptcluster stop` and the
 * next controller find what a killed one left) and per user. Its files have unguessable names.
 */
export function shmDirFor(paths: ProfilePaths): string {
  const id = createHash("sha256").update(`${paths.dir}\0${paths.clusterId}`).digest("hex").slice(0, 20);
  return join(shmBase(), `ptcluster-${uid()}-${id}`);
}

/** Whether `dir` is a real folder of this user that no one else can enter. */
function ownPrivateDir(dir: string): boolean {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  return st !== undefined && st.isDirectory() && !st.isSymbolicLink() && st.uid === uid() && (st.mode & 0o077) === 0;
}

/**
 * The controller's side: it makes the folder (0700) with its host token, sweeps what an earlier
 * controller of this cluster left, reclaims the files of gone clients and engines, and removes the
 * folder when it stops.
 */
export class ShmHostDir {
  private constructor(readonly advert: ShmAdvert) {}

  /** Throws when the folder cannot be made ours (someone else's folder or a link in its place). */
  static open(paths: ProfilePaths, threshold: number): ShmHostDir {
    const dir = shmDirFor(paths);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.isSymbolicLink() || st.uid !== uid())
        throw new Error(`${dir} exists and is not a folder of this user; remove it to use shared memory`, {
          cause: err,
        });
      chmodSync(dir, 0o700);
    }
    sweepDir(dir);
    const token = randomBytes(16).toString("hex");
    writeFileSync(join(dir, TOKEN_FILE), token, { mode: 0o600 });
    return new ShmHostDir({ dir, token, threshold });
  }

  /** Removes the files written by or for a party that `alive` says is gone; returns how many. */
  reclaim(alive: (party: string) => boolean, now = Date.now()): number {
    let n = 0;
    for (const name of readdirSafe(this.advert.dir)) {
      const m = FILE.exec(name);
      if (!m) continue;
      const [, writer, receiver] = m as unknown as [string, string, string];
      const file = join(this.advert.dir, name);
      if (reclaimable(writer, receiver, alive, () => now - (statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0)))
        n += unlinkQuietly(file);
    }
    return n;
  }

  close(): void {
    rmSync(this.advert.dir, { recursive: true, force: true });
  }
}

/** What `ptcluster stop` does after the processes are gone: the folder and anything in it go. */
export function removeShmDir(paths: ProfilePaths): void {
  const dir = shmDirFor(paths);
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory() && st.uid === uid()) rmSync(dir, { recursive: true, force: true });
}

/** How long a result written for a client that left may wait for the controller to keep its bytes (ms). */
export const RESCUE_GRACE_MS = 5_000;
/** How long a file from an engine that died may wait for its reader, which may hold its reference already (ms). */
export const ORPHAN_MS = 60_000;

/**
 * Whether a file is of no use any more. A client that went has its tasks cancelled: what it wrote
 * goes. An engine that went reads nothing more: what was written for it goes. What an engine wrote
 * for a client that went goes after a grace period, in which the controller, keeping that result
 * for `rc.getResult`, reads it first. What a dead engine wrote for a client still here may be a
 * result on its way to it: it goes only when old.
 */
export function reclaimable(
  writer: string,
  receiver: string,
  alive: (party: string) => boolean,
  ageMs: () => number,
): boolean {
  if (writer[0] === "c" && !alive(writer)) return true;
  if (receiver === "any") return false;
  if (receiver[0] === "e") return !alive(receiver);
  if (!alive(receiver)) return ageMs() > RESCUE_GRACE_MS;
  return !alive(writer) && ageMs() > ORPHAN_MS;
}

function sweepDir(dir: string): void {
  for (const name of readdirSafe(dir)) rmSync(join(dir, name), { recursive: true, force: true });
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function unlinkQuietly(file: string): number {
  try {
    unlinkSync(file);
    return 1;
  } catch {
    return 0;
  }
}

/**
 * A client's or an engine's test of the same-host path: the connection file names the folder and
 * the token; a process that finds the folder private and ours, holding that token, shares the
 * controller's memory. Undefined when it does not, when the cluster has it off, or with
 * `PTCLUSTER_SHM=0`.
 */
export function probeShm(info: { key: string; shm?: ShmAdvert | undefined }): ShmConfig | undefined {
  const advert = info.shm;
  if (!advert || !(advert.threshold > 0) || process.env[SHM_ENV] === "0") return undefined;
  try {
    if (!ownPrivateDir(advert.dir)) return undefined;
    if (readFileSync(join(advert.dir, TOKEN_FILE), "utf8") !== advert.token) return undefined;
  } catch {
    return undefined;
  }
  return { dir: advert.dir, key: deriveShmKey(Buffer.from(info.key, "hex")), threshold: advert.threshold };
}
