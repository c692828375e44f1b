/**
 * Soak: a long load-balanced map while engines are killed at random; every item's result must
 * come back exactly once and be right. `npm run soak` runs 1,000,000 items and kills 20 engines
 * along the way (`ptcluster start` replaces them); `npm run soak -- 200000 10` sets both. A short version runs in the
 * test suite (test/soak.test.ts).
 */
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";

const BIN = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));

export interface SoakResult {
  items: number;
  seconds: number;
  kills: number;
  wrong: number;
  /** Engines registered over the run (the first ones plus their replacements, all back by the end). */
  enginesSeen: number;
}

/** A small seeded PRNG, so a failing run can be replayed with the same kill schedule. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runSoak(o: {
  items: number;
  kills: number;
  engines?: number;
  seed?: number;
  log?: (s: string) => void;
}): Promise<SoakResult> {
  const dir = mkdtempSync(join(tmpdir(), "ptc-soak-"));
  const env = { PTCLUSTER_DIR: dir };
  const previous = process.env["PTCLUSTER_DIR"];
  process.env["PTCLUSTER_DIR"] = dir;
  const random = rng(o.seed ?? 1);
  const started = await execa(process.execPath, [BIN, "start", "--json", "-n", String(o.engines ?? 4)], { env });
  const { controllerPid } = JSON.parse(started.stdout) as { controllerPid: number };
  const rc = await connect();
  const seen = new Set<number>(rc.ids);
  rc.on("engine_up", (e) => seen.add(e.id));
  let kills = 0;
  const killed = new Set<number>();
  const t0 = performance.now();
  try {
    // Items are slowed just enough that the map runs long enough to kill engines during it.
    const work = (i: number) => {
      let x = i;
      for (let k = 0; k < 200; k++) x = (x * 1103515245 + 12345) % 2147483648;
      return [i, x] as const;
    };
    const expected = (i: number) => work(i)[1];
    // Kills are spread over the run by progress (every items/(kills+1) results), so each one lands
    // mid-map whatever the machine's speed; which engine dies is drawn from the seeded PRNG.
    const killEvery = Math.max(1, Math.floor(o.items / (o.kills + 1)));
    const killOne = async () => {
      // Never the last engine: wait for replacements of earlier victims to register first.
      await rc.waitForEngines(2, { timeout: 10_000 });
      // Not one already killed: the controller may not have heard of its death yet, and its
      // zombie (not yet reaped) would take the signal without a new engine dying.
      const engines = (await rc.status()).engines.filter((e) => !killed.has(e.pid));
      const victim = engines[Math.floor(random() * engines.length)];
      if (!victim) return;
      try {
        process.kill(victim.pid, "SIGKILL");
        killed.add(victim.pid);
        kills++;
        o.log?.(`killed engine ${victim.id} (pid ${victim.pid})`);
      } catch {
        /* already gone */
      }
    };
    let wrong = 0;
    let n = 0;
    function* items() {
      for (let i = 0; i < o.items; i++) yield i;
    }
    for await (const [i, x] of rc.loadBalancedView().imap(work, items(), { maxInFlight: 50_000 })) {
      if (i !== n || x !== expected(i)) wrong++;
      n++;
      if (n % killEvery === 0 && kills < o.kills) await killOne();
      if (n % 100_000 === 0) o.log?.(`${n} items`);
    }
    if (n !== o.items) wrong += Math.abs(o.items - n);
    // The cluster heals: every killed engine gets a replacement that registers (with a new id).
    const deadline = Date.now() + 15_000;
    while (seen.size < (o.engines ?? 4) + kills && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return { items: n, seconds: (performance.now() - t0) / 1000, kills, wrong, enginesSeen: seen.size };
  } finally {
    await rc.close();
    await execa(process.execPath, [BIN, "stop"], { env, reject: false });
    if (pidAlive(controllerPid)) process.kill(controllerPid, "SIGKILL");
    if (previous === undefined) delete process.env["PTCLUSTER_DIR"];
    else process.env["PTCLUSTER_DIR"] = previous;
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const items = Number(process.argv[2] ?? 1_000_000);
  const kills = Number(process.argv[3] ?? 20);
  const r = await runSoak({ items, kills, log: (s) => process.stderr.write(`${s}\n`) });
  process.stdout.write(`${JSON.stringify({ workload: "soak", ...r, items_per_s: Math.round(r.items / r.seconds) })}\n`);
  if (r.wrong > 0) {
    process.stderr.write(`soak: ${r.wrong} results were missing, duplicated or wrong\n`);
    process.exitCode = 1;
  }
}
