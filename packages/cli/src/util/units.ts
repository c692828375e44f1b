import { InvalidOptionError } from "@ptcluster/protocol";

/** `--max-message-mb` in bytes, checked. */
export function mebibytes(mb: number): number {
  if (typeof mb !== "number" || !Number.isFinite(mb) || mb <= 0 || mb > 4096) {
    throw new InvalidOptionError(
      `Expected \`--max-message-mb\` to be a number of MiB above 0 and at most 4096, got \`${String(mb)}\``,
    );
  }
  return Math.floor(mb * (1 << 20));
}
