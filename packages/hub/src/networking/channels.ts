import {
  Channel,
  type ClientToHub,
  type EngineToHub,
  type HubToClient,
  type HubToEngine,
  type Incoming,
  type Logger,
  type Notification,
  type StreamSink,
  type StreamStart,
} from "@ptcluster/protocol";
import type { BoundSockets } from "./sockets.js";

export interface HubChannels {
  clientCh: Channel<ClientToHub, HubToClient>;
  engineCh: Channel<EngineToHub, HubToEngine>;
  notifyCh: Channel<never, Notification>;
}

/**
 * The controller's authenticated channels over its bound sockets: reliable ones to clients and
 * engines (each message signed with the cluster key, acknowledged and resent), and the one-way
 * notifications.
 */
export function openChannels(
  sockets: BoundSockets,
  key: Buffer,
  log: Logger,
  on: {
    client(m: Incoming<ClientToHub>): void;
    engine(m: Incoming<EngineToHub>): void;
    /** A message in fragments whose head is in: a sink passes the rest on as it comes (cut-through). */
    clientStream(s: StreamStart<ClientToHub>): StreamSink | undefined;
    engineStream(s: StreamStart<EngineToHub>): StreamSink | undefined;
  },
): HubChannels {
  const clientCh = new Channel<ClientToHub, HubToClient>({
    socket: sockets.client,
    clusterKey: key,
    sendLabel: "h2c",
    recvLabel: "c2h",
    router: true,
    logger: log,
    onMessage: on.client,
    onStream: on.clientStream,
    // Probes while a message waits on a resend: acknowledged (or its gap reported) once a cut
    // link is back, so what it lost is resent then rather than after the backed-off timer.
    probe: (to) => void (to && clientCh.send({ type: "ping" }, undefined, to)),
    // A message in fragments over the cluster's limit is refused, as ZeroMQ refuses a larger frame.
    maxMessageBytes: sockets.maxMessageBytes,
  }).start();
  const engineCh = new Channel<EngineToHub, HubToEngine>({
    socket: sockets.engine,
    clusterKey: key,
    sendLabel: "h2e",
    recvLabel: "e2h",
    router: true,
    logger: log,
    onMessage: on.engine,
    onStream: on.engineStream,
    probe: (to) => void (to && engineCh.send({ type: "heartbeat", t: Date.now() }, undefined, to)),
    maxMessageBytes: sockets.maxMessageBytes,
  }).start();
  // Notifications are one-way and best effort (clients catch up from `tick`): no acknowledgements.
  const notifyCh = new Channel<never, Notification>({
    socket: sockets.notify,
    clusterKey: key,
    sendLabel: "pub",
    logger: log,
    reliable: false,
  });
  return { clientCh, engineCh, notifyCh };
}
