import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { startTestCluster, tempClusterDir, type TestCluster } from "./helpers/cluster.js";

// Every example in examples/ runs against a real cluster, as a reader would run it.
const root = fileURLToPath(new URL("..", import.meta.url));
const run = (file: string, dir: string, env: Record<string, string> = {}) =>
  execa(process.execPath, ["--import", "tsx", `examples/${file}`], {
    cwd: root,
    env: { PTCLUSTER_DIR: dir, ...env },
    reject: false,
    timeout: 60_000,
  });

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

  // [file, patterns its stdout must match, environment (to keep the long ones short in CI)]
  const cases: Array<[string, RegExp[], Record<string, string>?]> = [
    [
      "hello.ts",
      [
        /engines: \[ 0, 1, 2, 3 \]/,
        /'Hello, World', 'Hello, World', 'Hello, World', 'Hello, World'/,
        /engine 3 is pid \d+/,
        /49, 64/,
      ],
    ],
    [
      "doubler.ts",
      [
        /result 10; engine said: 5 doubled to 10 by engine 0 \(pid \d+\)/,
        /result 50; engine said: 25 doubled to 50 by engine 0/,
      ],
    ],
    [
      "namespace.ts",
      [
        /counter per engine: \[ 0, 1, 2, 3 \]/,
        /\[ 42, 42, 42, 42 \]/,
        /primes below 100 per engine: \[ 25, 25, 25, 25 \]/,
        /ERR_PTC_UNDEFINED_NAME: `notDefinedAnywhere` is not defined on engine 0/,
      ],
    ],
    [
      "manager.ts",
      [
        /array doubled in place: \[ 10, 20, 30, 40, 50 \]/,
        /dict: engine 0, engine 1, engine 2, engine 3/,
        /counter: 400 \(4 engines × 100 atomic adds\)/,
        /lock: 4 critical sections, never overlapping/,
        /shared objects: critical \(queue, 0\), doubled \(array, 5\), hits \(counter, 1\), section \(lock, 0\), seen-by \(dict, 4\)/,
      ],
    ],
    [
      "parallel-sum.ts",
      [
        /rank 0: local sum 31250125000/,
        /allreduce on every rank: \[500000500000,500000500000,500000500000,500000500000\]/,
      ],
    ],
    [
      "pi-monte-carlo.ts",
      [/pi ≈ 3\.1[34]\d+ from 400000 darts \(the same on 4 ranks: true\)/],
      { PI_SAMPLES: "100000" },
    ],
    [
      "heat-diffusion.ts",
      [
        /4000 cells, 1000 steps on 4 ranks, halo exchange by send\/recv/,
        /largest difference from the serial result: 0\.0e\+0/,
      ],
    ],
    ["mpmd.ts", [/engine 0: pi ≈ 3\.1\d/, /engines 1, 2, 3: sums \[ 500000500000, 500000500000, 500000500000 \]/]],
    ["scatter-gather.ts", [/sum of square roots: 21081835\.2\d/, /gathered 1000000 values; back\[1e6-1\] = 31\.6228/]],
    ["start-cluster.ts", [/engines \[ 0, 1 \]/, /'v20\./]],
    [
      "sitesize.ts",
      [
        /serial: 40 pages, 966820 bytes/,
        /\[ 'http:\/\/127\.0\.0\.1:\d+\/\?page=3', 24757 \]/,
        /cluster: 40 pages from 4 engines/,
        /concurrency 16: 40 pages/,
        /\| serial loop in the client \| \d+\.\d\d \| 1\.0× \|/,
        /\| imap unordered, 4 engines \| \d+\.\d\d \| \d+\.\d× \|/,
        // 40 pages × 50 ms take ≥ 2 s serially; 32 concurrent slots take a fraction of that, even on a busy machine.
        /\| imap unordered, 2 engines × concurrency 16 \| \d+\.\d\d \| ([2-9]|\d{2,})\.\d× \|/,
      ],
    ],
    [
      "busy-wait.ts",
      [
        /serial: 8 × busy\(2e\+7\) in \d+\.\d\d s/,
        /\| engines \| seconds \| speedup \| efficiency \|/,
        /\| 1 \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|\n\| 2 \| [^\n]+\n\| 4 \| [^\n]+\n\| 1 \(concurrency 4\) \| /,
        /Amdahl's law: .* 1 \/ \(\(1 - p\) \+ p \/ k\)\..*physical cores \(\d+ available here\): beyond them .* nothing improves\./,
      ],
      { BUSY_N: "2e7" },
    ],
    [
      "streaming.ts",
      [
        /^ +30,000 items +[\d,]+ items\/s +RSS \d+ MB$/m,
        /sum of the first 30,000 odd numbers = 900,000,000 = 30,000² \(checked\)/,
        /30,000 items in \d+\.\d\d s: [\d,]+ items\/s on 4 engines/,
        // at most maxInFlight (0–10,000) ahead: the input is read lazily
        /the generator ran at most (10,000|\d,\d{3}|\d{1,3}) items ahead of the consumer \(maxInFlight 10,000\)/,
        /client peak RSS growth: \d+\.\d MB/,
      ],
      { STREAMING_ITEMS: "30000" },
    ],
    [
      "pipeline.ts",
      [
        /^1000 documents → \d+ sentences, e\.g\. "0\.0: [a-z ]+"$/m,
        /serial, in this process: \d+\.\d\d s/,
        /pipelined on 4 engines: \d+\.\d\d s \(×\d+\.\d\d\)/,
        /same sentences, same order as the serial run: true/,
        /'0 map removeStopWords' +│ 1000 +│ 0 /,
        /'3 filter hasSentences' +│ 1000 +│ 0 /,
        /'4 flatMap splitSentences' +│ \d+ +│ 0 /,
        /received by this client: \d+\.\d MB \(the sentences only\)/,
      ],
      { PIPELINE_DOCS: "1000" },
    ],
    // Starts a cluster of its own (2 engines), and 2 more join during the run.
    [
      "primes-queue.ts",
      [
        /driver on .*: 1000 numbers, engines \[0,1\]/,
        /61 primes; the smallest 4000000000039, 4000000000043, 4000000000069; the largest 4000000001951/,
        /engine 3 \(joined\): \d+ numbers/,
        /engines that joined during the run took [1-9]\d* of 1000 numbers/,
      ],
    ],
  ];
  for (const [file, patterns, env] of cases) {
    it(
      file,
      async () => {
        const r = await run(file, tmp.dir, env);
        expect(r.stderr).toBe("");
        expect(r.exitCode).toBe(0);
        for (const p of patterns) expect(r.stdout).toMatch(p);
      },
      60_000,
    );
  }
});
