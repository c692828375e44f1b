import { ClientClosedError, HubLostError, type ConnectionInfo } from "@ptcluster/protocol";

/**
 * Waits for the controller's welcome (`handshake`), at most `timeoutMs`, or until `signal` aborts:
 * a controller that does not answer is named with its address and what to check.
 */
export async function awaitWelcome(
  handshake: Promise<unknown>,
  c: ConnectionInfo,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      handshake,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new HubLostError(
                `No answer from the controller at ${c.host}:${c.port} within ${timeoutMs} ms (profile \`${c.profile}\`). ` +
                  "It may have exited (check `ptcluster list`, or restart it with `ptcluster start`), or it runs with --curve and this connection file has no CURVE keys.",
              ),
            ),
          timeoutMs,
        );
        onAbort = () => reject(new ClientClosedError("Connecting was aborted."));
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
