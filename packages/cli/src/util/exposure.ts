import { ClusterStartError } from "@ptcluster/protocol";

/** Is this bind address reachable only from this machine? */
export function isLoopback(ip: string): boolean {
  return ip === "localhost" || ip === "::1" || /^127\.\d+\.\d+\.\d+$/.test(ip);
}

/**
 * A controller reachable from the network must say how it is protected: `--curve` (encrypted,
 * with an allow-list of public keys) or, explicitly, `--no-encryption` (frames still
 * authenticated with the cluster key, but readable on the wire), which is announced loudly.
 */
export function checkExposure(ip: string, curve: boolean, encryption: boolean | undefined): void {
  if (isLoopback(ip) || curve) return;
  if (encryption === false) {
    process.stderr.write(
      `\n*** WARNING: the controller binds ${ip} WITHOUT ENCRYPTION (--no-encryption). ***\n` +
        "*** Anyone on the network can read task code, data and results; messages are still   ***\n" +
        "*** authenticated with the cluster key. Use --curve unless the network is trusted.    ***\n\n",
    );
    return;
  }
  throw new ClusterStartError(
    `Binding ${ip} makes the controller reachable from the network. Add --curve (CurveZMQ encryption, only allowed public keys may connect), ` +
      "or --no-encryption to accept an unencrypted cluster on a trusted network.",
  );
}
