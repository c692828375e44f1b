import { SharedNamespace, type PendingSharedCalls } from "@ptcluster/protocol";
import { inResultScope, noteResult, ScopedSharedCall } from "../results/result-scope.js";

/**
 * `rc.shared`: named objects held by the controller, whose calls go out through `calls`. A call
 * made in a tool's scope (a REPL line) is abortable with that line.
 */
export function clientSharedNamespace(calls: PendingSharedCalls, assertOpen: () => void): SharedNamespace {
  return new SharedNamespace({
    call: (name, spec, op, args, parts, signal) => {
      assertOpen();
      if (!inResultScope()) return calls.call(name, spec, op, args, parts, signal);
      const scoped = new ScopedSharedCall();
      noteResult(scoped);
      const call = calls.call(name, spec, op, args, parts, scoped.signal(signal));
      void call.then(
        () => (scoped.pending = false),
        () => (scoped.pending = false),
      );
      return call;
    },
  });
}
