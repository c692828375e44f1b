import * as zmq from "zeromq";
import type { CurveMaterial, Logger } from "@ptcluster/protocol";
import { ZapHandler } from "./zap-handler.js";

/** ZeroMQ's form of a bind address: IPv6 literals in brackets, `0.0.0.0` as is. */
export function bindAddress(ip: string): string {
  return ip.includes(":") && !ip.startsWith("[") ? `[${ip}]` : ip;
}

export interface BindOptions {
  ip: string;
  ports: { client?: number | undefined; engine?: number | undefined; notify?: number | undefined };
  maxMessageBytes: number;
  curve: (CurveMaterial & { allowedKeys?: string[] }) | undefined;
}

export interface BoundSockets {
  client: zmq.Router;
  engine: zmq.Router;
  notify: zmq.Publisher;
  ports: { client: number; engine: number; notify: number };
  /** Answers CURVE authentication requests (with `curve` only). */
  zap: ZapHandler | undefined;
  /** The largest message a peer may send (the cluster's limit and room for the envelope). */
  maxMessageBytes: number;
}

/** Binds the controller's three sockets: clients (ROUTER), engines (ROUTER) and notifications (PUB). */
export async function bindSockets(o: BindOptions, log: Logger): Promise<BoundSockets> {
  // ZeroMQ checks each frame against maxMessageSize before buffering it: a peer announcing a
  // larger frame (with or without the key) is disconnected instead of costing memory.
  const curve = o.curve;
  let zap: ZapHandler | undefined;
  if (curve) {
    // Every connection is encrypted, and accepted only from an allowed public key (fail closed:
    // with the ZAP domain enforced, no handler means no connection).
    zap = new ZapHandler(new Set([curve.client.publicKey, curve.engine.publicKey, ...(curve.allowedKeys ?? [])]), log);
    await zap.start();
  }
  const security = curve
    ? { curveServer: true, curveSecretKey: curve.server.secretKey, zapDomain: "ptcluster", zapEnforceDomain: true }
    : {};
  const routerOpts = {
    linger: 200,
    mandatory: true,
    sendHighWaterMark: 100_000,
    receiveHighWaterMark: 100_000,
    maxMessageSize: o.maxMessageBytes + 65_536,
    ...security,
  };
  const client = new zmq.Router(routerOpts);
  const engine = new zmq.Router({ ...routerOpts, handover: true });
  const notify = new zmq.Publisher({ linger: 0, sendHighWaterMark: 100_000, ...security });
  const bindPort = (p: number | undefined) => (p ? String(p) : "*");
  const where = bindAddress(o.ip);
  await Promise.all([
    client.bind(`tcp://${where}:${bindPort(o.ports.client)}`),
    engine.bind(`tcp://${where}:${bindPort(o.ports.engine)}`),
    notify.bind(`tcp://${where}:${bindPort(o.ports.notify)}`),
  ]);
  const port = (s: zmq.Socket) => Number(/:(\d+)$/.exec(s.lastEndpoint ?? "")?.[1]);
  const ports = { client: port(client), engine: port(engine), notify: port(notify) };
  return { client, engine, notify, ports, zap, maxMessageBytes: o.maxMessageBytes + 65_536 };
}
