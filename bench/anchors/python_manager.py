"""The shared-state anchor: Python's multiprocessing SyncManager on loopback TCP, measured with the
workloads `npm run bench` runs on ptcluster's shared state, printing one JSON line each in the same
schema. Run: python3 bench/anchors/python_manager.py  (no packages beyond the standard library).

- shared_dict_set: 2,000 sequential `d[k] = i` on a Manager dict (one RPC each).
- shared_counter_add: 2,000 sequential increments of a Manager `Value` made atomic with a Manager
  `Lock` (acquire, read, write, release: 4 RPCs; the Manager's Value has no atomic add), and, for
  reference, the bare non-atomic `v.value += 1` (2 RPCs, loses updates under contention).
- shared_queue_throughput: a producer process puts 20,000 small items into a Manager Queue, this
  process gets them all.
"""
import json
import statistics
import sys
import time
from multiprocessing import Process
from multiprocessing.managers import SyncManager

SYSTEM = f"python-{sys.version_info.major}.{sys.version_info.minor}-multiprocessing-manager"
CALLS = 2000
ITEMS = 20000


def out(workload, **fields):
    print(json.dumps({"system": SYSTEM, "workload": workload, **fields}), flush=True)


def timed(op, calls=CALLS, warmup=200):
    for i in range(warmup):
        op(i)
    times = []
    for i in range(calls):
        t = time.perf_counter_ns()
        op(i)
        times.append((time.perf_counter_ns() - t) / 1000)
    times.sort()
    return {"calls": calls, "median_us": round(statistics.median(times), 1), "p99_us": round(times[int(calls * 0.99)], 1)}


def produce(q, n):
    for i in range(n):
        q.put(i)


def main():
    m = SyncManager(address=("127.0.0.1", 0), authkey=b"bench")
    m.start()
    try:
        d = m.dict()

        def dict_set(i):
            d["k"] = i

        out("shared_dict_set", **timed(dict_set))

        v = m.Value("i", 0)
        lock = m.Lock()

        def atomic_add(_):
            with lock:
                v.value += 1

        def racy_add(_):
            v.value += 1

        racy = timed(racy_add)
        out("shared_counter_add", **timed(atomic_add), non_atomic_median_us=racy["median_us"])

        q = m.Queue()
        producer = Process(target=produce, args=(q, ITEMS))
        start = time.perf_counter()
        producer.start()
        for i in range(ITEMS):
            if q.get() != i:
                raise SystemExit("queue items out of order")
        seconds = time.perf_counter() - start
        producer.join()
        out("shared_queue_throughput", items=ITEMS, items_per_s=round(ITEMS / seconds), seconds=round(seconds, 3))
    finally:
        m.shutdown()


if __name__ == "__main__":
    main()
