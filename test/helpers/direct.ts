import type { Client, DirectCounts } from "@ptcluster/client";

/** A client's direct-path counters (`rc.connectionStats().direct`), each 0 until it counts. */
export const direct = (rc: Client): Required<DirectCounts> =>
  ({
    tasks: 0,
    results: 0,
    viaController: 0,
    failed: 0,
    lean: 0,
    executor: 0,
    bytesSent: 0,
    bytesReceived: 0,
    ...rc.connectionStats().direct,
  }) as Required<DirectCounts>;
