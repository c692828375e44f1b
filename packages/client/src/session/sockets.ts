import * as zmq from "zeromq";
import { hostname } from "node:os";
import {
  AuthenticationError,
  Channel,
  PACKAGE_VERSION,
  PROTOCOL_VERSION,
  ProtocolError,
  VersionMismatchError,
  curveClientOptions,
  endpoint,
  zmqContext,
  type ClientToHub,
  type DirectCounts,
  type LinkReport,
  type ConnectReplyMsg,
  type ConnectionInfo,
  type HubToClient,
  type Incoming,
  type Logger,
  type Notification,
} from "@ptcluster/protocol";

/** The client's two channels: requests and results with the controller, and its notifications. */
export interface Links {
  channel: Channel<HubToClient, ClientToHub>;
  notify: Channel<Notification, never>;
  /** After the channels closed: waits until the DEALER's monitor stopped (see observerStopped). */
  monitorStopped(): Promise<void>;
}

export interface LinkHandlers {
  /** The controller accepted this client (called before `handshake` resolves, so nothing comes between). */
  welcome(reply: ConnectReplyMsg): void;
  /** Every message from the controller after the connect reply. */
  message(m: Incoming<HubToClient>): void;
  notification(n: Notification): void;
}

/**
 * Opens the sockets and sends `connect` (`replaces`: see {@link connectMessage}). `handshake`
 * resolves once the controller welcomed this client, or rejects with the reason it refused this
 * client: a key, a security mechanism or a version that does not match. With `idle`, the channels
 * never hold the process, from their first receive on (a wait for a controller that may never answer).
 */
export function openLinks(
  c: ConnectionInfo,
  routingId: string,
  log: Logger,
  on: LinkHandlers,
  o: { replaces?: string; idle?: boolean } = {},
): { links: Links; handshake: Promise<void> } {
  const key = Buffer.from(c.key, "hex");
  const curve = curveClientOptions(c.curve);
  // Idle links may wait long for a controller that is gone: ZeroMQ's reconnects back off to 2 s.
  const backoff = o.idle ? { reconnectMaxInterval: 2_000 } : {};
  const dealer = new zmq.Dealer({
    routingId,
    linger: 100,
    sendHighWaterMark: 100_000,
    receiveHighWaterMark: 100_000,
    ...curve,
    ...backoff,
    context: zmqContext(),
  });
  // The socket's event observer must exist before the handshake, or a refusal goes unseen.
  const events = dealer.events;
  dealer.connect(endpoint(c.host, c.port));
  const sub = new zmq.Subscriber({
    linger: 0,
    receiveHighWaterMark: 100_000,
    ...curve,
    ...backoff,
    context: zmqContext(),
  });
  sub.connect(endpoint(c.host, c.notifyPort ?? 0));
  sub.subscribe();
  const where = `${c.host}:${c.port}`;
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const handshake = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  let replied = false;
  const channel = new Channel<HubToClient, ClientToHub>({
    socket: dealer,
    clusterKey: key,
    sendLabel: "c2h",
    recvLabel: "h2c",
    selfId: Buffer.from(routingId),
    logger: log,
    // A ping: the controller acknowledges it, or reports the gap before it, so a cut link's loss
    // is resent as soon as the connection is back.
    probe: () => channel.send({ type: "ping" }),
    onAuthFailed: () =>
      settle.reject(
        new AuthenticationError(
          `The controller at ${where} rejected this client's signatures: the key in the connection file does not match the running cluster (profile \`${c.profile}\`). ` +
            "The cluster may have been restarted; reconnect with its current connection file.",
        ),
      ),
    onMessage: (m) => {
      if (m.header.type === "connect_reply" && !replied) {
        replied = true;
        const h = m.header;
        if (h.ok) {
          on.welcome(h);
          settle.resolve();
        } else
          settle.reject(
            h.error?.code === "ERR_PTC_VERSION"
              ? new VersionMismatchError(h.error.message, PROTOCOL_VERSION, h.v)
              : new ProtocolError(h.error?.message ?? "connection refused"),
          );
        return;
      }
      on.message(m);
    },
  });
  if (o.idle) channel.hold(false);
  channel.start();
  // A pending read of the observer holds the process: idle links (waiting for a controller that
  // may never answer) do not read it, and a refusal of their handshake goes unseen (they wait on).
  if (!o.idle)
    void watchEvents(events, (type) => {
      const refused = handshakeRefusal(type, where, c.curve !== undefined);
      if (refused) settle.reject(refused);
    });
  const notify = new Channel<Notification, never>({
    socket: sub,
    clusterKey: key,
    recvLabel: "pub",
    reliable: false,
    logger: log,
    onMessage: (m) => on.notification(m.header),
  });
  if (o.idle) notify.hold(false);
  notify.start();
  channel.send(connectMessage(o.replaces));
  return { links: { channel, notify, monitorStopped: () => observerStopped(events) }, handshake };
}

