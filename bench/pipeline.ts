/**
 * The pipeline workloads of `npm run bench` (issue 15): items through stages run on the engines.
 *
 * - `pipeline_3stage_noop`: 50,000 items from an array through three no-op `map` stages (each item
 *   is three stage runs), outputs checked in order; one warm-up run, then the median of three.
 * - `pipeline_1m_generator`: a million items from a generator through three no-op stages, with the
 *   memory growth of the controller and of this client (target: under 200 MB each).
 * - `pipeline_intermediate_bytes`: 2 stages, the first returns 1 MiB per item, the second its
 *   length; the bytes this client received against the intermediate bytes (target: under 5%).
 */
import type { Client } from "@ptcluster/client";
import { measureGrowth } from "./proc.js";

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const noop = (x: unknown) => x;

export async function pipelineWorkloads(
  rc: Client,
  controllerPid: number,
  want: (name: string) => boolean,
  out: (workload: string, fields: Record<string, unknown>) => void,
): Promise<void> {
  if (want("pipeline_3stage_noop")) {
    const items = Array.from({ length: 50_000 }, (_, i) => i);
    const times: number[] = [];
    for (let run = 0; run < 4; run++) {
      const s = performance.now();
      const got = await rc.pipeline(items).map(noop).map(noop).map(noop).toArray();
      const dt = (performance.now() - s) / 1000;
      if (got.length !== items.length || got.some((v, i) => v !== i))
        throw new Error("pipeline_3stage_noop: outputs out of order or wrong");
      if (run > 0) times.push(dt);
    }
    const dt = [...times].sort((a, b) => a - b)[1] as number;
    out("pipeline_3stage_noop", {
      items: items.length,
      stages: 3,
      items_per_s: Math.round(items.length / dt),
      seconds: round(dt),
    });
  }

  if (want("pipeline_1m_generator")) {
    const n = 1_000_000;
    function* gen() {
      for (let i = 0; i < n; i++) yield i;
    }
    const s = performance.now();
    const m = await measureGrowth(controllerPid, async () => {
      let next = 0;
      for await (const v of rc.pipeline(gen()).map(noop).map(noop).map(noop)) {
        if (v !== next) throw new Error(`pipeline_1m_generator: item ${next} came as ${String(v)}`);
        next++;
      }
      return next;
    });
    const dt = (performance.now() - s) / 1000;
    if (m.value !== n) throw new Error(`pipeline_1m_generator: ${m.value} outputs`);
    const fields: Record<string, unknown> = {
      items: n,
      items_per_s: Math.round(n / dt),
      seconds: round(dt),
      hub_peak_rss_mb: Math.round(m.otherPeakMb),
      client_rss_growth_mb: Math.round(m.clientGrowthMb),
    };
    if (m.otherGrowthMb !== undefined) fields["hub_rss_growth_mb"] = Math.round(m.otherGrowthMb);
    out("pipeline_1m_generator", fields);
  }

  if (want("pipeline_intermediate_bytes")) {
    const n = 50;
    const before = rc.connectionStats().bytesReceived ?? 0;
    const lengths = await rc
      .pipeline(Array.from({ length: n }, (_, i) => i))
      .map((i: number) => String.fromCharCode(97 + (i % 26)).repeat(1 << 20))
      .map((text: string) => text.length)
      .toArray();
    const received = (rc.connectionStats().bytesReceived ?? 0) - before;
    if (lengths.length !== n || lengths.some((l) => l !== 1 << 20))
      throw new Error("pipeline_intermediate_bytes: wrong lengths");
    const intermediate = n * (1 << 20);
    out("pipeline_intermediate_bytes", {
      items: n,
      intermediate_mb: n,
      client_received_kb: round(received / 1024, 1),
      ratio: round(received / intermediate, 5),
    });
  }
}
