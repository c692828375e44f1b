"""The engine-to-engine anchor: mpi4py over Open MPI on this host, with the workloads `npm run bench`
runs on engine.comm, one JSON line each in the same schema (printed by rank 0). Run:

    mpiexec -n 2 --oversubscribe /usr/bin/python3 bench/anchors/mpi4py_comm.py

- comm_pingpong: 1,000 round trips of a small pickled object between ranks 0 and 1 (send/recv).
- comm_allreduce_scalar: 1,000 allreduce(sum) of a Python number (pickled).
- comm_allreduce_8MiB: 20 Allreduce(SUM) of a float64 array of 1,048,576 elements (the buffer interface, standard-library arrays).
"""
import json
import statistics
import sys
import time

from array import array
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
SYSTEM = f"mpi4py-{__import__('mpi4py').__version__}-{MPI.Get_library_version().split()[0].lower()}-python-{sys.version_info.major}.{sys.version_info.minor}"


def out(workload, **fields):
    if rank == 0:
        print(json.dumps({"system": SYSTEM, "workload": workload, "ranks": size, **fields}), flush=True)


def median_us(times):
    return round(statistics.median(times) * 1e6, 1)


lat = []
for i in range(1100):
    comm.Barrier()
    t = time.perf_counter()
    if rank == 0:
        comm.send(i, dest=1)
        comm.recv(source=1)
    elif rank == 1:
        comm.send(comm.recv(source=0), dest=0)
    if i >= 100:
        lat.append(time.perf_counter() - t)
out("comm_pingpong", calls=1000, median_us=median_us(lat))

lat = []
for i in range(1100):
    t = time.perf_counter()
    total = comm.allreduce(rank + i, op=MPI.SUM)
    if i >= 100:
        lat.append(time.perf_counter() - t)
    assert total == sum(r + i for r in range(size))
out("comm_allreduce_scalar", calls=1000, median_us=median_us(lat))

n = 1 << 20
send = array("d", [rank + 1.0]) * n
recv = array("d", [0.0]) * n
lat = []
for i in range(22):
    comm.Barrier()
    t = time.perf_counter()
    comm.Allreduce([send, MPI.DOUBLE], [recv, MPI.DOUBLE], op=MPI.SUM)
    if i >= 2:
        lat.append(time.perf_counter() - t)
assert recv[0] == size * (size + 1) / 2
out("comm_allreduce_8MiB", calls=20, median_ms=round(statistics.median(lat) * 1e3, 2))
