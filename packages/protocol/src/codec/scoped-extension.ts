import { addExtension } from "msgpackr";

/**
 * msgpackr keeps its extensions in module-wide tables (`addExtension` has no per-instance form),
 * so an extension for a built-in class (ArrayBuffer, a typed array, Error, Number…) would change
 * how every other user of msgpackr in the process packs that class, and a decoder for our type
 * codes would change what their `unpack` accepts. A scoped extension is there only while its
 * codec is encoding (or decoding) — synchronous calls, so a flag says when: its class is a
 * stand-in whose `instanceof` asks `matches` only then, and its decoder fails outside them with
 * the error msgpackr gives for a type it does not know. For anyone else msgpackr behaves as if
 * it had never been registered, and the bytes our codec writes are the same as with a plain
 * extension.
 */
export interface ExtensionScope {
  /** This codec is encoding: the extensions' classes match. */
  encoding(): boolean;
  /** This codec is decoding: the extensions' decoders act. */
  decoding(): boolean;
}

interface Common {
  type: number;
  /** Which values (objects or functions) the extension encodes, asked only while encoding. */
  matches(value: object): boolean;
}
/** Encodes a value as bytes of its own (`pack`), decoded from those bytes (`unpack`). */
interface BytesExtension<T> extends Common {
  pack(value: T): Buffer;
  unpack(data: Uint8Array): unknown;
}
/** Encodes a value as another value msgpack encodes (`write`), rebuilt from it (`read`). */
interface ValueExtension<T, W> extends Common {
  write(value: T): W;
  read(datum: W): unknown;
}

export function addScopedExtension<T, W>(scope: ExtensionScope, ext: BytesExtension<T> | ValueExtension<T, W>): void {
  const { type, matches } = ext;
  const Class = class {};
  Object.defineProperty(Class, Symbol.hasInstance, {
    value: (v: unknown) =>
      scope.encoding() && v !== null && (typeof v === "object" || typeof v === "function") && matches(v),
  });
  // msgpackr's own words for a type it does not know: it says "type" when the payload came with
  // its own length (and then passes a second argument), not for a one-byte fixext.
  const unknown = (sized: boolean) => new Error(sized ? `Unknown extension type ${type}` : `Unknown extension ${type}`);
  if ("pack" in ext) {
    const { pack, unpack } = ext;
    addExtension({
      Class,
      type,
      pack,
      unpack: (...args: [Uint8Array, unknown?]) => {
        if (!scope.decoding()) throw unknown(args.length > 1);
        return unpack(args[0]);
      },
    });
    return;
  }
  const { write, read } = ext;
  // msgpackr keeps a value extension itself as the decoder of its type: it uses `read` if there is
  // one, and otherwise calls the extension as a function on the payload. Outside a decode `read`
  // is absent and the call fails, so msgpackr stops exactly where it would for an unknown type.
  const entry = Object.assign(
    (...args: [Uint8Array, unknown?]) => {
      throw unknown(args.length > 1);
    },
    { Class, type, write },
  );
  Object.defineProperty(entry, "read", { get: () => (scope.decoding() ? read : undefined) });
  addExtension(entry);
}
