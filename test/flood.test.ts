/**
 * Hostile input, the part that needs no key: a flood of TCP connections that never complete a
 * handshake must not keep legitimate clients and engines from working.
 */
import { readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connect } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";

describe("a flood of idle connections", () => {
  const ctx = useCluster({ n: 2 });

  it("1,000 idle TCP connections to the client and engine ports (and half-sent greetings) do not stop legitimate work", async () => {
    const files = JSON.parse(readFileSync(join(ctx.dir, "profile_default", "security", "client.json"), "utf8")) as {
      host: string;
      port: number;
    };
    const engineFile = JSON.parse(
      readFileSync(join(ctx.dir, "profile_default", "security", "engine.json"), "utf8"),
    ) as { port: number };
    const sockets: Socket[] = [];
    try {
      await Promise.all(
        Array.from(
          { length: 1_000 },
          (_, i) =>
            new Promise<void>((resolve, reject) => {
              const sock = tcpConnect({ host: files.host, port: i % 2 ? files.port : engineFile.port }, () => {
                // A third send the first bytes of a ZMTP greeting and stop there; the rest send nothing.
                if (i % 3 === 0) sock.write(Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f]));
                resolve();
              });
              sock.on("error", reject);
              sockets.push(sock);
            }),
        ),
      );
      // With all of them open: a map over both engines, a direct apply on each, a new client.
      const out = await ctx.rc.loadBalancedView().map(
        (x: number) => x + 1,
        Array.from({ length: 2_000 }, (_, i) => i),
      );
      expect(out).toEqual(Array.from({ length: 2_000 }, (_, i) => i + 1));
      expect(await ctx.rc.view().applySync(() => engine.id)).toEqual(ctx.rc.ids);
      const other = await connect({ timeout: 5_000 });
      try {
        expect(await other.view().applySync(() => 7)).toEqual([7, 7]);
      } finally {
        await other.close();
      }
      // No engine was lost to the flood, and none of it was taken for a peer.
      const st = await ctx.rc.status();
      expect(st.engines.map((e) => e.id)).toEqual([0, 1]);
      expect(st.clients).toBe(1);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
