import { InvalidOptionError, type CurveClientKeys, type Logger, type Part } from "@ptcluster/protocol";
import type { CommIn, CommOutMsg, RelayTransport } from "./comm-transport.js";
import { DirectTransport } from "./direct-transport.js";
import { PeerEndpoint, localAddressTowards, type PeerEndpointOptions } from "./peer-endpoint.js";

/** The engine's options these paths use (see `EngineOptions`). */
export interface CommPathOptions {
  host: string;
  port: number;
  key: Buffer;
  curve?: CurveClientKeys | undefined;
  peerIp?: string | undefined;
  maxMessageBytes?: number | undefined;
}

export interface CommPathDeps {
  /** This engine's id now. */
  id: () => number;
  relay: RelayTransport;
  /** Sends `peer_lookup` to the controller. */
  lookup: (id: number) => void;
  /** Posts an incoming message (or a locally made `peer_state`) to the executor. */
  post: (msg: CommIn, parts: Part[]) => void;
  /** The executor's own endpoint now (`host:port`), if it has one. */
  exec: () => string | undefined;
  /** The executor is about to bind its endpoint (a hello waits a little for its address). */
  execComing: () => boolean;
  /** A client's DirectView tasks sent straight to this engine (`direct-tasks.ts`). */
  direct?: PeerEndpointOptions["onDirect"];
}

export interface CommPaths {
  /** The address the endpoint is bound on (executors bind theirs there too). */
  ip: string;
  endpoint: PeerEndpoint;
  transport: DirectTransport;
  close(): Promise<void>;
}

/**
 * Opens this engine's direct `engine.comm` paths: its peer endpoint, bound on `--peer-ip` or on
 * the address it reaches the controller from, and the transport that dials peers. Undefined
 * (the relay alone) with `PTCLUSTER_COMM_PATH=relay` in the engine's environment, and when no
 * local address is found. With `--curve`, the endpoint gets a CURVE server key pair of its own
 * (its public key is advertised with the address) and links dial with the engine's CURVE keys.
 */
export async function openCommPaths(
  o: CommPathOptions,
  uuid: string,
  log: Logger,
  d: CommPathDeps,
): Promise<CommPaths | undefined> {
  // `PTCLUSTER_COMM_PATH=relay`: the relay alone, to measure it or to rule the direct path out.
  if (process.env["PTCLUSTER_COMM_PATH"] === "relay") return undefined;
  let ip = o.peerIp;
  if (!ip) {
    try {
      ip = await localAddressTowards(o.host, o.port);
    } catch (err) {
      log.warn({ err }, "engine.comm: no local address towards the controller; peers reach this engine by relay only");
      return undefined;
    }
  }
  const endpoint = new PeerEndpoint({
    ip,
    key: o.key,
    id: d.id,
    onComm: (msg, parts) => d.post(msg, parts),
    ...(d.direct ? { onDirect: d.direct } : {}),
    exec: d.exec,
    execComing: d.execComing,
    curve: o.curve !== undefined,
    ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: o.maxMessageBytes } : {}),
    logger: log,
  });
  try {
    await endpoint.start();
  } catch (err) {
    await endpoint.close().catch(() => undefined);
    throw new InvalidOptionError(
      `Cannot bind the engine.comm peer endpoint on ${ip} (${(err as Error).message}). Give \`--peer-ip\` an address of this host that other engines can reach.`,
    );
  }
  const transport = new DirectTransport({
    key: o.key,
    uuid,
    relay: (msg: CommOutMsg, parts: Part[]) => d.relay.send(msg, parts),
    lookup: d.lookup,
    curve: o.curve ? { publicKey: o.curve.publicKey, secretKey: o.curve.secretKey } : undefined,
    ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: o.maxMessageBytes } : {}),
    logger: log,
  });
  log.info({ peer: endpoint.address }, "engine.comm peer endpoint bound");
  return {
    ip,
    endpoint,
    transport,
    close: async () => {
      await Promise.all([transport.close(), endpoint.close()]);
    },
  };
}
