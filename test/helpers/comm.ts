import type { Client } from "@ptcluster/client";
import type { CommPathCounts } from "@ptcluster/protocol";
import { waitFor } from "./wait.js";

/** Runs on the engines: `rounds` round trips between ranks 0 and 1, values checked by rank 0. */
export const pingpong = async (rounds: number) => {
  const comm = engine.comm;
  let ok = 0;
  for (let i = 0; i < rounds; i++) {
    if (comm.rank === 0) {
      await comm.send(1, { i });
      if (((await comm.recv({ source: 1, timeout: 10_000 })) as { i: number }).i === i + 1) ok++;
    } else {
      const { i: got } = (await comm.recv({ source: 0, timeout: 10_000 })) as { i: number };
      await comm.send(0, { i: got + 1 });
    }
  }
  return comm.rank === 0 ? ok : -1;
};

/** Waits until every engine's heartbeat reports counts that `ready` accepts; returns them by engine id. */
export async function countsWhen(
  rc: Client,
  ready: (c: Map<number, CommPathCounts>) => boolean,
): Promise<Map<number, CommPathCounts>> {
  let last = new Map<number, CommPathCounts>();
  try {
    return await waitFor(
      async () => {
        const st = await rc.status();
        last = new Map(st.engines.map((e) => [e.id, e.link?.comm ?? { direct: -1, relayed: -1 }]));
        return ready(last) ? last : undefined;
      },
      { timeout: 10_000, interval: 50, what: "the engines' engine.comm path counts" },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen ${JSON.stringify([...last])}`, { cause: err });
  }
}
