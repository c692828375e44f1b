import * as zmq from "zeromq";
import { readFileSync } from "node:fs";
import { isCurveKey } from "./z85.js";

/** A CURVE key pair, Z85-encoded. */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/**
 * The CURVE keys of a cluster started with `--curve`: the controller's pair, and one pair each for
 * clients and engines (written into their connection files). The controller accepts connections
 * only from public keys in its allow-list: these two and any listed in `security/allowed_keys`.
 */
export interface CurveMaterial {
  server: CurveKeyPair;
  client: CurveKeyPair;
  engine: CurveKeyPair;
}

/** What a client or engine needs to connect with CURVE (in its connection file). */
export interface CurveClientKeys {
  serverKey: string;
  publicKey: string;
  secretKey: string;
}

export function newCurveMaterial(): CurveMaterial {
  if (!zmq.capability.curve) throw new Error("This ZeroMQ build has no CURVE support");
  return { server: zmq.curveKeyPair(), client: zmq.curveKeyPair(), engine: zmq.curveKeyPair() };
}

/**
 * Public keys listed one per line in `file`; lines starting with `#` are comments (not trailing
 * text: `#` is a Z85 character). A missing file lists none.
 */
export function readAllowedKeys(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("#"))
    .map((l) => {
      if (!isCurveKey(l)) throw new Error(`${file}: \`${l}\` is not a Z85 CURVE public key (40 characters)`);
      return l;
    });
}

/** Socket options for a client or engine connecting with CURVE. */
export function curveClientOptions(
  keys: CurveClientKeys | undefined,
): { curveServerKey: string; curvePublicKey: string; curveSecretKey: string } | Record<string, never> {
  return keys ? { curveServerKey: keys.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey } : {};
}
