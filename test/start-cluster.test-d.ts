import { describe, expectTypeOf, test } from "vitest";
import { startCluster, type StartClusterOptions } from "@ptcluster/client";

// Type tests only: StartClusterOptions is derived from the options table (the entries marked `api`).
describe("StartClusterOptions", () => {
  test("has the options of `ptcluster start` that startCluster takes, all optional, typed as the table says", () => {
    expectTypeOf<StartClusterOptions>().toEqualTypeOf<{
      n?: number;
      profile?: string;
      clusterId?: string;
      concurrency?: number;
      timeout?: number;
      scheme?: "leastload" | "lru" | "random" | "weighted";
      restart?: boolean;
      force?: boolean;
      maxMemory?: number;
      maxMessageMb?: number;
      detached?: boolean;
      maxSharedMb?: number;
      shmThresholdKb?: number;
    }>();
    void startCluster({ n: 2, concurrency: 4, scheme: "lru" });
    // @ts-expect-error a flag of the command line only
    void startCluster({ foreground: true });
    // @ts-expect-error a number where the table says number
    void startCluster({ n: "2" });
    // @ts-expect-error not a scheme
    void startCluster({ scheme: "fastest" });
  });
});
