import type * as zmq from "zeromq";
import type { Logger } from "pino";
import type { ChannelLabel } from "../auth/session.js";
import type { Message } from "../peer-messages.js";
import type { FaultSpec } from "./faults.js";
import type { Incoming } from "./inbound.js";
import type { LinkLimits } from "./send-window.js";
import type { StreamSink, StreamStart } from "./streams.js";

/** How a `Channel` (`channel.ts`) is made: its socket and key, its labels, what it does with what comes, its limits. */
export interface ChannelOptions<In extends Message> {
  socket: zmq.Socket;
  clusterKey: Buffer;
  /** Label bound into outgoing signatures (undefined: this channel does not send). */
  sendLabel?: ChannelLabel;
  /** Label expected on incoming signatures (undefined: this channel does not receive). */
  recvLabel?: ChannelLabel;
  /** ROUTER: frames start with the peer's routing id, and outgoing messages need `to`. */
  router?: boolean;
  /** Our own routing id, bound into what a ROUTER sends us. */
  selfId?: Buffer;
  logger: Logger;
  onMessage?: (msg: Incoming<In>) => void;
  /**
   * A message in fragments whose head (header, part bodies) is in: return a sink to take its
   * binary frames piece by piece as they arrive (cut-through, `streams.ts`), or undefined to have
   * it assembled and delivered whole to `onMessage`.
   */
  onStream?: (start: StreamStart<In>) => StreamSink | undefined;
  /** A peer told us (unsigned, with evidence) that it received exactly what we signed and the tag failed: our key is wrong. */
  onAuthFailed?: () => void;
  /** Upper bound on queued outgoing messages before `send` reports backpressure. */
  maxQueue?: number;
  /**
   * Reliable delivery (default true): per-peer acknowledgements and retransmission, each message
   * delivered once and in order. False for one-way channels (notifications), where sequence
   * numbers only need to increase.
   */
  reliable?: boolean;
  /** Caps on one peer's unacknowledged messages (default 10,000 messages, 256 MiB). */
  window?: Partial<LinkLimits>;
  /**
   * Messages of this many bytes or more (their frames) go as a run of fragments, each tagged as it
   * is written and checked as it arrives (`fragments.ts`; default: `PTCLUSTER_FRAGMENT_KB`, else
   * never). Reliable channels only.
   */
  fragmentMin?: number;
  /** The largest message taken in fragments (bytes; default `DEFAULT_MAX_MESSAGE_BYTES` and 64 KiB). */
  maxMessageBytes?: number;
  /**
   * Sends a small message the peer acknowledges (the owner's ping), to `to` (a ROUTER's peer).
   * Called while a peer's oldest message has been sent again and is still unacknowledged: a link
   * whose connection dropped and came back is found within `PROBE_MS` (`retransmit-clock.ts`) rather than after
   * the backed-off resend timer or the owner's next heartbeat (what it lost is then resent on
   * the gap the peer reports). Without it, recovery waits for those.
   */
  probe?: (to: Buffer | undefined) => void;
  /** Test only: inject faults on this channel's sends (default: from `PTCLUSTER_TEST_FAULTS`; null: never). */
  faults?: FaultSpec | null;
}
