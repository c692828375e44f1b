import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ConnectionFileError,
  InvalidOptionError,
  NoClusterError,
  PROTOCOL_VERSION,
  ensureProfileDirs,
  newClusterKey,
  profilePaths,
  ptclusterDir,
  readConnectionFile,
  writeClusterState,
  writeConnectionFile,
  writePrivateJson,
  type ConnectionInfo,
} from "@ptcluster/protocol";

let dir: string;
const savedDir = process.env["PTCLUSTER_DIR"];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ptc-files-"));
});
afterEach(() => {
  if (savedDir === undefined) delete process.env["PTCLUSTER_DIR"];
  else process.env["PTCLUSTER_DIR"] = savedDir;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mode = (file: string): number => statSync(file).mode & 0o777;

function clientInfo(overrides: Partial<ConnectionInfo> = {}): ConnectionInfo {
  return {
    kind: "client",
    protocol: PROTOCOL_VERSION,
    clusterId: "",
    profile: "default",
    host: "127.0.0.1",
    port: 5555,
    notifyPort: 5556,
    key: newClusterKey().toString("hex"),
    signatureScheme: "chacha20-poly1305",
    hubPid: process.pid,
    createdAt: Date.now(),
    ...overrides,
  };
}

/** Calls `fn`, expecting it to throw; returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

describe("connection files", () => {
  it("are written 0600, whatever the umask, and read back", () => {
    const file = join(dir, "client.json");
    const old = process.umask(0o000);
    try {
      const info = clientInfo();
      writeConnectionFile(file, info);
      expect(mode(file)).toBe(0o600);
      expect(readConnectionFile(file, "client")).toEqual(info);
    } finally {
      process.umask(old);
    }
  });

  it("replacing a widely readable file leaves a 0600 file", () => {
    const file = join(dir, "replaced.json");
    writeFileSync(file, "{}", { mode: 0o644 });
    chmodSync(file, 0o644);
    writePrivateJson(file, { a: 1 });
    expect(mode(file)).toBe(0o600);
    const state = join(dir, "cluster.json");
    writeClusterState(state, {
      profile: "default",
      clusterId: "",
      hubPid: 1,
      enginePids: [],
      startedAt: 0,
      state: "running",
      engines: 0,
    });
    expect(mode(state)).toBe(0o600);
  });

  it("a file readable by group or others is refused with ERR_PTC_CONNECTION_FILE_MODE", () => {
    for (const m of [0o644, 0o640, 0o604, 0o660]) {
      const file = join(dir, `open-${m.toString(8)}.json`);
      writeConnectionFile(file, clientInfo());
      chmodSync(file, m);
      const err = thrown(() => readConnectionFile(file, "client")) as ConnectionFileError;
      expect(err).toBeInstanceOf(ConnectionFileError);
      expect(err.code).toBe("ERR_PTC_CONNECTION_FILE_MODE");
      expect(err.file).toBe(file);
      expect(err.message).toContain(`chmod 600 ${file}`);
    }
  });

  it("a missing file with a profile is NoClusterError, telling to run `ptcluster start`", () => {
    const file = join(dir, "nope", "client.json");
    const err = thrown(() => readConnectionFile(file, "client", "default")) as NoClusterError;
    expect(err).toBeInstanceOf(NoClusterError);
    expect(err).toBeInstanceOf(ConnectionFileError);
    expect(err.code).toBe("ERR_PTC_NO_CLUSTER");
    expect(err.profile).toBe("default");
    expect(err.message).toContain("ptcluster start");
    const other = thrown(() => readConnectionFile(file, "client", "gpu")) as NoClusterError;
    expect(other.message).toContain("ptcluster start -n 4 --profile gpu");
  });

  it("a missing file without a profile is a plain ConnectionFileError", () => {
    const err = thrown(() => readConnectionFile(join(dir, "missing.json"), "client")) as ConnectionFileError;
    expect(err).toBeInstanceOf(ConnectionFileError);
    expect(err).not.toBeInstanceOf(NoClusterError);
    expect(err.code).toBe("ERR_PTC_CONNECTION_FILE");
  });

  it("malformed JSON is a ConnectionFileError", () => {
    const file = join(dir, "bad.json");
    writeFileSync(file, '{ "kind": "client", ', { mode: 0o600 });
    const err = thrown(() => readConnectionFile(file, "client", "default")) as ConnectionFileError;
    expect(err).toBeInstanceOf(ConnectionFileError);
    expect(err).not.toBeInstanceOf(NoClusterError);
    expect(err.code).toBe("ERR_PTC_CONNECTION_FILE");
    expect(err.message).toMatch(/not valid JSON/);
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it("a file for the other side, or without a usable key, host or port, is a ConnectionFileError", () => {
    const cases: Array<[string, Partial<ConnectionInfo>, RegExp]> = [
      ["engine-kind", { kind: "engine" }, /engine file, expected a client file/],
      ["short-key", { key: "abcd" }, /no valid key/],
      ["no-host", { host: "" }, /no host/],
    ];
    for (const [name, o, re] of cases) {
      const file = join(dir, `${name}.json`);
      writeConnectionFile(file, clientInfo(o));
      const err = thrown(() => readConnectionFile(file, "client")) as ConnectionFileError;
      expect(err).toBeInstanceOf(ConnectionFileError);
      expect(err.message).toMatch(re);
    }
    const file = join(dir, "no-port.json");
    const { port: _port, notifyPort: _notify, ...rest } = clientInfo();
    writePrivateJson(file, rest);
    expect((thrown(() => readConnectionFile(file, "client")) as Error).message).toMatch(/no port; no notifyPort/);
    expect(() => readConnectionFile(file, "engine")).toThrow(ConnectionFileError);
  });
});

describe("profile paths", () => {
  it("default to ~/.ptcluster/profile_default", () => {
    delete process.env["PTCLUSTER_DIR"];
    expect(ptclusterDir()).toBe(join(homedir(), ".ptcluster"));
    expect(profilePaths().dir).toBe(join(homedir(), ".ptcluster", "profile_default"));
  });

  it("honour PTCLUSTER_DIR", () => {
    process.env["PTCLUSTER_DIR"] = dir;
    const p = profilePaths();
    expect(p).toEqual({
      profile: "default",
      clusterId: "",
      dir: join(dir, "profile_default"),
      securityDir: join(dir, "profile_default", "security"),
      logDir: join(dir, "profile_default", "log"),
      runDir: join(dir, "profile_default", "run"),
      clientFile: join(dir, "profile_default", "security", "client.json"),
      engineFile: join(dir, "profile_default", "security", "engine.json"),
      stateFile: join(dir, "profile_default", "run", "cluster.json"),
      allowedKeysFile: join(dir, "profile_default", "security", "allowed_keys"),
    });
  });

  it("keep profiles and cluster ids apart", () => {
    process.env["PTCLUSTER_DIR"] = dir;
    const a = profilePaths("gpu", "");
    const b = profilePaths("gpu", "run-2");
    const c = profilePaths("default", "run-2");
    expect(a.dir).toBe(join(dir, "profile_gpu"));
    expect(b.dir).toBe(a.dir);
    expect(b.clientFile).toBe(join(dir, "profile_gpu", "security", "client-run-2.json"));
    expect(b.engineFile).toBe(join(dir, "profile_gpu", "security", "engine-run-2.json"));
    expect(b.stateFile).toBe(join(dir, "profile_gpu", "run", "cluster-run-2.json"));
    expect(new Set([a.clientFile, b.clientFile, c.clientFile]).size).toBe(3);
  });

  it("ensureProfileDirs creates owner-only directories", () => {
    process.env["PTCLUSTER_DIR"] = join(dir, "fresh");
    const p = profilePaths("mine");
    ensureProfileDirs(p);
    for (const d of [p.dir, p.securityDir, p.logDir, p.runDir]) expect(mode(d) & 0o077).toBe(0);
    writeConnectionFile(p.clientFile, clientInfo({ profile: "mine" }));
    expect(JSON.parse(readFileSync(p.clientFile, "utf8")).profile).toBe("mine");
  });

  it("reject invalid profile names and cluster ids", () => {
    process.env["PTCLUSTER_DIR"] = dir;
    for (const bad of ["", "../etc", "a/b", "a b", "x".repeat(65), "name;rm", "é"]) {
      const err = thrown(() => profilePaths(bad)) as InvalidOptionError;
      expect(err, JSON.stringify(bad)).toBeInstanceOf(InvalidOptionError);
      expect(err.code).toBe("ERR_PTC_INVALID_OPTION");
    }
    for (const bad of ["../x", "a/b", "x".repeat(65)])
      expect(() => profilePaths("default", bad)).toThrow(InvalidOptionError);
    expect(() => profilePaths(42 as unknown as string)).toThrow(InvalidOptionError);
    expect(profilePaths("a.b_c-1", "x".repeat(64)).profile).toBe("a.b_c-1");
  });
});