/** The error a failed ZeroMQ handshake (`type`, an observer event) means for this client, if any. */
function handshakeRefusal(type: string, where: string, curve: boolean): AuthenticationError | undefined {
  // Security mechanisms that do not match (a CURVE controller, a plain client file) fail the handshake.
  if (type === "handshake:error:protocol")
    return new AuthenticationError(
      `The handshake with the controller at ${where} failed: its security settings differ from this connection file's (is the cluster running with --curve?). ` +
        "Connect with the cluster's current client connection file.",
    );
  // The controller's ZAP handler refused our public key: say so now rather than time out.
  if (type === "handshake:error:auth" && curve)
    return new AuthenticationError(
      `The controller at ${where} refused this client's CURVE public key (it is not in the cluster's allow-list). ` +
        "Use the cluster's current client connection file, or add your public key to security/allowed_keys and restart the cluster.",
    );
  return undefined;
}

/**
 * Reads a socket's events until its first handshake has an outcome (success or a refusal), or the
 * socket closes. Not the observer's emitter mode (`on`): its loop never ends, and a pending read
 * holds the process, so the observer is read only while connecting and, after the socket's close,
 * until its monitor stops (see {@link observerStopped}).
 */
async function watchEvents(events: zmq.Observer, on: (type: string) => void): Promise<void> {
  try {
    while (!events.closed) {
      const { type } = await events.receive();
      on(type);
      if (type.startsWith("handshake")) return;
    }
  } catch {
    // The observer (or its socket) was closed while a read was pending.
  }
}

/** Observers whose monitor did not stop in time: kept for good rather than risk a reused name. */
const unstopped = new Set<zmq.Observer>();

/**
 * Reads a closed socket's observer until its monitor stops (libzmq has reaped the socket), after
 * which the observer closes itself. zeromq.js names the monitor endpoint after the observer's
 * address, and the monitor stays bound until the socket is reaped: an observer closed or collected
 * before that lets the next client's observer take the same name and fail with EADDRINUSE
 * ("Address already in use"). Bounded: one that does not stop within `ms` is kept referenced.
 */
async function observerStopped(events: zmq.Observer, ms = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const drained = (async () => {
    try {
      while (!events.closed) await events.receive();
    } catch {
      // Closed while a read was pending: what we waited for.
    }
  })();
  const inTime = await Promise.race([
    drained.then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
  ]);
  clearTimeout(timer);
  if (!inTime) unstopped.add(events);
}

/** Closes both channels at once (nothing to flush: the peer is gone or the client closes) and waits for the monitor. */
export async function closeLinks(links: Links): Promise<void> {
  await Promise.all([links.channel.close(0), links.notify.close(0)]);
  await links.monitorStopped();
}

/**
 * What a client says first (and again when the controller had taken it for gone); `replaces`: its
 * id before it lost the controller, when it connects again under a new one.
 */
export function connectMessage(replaces?: string): ClientToHub {
  const msg = {
    type: "connect",
    v: PROTOCOL_VERSION,
    pkg: PACKAGE_VERSION,
    pid: process.pid,
    host: hostname(),
  } as const;
  return replaces === undefined ? msg : { ...msg, replaces };
}

/** `rc.connectionStats()`: the client's channel to the controller, and its direct links' counts. */
export function linkReport(links: Links, direct: Required<DirectCounts> | undefined): LinkReport {
  const { sent, received, retransmitted, bytesSent, bytesReceived, dropped, faults } = links.channel.stats;
  return {
    sent,
    received,
    retransmitted,
    bytesSent: bytesSent ?? 0,
    bytesReceived: bytesReceived ?? 0,
    dropped: { ...dropped },
    ...(faults ? { faults: { ...faults } } : {}),
    ...(direct ? { direct } : {}),
  };
}
