"""Synthetic lock workloads: the yardsticks the engine is checked against.

``single_lock`` is the closed queue of queueing theory: N CPUs each think
for an exponential time, then hold one lock for an exponential time.  With
free lock operations its mean wait and utilisation must match the exact
M/M/1//N (machine-repairman) values; with real costs, and a ticket or
queued spin lock, it is the experiment of Boyd-Wickizer et al.,
"Non-scalable locks are dangerous" (Linux Symposium 2012): a ticket lock's
hand-off slows as spinners pile up, and throughput collapses past a point.
"""

from smpvm import QueuedLock, SleepMutex, TicketLock, SpinMutex, scenario, work

KINDS = {"mutex": SleepMutex, "spin": SpinMutex, "ticket": TicketLock, "queued": QueuedLock}


@scenario(
    variants={"mutex": "a FreeBSD default mutex (adaptive)",
              "spin": "a FreeBSD spin mutex (test-and-set; release order is a race)",
              "ticket": "a ticket spin lock (FIFO; hand-off grows with spinners)",
              "queued": "a queued (MCS-style) spin lock (FIFO; constant hand-off)"},
    params={"think_ns": 2000.0, "hold_ns": 200.0, "acquisitions": 2000,
            "exponential": True},
    param_help={"think_ns": "mean time outside the lock", "hold_ns": "mean time holding it",
                "acquisitions": "acquisitions per CPU",
                "exponential": "draw think and hold times from exponentials (else fixed)"},
    cpus=4)
def single_lock(m, variant, think_ns, hold_ns, acquisitions, exponential):
    """N CPUs think, then hold one lock: the closed M/M/1//N queue."""
    lock = KINDS[variant](m, "the lock")
    ncpus = m.ncpus or 4
    rng = m.rng
    if exponential:
        thinks = rng.exponential(think_ns, size=(ncpus, acquisitions)).astype(int).tolist()
        holds = rng.exponential(hold_ns, size=(ncpus, acquisitions)).astype(int).tolist()
    else:
        thinks = [[int(think_ns)] * acquisitions for _ in range(ncpus)]
        holds = [[int(hold_ns)] * acquisitions for _ in range(ncpus)]

    def cpu_loop(think, hold):
        for t, h in zip(think, hold):
            yield work(t)
            yield lock.lock()
            yield work(h)
            yield lock.unlock()

    for i in range(ncpus):
        m.spawn(cpu_loop(thinks[i], holds[i]), f"cpu{i}")

    def throughput():
        if m.now:
            m.metric("acquisitions_per_us", ncpus * acquisitions / (m.now / 1e3))
    m.on_quiescence(throughput)
