"""Synthetic lock workloads: the yardsticks the engine is checked against.

``single_lock`` is the closed queue of queueing theory: N CPUs each think
for an exponential time, then hold one lock for an exponential time.  With
free lock operations its mean wait and utilisation must match the exact
M/M/1//N (machine-repairman) values; with real costs, and a ticket or
queued spin lock, it is the experiment of Boyd-Wickizer et al.,
"Non-scalable locks are dangerous" (Linux Symposium 2012): a ticket lock's
hand-off slows as spinners pile up, and throughput collapses past a point.

Its rates and means are steady-state values (``smpvm.steady_state``): measured
from the end of the warm-up (``warmup_fraction`` of the run, or later where
MSER-5 finds the waits still settling) to the moment the first CPU runs out of
work, so neither the idle start nor the drain at the end biases them.  The
whole-run throughput stays available as ``run_acquisitions_per_us``.
"""

from smpvm import QueuedLock, SleepMutex, TicketLock, SpinMutex, scenario, steady_state, work

KINDS = {"mutex": SleepMutex, "spin": SpinMutex, "ticket": TicketLock, "queued": QueuedLock}


@scenario(
    variants={"mutex": "a FreeBSD default mutex (adaptive)",
              "spin": "a FreeBSD spin mutex (test-and-set; release order is a race)",
              "ticket": "a ticket spin lock (FIFO; hand-off grows with spinners)",
              "queued": "a queued (MCS-style) spin lock (FIFO; constant hand-off)"},
    params={"think_ns": 2000.0, "hold_ns": 200.0, "acquisitions": 2000,
            "exponential": True, "warmup_fraction": 0.05, "detect_warmup": True},
    param_help={"think_ns": "mean time outside the lock", "hold_ns": "mean time holding it",
                "acquisitions": "acquisitions per CPU",
                "exponential": "draw think and hold times from exponentials (else fixed)",
                "warmup_fraction": "share of the run before the drain left out as warm-up",
                "detect_warmup": "also leave out what MSER-5 finds still settling"},
    cpus=4)
def single_lock(m, variant, think_ns, hold_ns, acquisitions, exponential, warmup_fraction,
                detect_warmup):
    """N CPUs think, then hold one lock: the closed M/M/1//N queue."""
    lock = KINDS[variant](m, "the lock")
    ncpus = m.ncpus or 4
    rng = m.rng
    if exponential:
        # rounded to whole ns, not truncated: truncation would shorten every mean by 0.5 ns
        thinks = rng.exponential(think_ns, size=(ncpus, acquisitions)).round().astype(int).tolist()
        holds = rng.exponential(hold_ns, size=(ncpus, acquisitions)).round().astype(int).tolist()
    else:
        thinks = [[int(think_ns)] * acquisitions for _ in range(ncpus)]
        holds = [[int(hold_ns)] * acquisitions for _ in range(ncpus)]

    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    # when each acquisition was asked for, granted and released, per CPU
    log = [([], [], []) for _ in range(ncpus)]

    def cpu_loop(think, hold, requests, acquires, releases):
        for t, h in zip(think, hold):
            yield work(t)
            requests.append(m.now)
            yield lock.lock()
            acquires.append(m.now)
            yield work(h)
            yield lock.unlock()
            releases.append(m.now)

    for i in range(ncpus):
        m.spawn(cpu_loop(thinks[i], holds[i], *log[i]), f"cpu{i}")

    def throughput():
        if not m.now:
            return
        m.metric("run_acquisitions_per_us", ncpus * acquisitions / (m.now / 1e3))
        w = steady_state(*zip(*log), warmup_fraction=warmup_fraction, detect=detect_warmup)
        if w is not None:
            for name, value in w.metrics().items():
                m.metric(name, value)
    m.on_quiescence(throughput)
