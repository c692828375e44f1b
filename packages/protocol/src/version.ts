/** Wire protocol version: a different major version refuses to talk. */
export const PROTOCOL_VERSION = "2.0";
/** Package version of the ptcluster packages (they are released together). */
export const PACKAGE_VERSION = "0.1.0";

export function protocolMajor(version: string): number {
  return Number.parseInt(version.split(".")[0] ?? "", 10);
}
