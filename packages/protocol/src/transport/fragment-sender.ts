import type { ChannelLabel, Signer } from "../auth/session.js";
import { encodeBody } from "../codec/wire.js";
import type { Message } from "../peer-messages.js";
import { fragmentOut, fragmentsOut } from "./fragments.js";
import type { Link } from "./link.js";
import type { Outgoing } from "./send-window.js";
import { openOutStream, type OutStream, type StreamPart } from "./streams.js";

/**
 * A channel's sending side of messages in fragments: a large message it has whole, cut into
 * fragments at once (`fragments.ts`), and a message whose binary frames are still arriving, sent
 * fragment by fragment as they come (cut-through, `streams.ts`). It numbers the streams; the
 * channel owns the links and admits each fragment into its link's window (`admit`).
 */
export class FragmentSender {
  /** Stream id of the next message sent in fragments (over all links: unique while a peer may hold a half one). */
  private nextStream = 1;

  constructor(
    private readonly signer: Signer,
    private readonly admit: (link: Link, out: Outgoing) => void,
  ) {}

  /** A large message as a run of fragments, each tagged by the writer as it goes. */
  message(label: ChannelLabel, link: Link, body: Buffer[]): void {
    for (const out of fragmentsOut(this.signer, label, link, body, this.streamId())) this.admit(link, out);
  }

  /**
   * Starts a message on `link` whose binary frames are not here yet: its first fragment (header,
   * part bodies) goes now, each `pieces` call sends the next fragment as it comes, tagged for this
   * link, and `abort` tells the peer to drop it. The pieces must fill the announced frame lengths in
   * order, a piece never crossing frames (as they came in fragments). `open`: whether the link
   * still takes fragments (false once the channel closed or the peer was forgotten).
   */
  stream(
    label: ChannelLabel,
    link: Link,
    header: Message,
    parts: readonly StreamPart[],
    open: () => boolean,
  ): OutStream {
    const head = encodeBody(
      header,
      parts.map((p) => ({ body: p.body, frames: [] })),
    );
    return openOutStream(this.streamId(), head, parts, {
      open,
      send: (frags, through) => this.admit(link, fragmentOut(this.signer, label, link, frags, through)),
    });
  }

  private streamId(): number {
    const id = this.nextStream;
    this.nextStream = (this.nextStream + 1) >>> 0 || 1;
    return id;
  }
}
