"""The ipyparallel anchor of `npm run bench`: the workloads ptcluster compares with it directly,
measured the way bench/run.ts measures its own, one JSON line each in the same schema.

Run with the interpreter that has ipyparallel (Debian: `apt-get install python3-ipyparallel`):

    /usr/bin/python3 bench/anchors/ipp_push_pull.py [workload ...]
    /usr/bin/python3 bench/anchors/ipp_push_pull.py --controller-ip IP --engine-netns NS

Workloads (all three when none is named):
- push_pull_50MB: push 50 MiB of os.urandom to one engine and pull it back, checked equal; one
  untimed warm-up round, then the median of three timed rounds (mb_per_s_roundtrip = 100 / s).
- latency_apply_sync: 500 sequential `apply_sync` of a no-op on one engine after 20 warm-up calls.
- direct_broadcast_apply_sync: 200 `apply_sync` on a DirectView of every engine after 20 warm-up.

With --controller-ip and --engine-netns the controller binds IP (a bridge) and its one engine runs
in network namespace NS (`ip netns exec`, root only), so every byte crosses TCP over a veth; only
push_pull_50MB runs, reported as push_pull_50MB_remote. bench/ipp.ts makes the namespace.

ipyparallel runs in its best configuration here: the Cluster API with WARNING logs, default
(DictDB) controller. Its own IPYTHONDIR is a temporary directory unless IPYTHONDIR is set; every
process it starts (controller, engines, their nannies) is stopped and waited for before it exits,
on SIGTERM too.
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

ALL = ["push_pull_50MB", "latency_apply_sync", "direct_broadcast_apply_sync"]
MIB = 1024 * 1024


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workloads", nargs="*", help=f"any of {', '.join(ALL)} (default: all)")
    p.add_argument("--engines", type=int, default=int(os.environ.get("BENCH_ENGINES", "2")))
    p.add_argument("--controller-ip", help="bind the controller here (the bridge) for the remote run")
    p.add_argument("--engine-netns", help="start the one engine inside this network namespace")
    a = p.parse_args()
    if bool(a.controller_ip) != bool(a.engine_netns):
        p.error("--controller-ip and --engine-netns go together")
    unknown = set(a.workloads) - set(ALL)
    if unknown:
        p.error(f"unknown workloads {sorted(unknown)}; choose from {ALL}")
    return a


def private_ipython_dir():
    """A throwaway IPYTHONDIR (profiles, connection files, logs), removed at exit."""
    if os.environ.get("IPYTHONDIR"):
        return
    d = tempfile.mkdtemp(prefix="ipp-anchor-")
    os.environ["IPYTHONDIR"] = d
    atexit.register(shutil.rmtree, d, True)


def main():
    args = parse_args()
    remote = bool(args.engine_netns)
    wanted = ["push_pull_50MB"] if remote else (args.workloads or ALL)
    # SIGTERM (a timeout in the caller) unwinds through main's `finally`, which stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    private_ipython_dir()
    import ipyparallel as ipp  # once IPYTHONDIR is set: IPython finds its directories from it

    system = f"ipyparallel-{ipp.__version__}"

    def out(workload, **fields):
        print(json.dumps({"system": system, "workload": workload, **fields}), flush=True)

    cluster = ipp.Cluster(n=0, controller_ip=args.controller_ip or "", log_level=30)
    rc = None
    try:
        cluster.start_controller_sync()
        # The client waits for the controller's connection files: engines started after it find them.
        rc = cluster.connect_client_sync()
        if remote:
            # `ip netns exec` execs the command, so the launcher's pid is the engine's own and its
            # stop signals reach it.
            cmd = ["ip", "netns", "exec", args.engine_netns, sys.executable, "-m", "ipyparallel.engine"]
            cluster.start_engines_sync(n=1, engine_cmd=cmd)
        else:
            cluster.start_engines_sync(n=args.engines)
        rc.wait_for_engines(1 if remote else args.engines, timeout=120)
        if remote:
            # Check that the engine really is elsewhere: its network namespace is not ours.
            theirs = rc[rc.ids[0]].apply_sync(lambda: __import__("os").readlink("/proc/self/ns/net"))
            if theirs == os.readlink("/proc/self/ns/net"):
                raise SystemExit(f"the engine runs in this network namespace, not in {args.engine_netns}")
        one = rc[rc.ids[0]]
        one.block = True
        noop = lambda x=None: x  # noqa: E731 (shipped to the engine by value)

        if "latency_apply_sync" in wanted:
            for _ in range(20):
                one.apply_sync(noop, 1)
            lat = []
            for _ in range(500):
                s = time.perf_counter()
                r = one.apply_sync(noop, 1)
                lat.append(time.perf_counter() - s)
                if r != 1:
                    raise SystemExit(f"latency_apply_sync: wrong result {r!r}")
            lat.sort()
            out("latency_apply_sync", calls=500, median_us=round(lat[250] * 1e6), p99_us=round(lat[495] * 1e6))

        if "direct_broadcast_apply_sync" in wanted:
            dv = rc[:]
            for _ in range(20):
                dv.apply_sync(noop, 1)
            s = time.perf_counter()
            for _ in range(200):
                if dv.apply_sync(noop, 1) != [1] * len(rc.ids):
                    raise SystemExit("direct_broadcast_apply_sync: missing or wrong results")
            dt = time.perf_counter() - s
            out("direct_broadcast_apply_sync", calls=200, engines=len(rc.ids), us_per_call=round(dt / 200 * 1e6))

        if "push_pull_50MB" in wanted:
            payload = os.urandom(50 * MIB)
            times = []
            for round_ in range(4):
                s = time.perf_counter()
                one.push({"blob": payload})
                back = one.pull("blob")
                dt = time.perf_counter() - s
                if back != payload:
                    raise SystemExit("push_pull_50MB: the pulled value differs from the pushed one")
                if round_ > 0:
                    times.append(dt)
                # Untimed: drop the copies the engine, the client and the controller's DictDB keep,
                # so every round starts from the same memory.
                one.execute("del blob")
                del back
                rc.purge_everything()
            dt = statistics.median(times)
            name = "push_pull_50MB_remote" if remote else "push_pull_50MB"
            out(name, mb=50, mb_per_s_roundtrip=round(100 / dt), seconds=round(dt, 3), rounds=len(times))
    finally:
        stop(cluster, rc)


def stop(cluster, rc):
    """Stops the cluster, then waits for every process it started: each engine's nanny (started in
    its own session) outlives its engine by a second or two, to tell the controller."""
    import psutil  # a dependency of ipyparallel

    procs = psutil.Process().children(recursive=True)
    if rc is not None:
        rc.close()
    cluster.stop_cluster_sync()
    _, alive = psutil.wait_procs(procs, timeout=15)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=5)


if __name__ == "__main__":
    main()
