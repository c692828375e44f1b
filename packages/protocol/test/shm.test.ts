import {
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  readFileSync,
  symlinkSync,
  mkdirSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  ORPHAN_MS,
  RESCUE_GRACE_MS,
  ShmEndpoint,
  ShmHostDir,
  ShmTamperedError,
  ShmUnavailableError,
  decodeValue,
  deriveShmKey,
  encodeRef,
  encodeValue,
  isRef,
  parseRef,
  probeShm,
  profilePaths,
  shmDirFor,
  removeShmDir,
} from "@ptcluster/protocol";

const clusterKey = randomBytes(32);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function endpoints(threshold = 4096): { a: ShmEndpoint; b: ShmEndpoint; c: ShmEndpoint; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "ptc-shm-unit-"));
  dirs.push(dir);
  const config = { dir, key: deriveShmKey(clusterKey), threshold };
  return {
    a: new ShmEndpoint(config, "c0a1"),
    b: new ShmEndpoint(config, "e1"),
    c: new ShmEndpoint(config, "e2"),
    dir,
  };
}

describe("shared-memory references", () => {
  it("round-trips a reference frame, short enough never to be mistaken for a value frame", () => {
    const ref = { name: `e3_${"ab".repeat(16)}`, length: 50 << 20, perReceiver: true, nonce: randomBytes(12) };
    const frame = encodeRef(ref);
    expect(isRef(frame)).toBe(true);
    expect(frame.length).toBeLessThan(1024);
    expect(parseRef(frame)).toEqual(ref);
    // A value frame (1 KiB or more) that starts with the magic is still a value.
    expect(isRef(Buffer.concat([frame, Buffer.alloc(1024)]))).toBe(false);
    // A name that could leave the folder is refused.
    expect(parseRef(encodeRef({ ...ref, name: "../../etc/passwd" }))).toBeUndefined();
  });

  it("moves every binary kind of a part through files, one link per receiver, each removed once read", () => {
    const { a, b, c, dir } = endpoints();
    const value = {
      buf: randomBytes(10_000),
      f64: new Float64Array(1_000).map((_, i) => i / 3),
      i16: new Int16Array(3_000).map((_, i) => i - 1500),
      small: new Uint8Array(2048).fill(7), // under the threshold: stays a frame
    };
    const part = encodeValue(value);
    const sent = a.externalize(part, ["e1", "e2"]);
    expect(sent.frames.filter(isRef)).toHaveLength(3);
    expect(readdirSync(dir)).toHaveLength(6);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    for (const receiver of [b, c]) {
      const got = receiver.materialize({
        body: Buffer.from(sent.body),
        frames: sent.frames.map((f) => Buffer.from(f)),
      });
      expect(decodeValue(got.body, got.frames)).toEqual(value);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses a file whose content, length or name changed, and a reference another key tagged", () => {
    const { a, b, dir } = endpoints();
    const bytes = randomBytes(10_000);
    const tamper = (edit: (file: string) => void) => {
      const ref = a.write(bytes, ["e1"]);
      const file = join(dir, readdirSync(dir)[0] as string);
      edit(file);
      return ref;
    };
    const flipped = tamper((f) => {
      const data = readFileSync(f);
      data[5000] = (data[5000] as number) ^ 1;
      writeFileSync(f, data);
    });
    expect(() => b.read(flipped)).toThrow(ShmTamperedError);
    const longer = tamper((f) => writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.from("x")])));
    expect(() => b.read(longer)).toThrow(expect.objectContaining({ code: "ERR_PTC_SHM_TAMPERED" }));
    // Same bytes under another name: the name is tagged.
    const ref = tamper(() => undefined);
    const parsed = parseRef(ref)!;
    const other = `c0a1_${"cd".repeat(16)}`;
    writeFileSync(join(dir, `${other}_e1`), readFileSync(join(dir, `${parsed.name}_e1`)));
    expect(() => b.read(encodeRef({ ...parsed, name: other }))).toThrow(ShmTamperedError);
    const stranger = new ShmEndpoint({ dir, key: deriveShmKey(randomBytes(32)), threshold: 1 }, "e1");
    expect(() => stranger.read(ref)).toThrow(ShmTamperedError);
    // Read (or refused) once: a second read finds nothing.
    expect(() => b.read(ref)).toThrow(ShmUnavailableError);
  });

  it("a deferred write is read once written; a writer that stops leaves its reader with ShmUnavailableError", () => {
    const { a, b, dir } = endpoints();
    const patient = new ShmEndpoint({ ...b.config, waitMs: 30 }, "e1");
    const data = randomBytes(3 << 20);
    const ref = a.write(data, ["e1"], true);
    expect(a.pending).toBe(true);
    expect(readdirSync(dir)).toHaveLength(1);
    expect(() => patient.read(ref)).toThrow(ShmUnavailableError); // nothing written yet
    const again = a.write(data, ["e1"], true);
    a.flushWrites();
    expect(b.read(again).equals(data)).toBe(true);
    // A writer killed halfway: the reader gives up after waitMs.
    const cut = a.write(data, ["e1"]);
    const file = join(
      dir,
      readdirSync(dir).find((f) => f.startsWith(parseRef(cut)!.name))!,
    );
    writeFileSync(file, readFileSync(file).subarray(0, 1 << 20));
    expect(() => patient.read(cut)).toThrow(/stopped growing/);
  });

  it("leaves a load-balanced task's file for its writer to remove (a re-run elsewhere reads it again)", () => {
    const { a, b, c, dir } = endpoints();
    const data = randomBytes(8192);
    const part = a.externalize({ body: Buffer.alloc(0), frames: [data] }, "any");
    expect(b.materialize(part).frames[0]).toEqual(data);
    expect(c.materialize(part).frames[0]).toEqual(data);
    const files = a.sharedFiles(part);
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(readdirSync(dir));
    ShmEndpoint.remove(files);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("the controller's shared-memory folder", () => {
  it("is private, proves the host to a prober, reclaims the files of gone parties and sweeps on open", () => {
    process.env["PTCLUSTER_DIR"] = mkdtempSync(join(tmpdir(), "ptc-shm-prof-"));
    dirs.push(process.env["PTCLUSTER_DIR"]);
    const paths = profilePaths("default", `unit${process.pid}`);
    const host = ShmHostDir.open(paths, 4096);
    try {
      expect(statSync(host.advert.dir).mode & 0o777).toBe(0o700);
      const info = { key: clusterKey.toString("hex"), shm: host.advert };
      const config = probeShm(info)!;
      expect(config.dir).toBe(host.advert.dir);
      expect(probeShm({ ...info, shm: { ...host.advert, token: "0".repeat(32) } })).toBeUndefined();
      expect(probeShm({ ...info, shm: { ...host.advert, threshold: 0 } })).toBeUndefined();
      const client = new ShmEndpoint(config, "cabc");
      const engine = new ShmEndpoint(config, "e4");
      client.write(randomBytes(5000), ["e4"]);
      client.write(randomBytes(5000), "any");
      engine.write(randomBytes(5000), ["cabc"]);
      const files = () => readdirSync(host.advert.dir).filter((f) => f !== "host");
      expect(host.reclaim(() => true)).toBe(0);
      // e4 died: the file written for it goes at once; its result for cabc may be on its way
      // there, so it stays until old.
      expect(host.reclaim((p) => p !== "e4")).toBe(1);
      expect(host.reclaim((p) => p !== "e4", Date.now() + ORPHAN_MS + 1_000)).toBe(1);
      engine.write(randomBytes(5000), ["cabc"]);
      // cabc left: what it wrote goes at once (its tasks are cancelled); a result for it after a
      // grace, in which the controller keeps its bytes for rc.getResult.
      expect(host.reclaim((p) => p !== "cabc")).toBe(1);
      expect(files()).toHaveLength(1);
      expect(host.reclaim((p) => p !== "cabc", Date.now() + RESCUE_GRACE_MS + 1_000)).toBe(1);
      expect(files()).toEqual([]);
      client.write(randomBytes(5000), ["e4"]);
      expect(files()).toHaveLength(1);
      // A new controller of the same cluster sweeps what a killed one left.
      const again = ShmHostDir.open(paths, 4096);
      expect(files()).toEqual([]);
      expect(again.advert.token).not.toBe(host.advert.token);
    } finally {
      removeShmDir(paths);
    }
    expect(statSync(shmDirFor(paths), { throwIfNoEntry: false })).toBeUndefined();
  });

  it("refuses a folder someone put in its place", () => {
    process.env["PTCLUSTER_DIR"] = mkdtempSync(join(tmpdir(), "ptc-shm-prof-"));
    dirs.push(process.env["PTCLUSTER_DIR"]);
    const paths = profilePaths("default", `link${process.pid}`);
    const target = mkdtempSync(join(tmpdir(), "ptc-shm-target-"));
    dirs.push(target);
    symlinkSync(target, shmDirFor(paths));
    try {
      expect(() => ShmHostDir.open(paths, 4096)).toThrow(/not a folder of this user/);
    } finally {
      rmSync(shmDirFor(paths), { force: true });
    }
    mkdirSync(shmDirFor(paths), { mode: 0o755 });
    const host = ShmHostDir.open(paths, 4096); // our own folder, made private again
    expect(statSync(host.advert.dir).mode & 0o777).toBe(0o700);
    host.close();
  });
});
