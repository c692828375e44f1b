import type { Hub } from "@ptcluster/hub";
import { ClusterStartError } from "@ptcluster/protocol";
import type { EngineGroup } from "../launchers/index.js";

/** How a wait for registrations ended. */
export interface Registrations {
  /** ids of the engines of the launches that registered, sorted */
  ids: number[];
  /** engines the launches start */
  want: number;
  /** false: the time ran out before every engine registered */
  complete: boolean;
  /** launches with engines still not registered (empty when `complete`) */
  unfinished: EngineGroup[];
  /** what the unfinished launches wrote, for the message (a queue's reason, an error) */
  output: string;
}

/**
 * Waits until every engine of `launched` registered, or `timeoutMs` passed (then resolves with
 * `complete: false` and the launches still unfinished). Rejects, with its output, as soon as a
 * launch ends before its engines registered: a crash at start is reported, not waited out.
 */
export function waitForRegistrations(hub: Hub, launched: EngineGroup[], timeoutMs: number): Promise<Registrations> {
  const want = launched.reduce((a, g) => a + g.count, 0);
  const tags = new Map(launched.map((g) => [g.tag, g]));
  const ids: number[] = [];
  const perTag = new Map<string, number>();
  const unfinished = () => launched.filter((g) => (perTag.get(g.tag) ?? 0) < g.count);
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      hub.off("engine_up", onUp);
      if (err) return reject(err);
      const left = unfinished();
      const outputs = left.map((g) => `${g.where}: ${g.output().trim()}`).filter((x) => !x.endsWith(": "));
      resolve({
        ids: ids.sort((a, b) => a - b),
        want,
        complete: left.length === 0,
        unfinished: left,
        output: outputs[0] ?? "",
      });
    };
    const onUp = (info: { id: number; tag?: string }) => {
      if (info.tag === undefined || !tags.has(info.tag)) return;
      perTag.set(info.tag, (perTag.get(info.tag) ?? 0) + 1);
      ids.push(info.id);
      if (ids.length >= want) done();
    };
    hub.on("engine_up", onUp);
    if (want === 0) done();
    for (const g of launched) {
      void g.exited.then((code) => {
        if ((perTag.get(g.tag) ?? 0) >= g.count) return;
        const out = g.output().trim();
        const who =
          g.where === "local"
            ? `Engine process ${g.pids[0] ?? "?"}`
            : `The engines started by ${g.where}${g.pids.length ? ` (pid ${g.pids.join(", ")})` : ""}`;
        done(
          new ClusterStartError(
            `${who} exited (${typeof code === "string" ? code : `code ${code}`}) before registering${out ? `:\n${out}` : "."}`,
          ),
        );
      });
    }
    if (settled) return;
    timer = setTimeout(() => done(), Math.max(0, timeoutMs));
  });
}

/**
 * Ends launches whose engines did not all register in time (SIGTERM, then SIGKILL after
 * `graceMs`) and resolves once they have exited, so no engine is left starting. A launch of
 * several engines (an ssh session, mpiexec, a batch job) ends as a whole.
 */
export async function endLaunches(groups: EngineGroup[], graceMs = 1_000): Promise<void> {
  await Promise.all(
    groups.map(async (g) => {
      g.kill("SIGTERM");
      const k = setTimeout(() => g.kill("SIGKILL"), graceMs);
      // A batch job may take a while to leave the queue after its cancel; do not hang `start` on it.
      const cap = new Promise((r) => setTimeout(r, graceMs + 4_000).unref());
      await Promise.race([g.exited, cap]);
      clearTimeout(k);
    }),
  );
}

/** The first line of a timed-out wait: how many registered, what the unfinished launches said. */
export function shortfall(r: Registrations, timeoutMs: number): string {
  return `Only ${r.ids.length} of ${r.want} engines registered within ${timeoutMs} ms`;
}
