import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of a controller port that cuts its connections: after a connection has
 * carried `cutEveryBytes` (both ways), both of its sockets are destroyed, so ZeroMQ on each side
 * sees the link drop and reconnects, and whatever was in flight is lost. At most `maxCuts` cuts.
 */
export class CuttingProxy {
  cuts = 0;
  connections = 0;
  private readonly server: Server;
  private readonly live = new Set<Socket>();

  constructor(
    private readonly target: { host: string; port: number },
    private readonly options: { cutEveryBytes: number; maxCuts: number },
  ) {
    this.server = createServer((down) => this.accept(down));
  }

  /** Starts listening on a free loopback port; resolves with it. */
  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, "127.0.0.1", () => resolve((this.server.address() as { port: number }).port)),
    );
  }

  private accept(down: Socket): void {
    this.connections++;
    const up = tcpConnect(this.target);
    let carried = 0;
    const cut = () => {
      down.destroy();
      up.destroy();
    };
    const forward = (from: Socket, to: Socket) => {
      from.on("data", (d: Buffer) => {
        carried += d.length;
        if (!to.write(d)) from.pause();
        if (carried >= this.options.cutEveryBytes && this.cuts < this.options.maxCuts) {
          this.cuts++;
          cut();
        }
      });
      to.on("drain", () => from.resume());
      from.on("close", cut);
      from.on("error", cut);
    };
    for (const s of [down, up]) {
      this.live.add(s);
      s.on("close", () => this.live.delete(s));
    }
    forward(down, up);
    forward(up, down);
  }

  /** Stops accepting and destroys every connection. */
  close(): Promise<void> {
    for (const s of this.live) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
