import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";

// Every example in examples/ runs against a real cluster, as a reader would run it.
const root = fileURLToPath(new URL("..", import.meta.url));
const run = (file: string, dir: string) =>
  execa(process.execPath, ["--import", "tsx", `examples/${file}`], { cwd: root, env: { PTCLUSTER_DIR: dir }, reject: false, timeout: 60_000 });

describe("examples", () => {
  const tmp = tempClusterDir();
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster(tmp.dir, { n: 4 });
  });
  afterAll(async () => {
    await cluster?.stop();
    tmp.cleanup();
  });

  const cases: Array<[string, RegExp[]]> = [
    ["hello.ts", [/engines: \[ 0, 1, 2, 3 \]/, /'Hello, World', 'Hello, World', 'Hello, World', 'Hello, World'/, /engine 3 is pid \d+/, /49, 64/]],
    ["doubler.ts", [/result 10; engine said: 5 doubled to 10 by engine 0 \(pid \d+\)/, /result 50; engine said: 25 doubled to 50 by engine 0/]],
    ["namespace.ts", [/counter per engine: \[ 0, 1, 2, 3 \]/, /\[ 42, 42, 42, 42 \]/, /ERR_PTC_UNDEFINED_NAME: `notDefinedAnywhere` is not defined on engine 0/]],
    ["mpmd.ts", [/engine 0: pi ≈ 3\.1\d/, /engines 1, 2, 3: sums \[ 500000500000, 500000500000, 500000500000 \]/]],
    ["scatter-gather.ts", [/sum of square roots: 21081835\.2\d/, /gathered 1000000 values; back\[1e6-1\] = 31\.6228/]],
    ["start-cluster.ts", [/engines \[ 0, 1 \]/, /'v20\./]],
  ];
  for (const [file, patterns] of cases) {
    it(file, async () => {
      const r = await run(file, tmp.dir);
      expect(r.stderr).toBe("");
      expect(r.exitCode).toBe(0);
      for (const p of patterns) expect(r.stdout).toMatch(p);
    });
  }
});
