import { AuthenticationError, PROTOCOL_VERSION, ProtocolError, VersionMismatchError } from "@ptcluster/protocol";

/** Why an engine could not register with its controller at `where` (`host:port`), and what to do. */
export const registrationErrors = {
  timeout: (where: string, ms: number): Error =>
    new ProtocolError(
      `The controller at ${where} did not answer registration within ${ms} ms. Is the cluster running, and is this the right connection file?`,
      { code: "ERR_PTC_REGISTER_TIMEOUT" },
    ),
  wrongKey: (where: string): Error =>
    new AuthenticationError(
      `The controller at ${where} rejected this engine's signatures: the key in the connection file does not match the running cluster. Copy the current engine connection file.`,
    ),
  curveRefused: (where: string): Error =>
    new AuthenticationError(
      `The controller at ${where} refused this engine's CURVE public key (not in the cluster's allow-list). Copy the cluster's current engine connection file.`,
    ),
  refused: (e: { code: string; message: string } | undefined): Error =>
    e?.code === "ERR_PTC_VERSION"
      ? new VersionMismatchError(e.message, PROTOCOL_VERSION, "?")
      : new ProtocolError(e?.message ?? "registration refused"),
};
