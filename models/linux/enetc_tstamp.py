"""enetc: a transmit lock taken with softirqs enabled in a work item, and by a timer in softirq.

The NXP ENETC Ethernet driver sends PTP one-step timestamped packets one at
a time from a work item, ``enetc_tx_onestep_tstamp``, which runs in a
kworker (process context).  To keep the stack from transmitting meanwhile
it called ``netif_tx_lock()``: the device's transmit-queue locks
(``_xmit_ETHER``), taken with a plain ``spin_lock``.  The same locks are
taken by the stack's transmit path, ``sch_direct_xmit`` under
``__dev_queue_xmit``, which also runs in softirq context, for example when
the IPv6 router-solicitation timer (``addrconf_rs_timer``, a timer
callback, so in the timer softirq) sends a packet.  If that timer fires on
the CPU where the kworker holds the lock, the softirq spins on a lock its
own CPU holds: a hard lockup.  Lockdep reported it as ``inconsistent
{IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage`` of ``_xmit_ETHER``.

The fix, Linux commit 3c463721a73b ("net: enetc: avoid deadlock in
enetc_tx_onestep_tstamp()", Vladimir Oltean, January 2023): take the lock
with ``netif_tx_lock_bh()``, that is ``spin_lock_bh``, so softirqs cannot
run on that CPU while it is held.

Scenario ``onestep``: the work item runs in CPU1's kworker (the thread on
CPU1 is its body, as the worker runs it); CPU0 arms the router-solicitation
timer on CPU1, where it fires before, during or after the work's locked
window.  Variants:

* ``buggy``: ``spin_lock`` in the work item.  Found: witness's
  ``spl-violation`` in lockdep's words, ``{IN-SOFTIRQ-W} ->
  {SOFTIRQ-ON-W}``, in every run where both paths take the lock, and the
  ``deadlock`` itself (CPU1 interrupted while holding ``_xmit_ETHER``, its
  timer softirq waiting for it) in the runs where the timer lands inside
  the locked window.
* ``fixed``: ``spin_lock_bh``.  Clean: the timer waits until the work
  unlocks, then runs.

Durations are assumed orders of magnitude: a one-step send of a few
microseconds under the lock, a router solicitation armed a few
microseconds ahead.
"""

from smpvm import Spinlock, Timer, scenario, work

# One lock: the device's transmit-queue lock (netif_tx_lock takes every queue's).
LOCK_ORDER = []

# What each variant must show, checked by ``pytest --smpvm models/`` (smpvm.testing).
EXPECT = {
    "onestep": {"buggy": {"finds": "spl-violation", "runs": 300},
                "fixed": {"clean": 300}},
}


@scenario(variants={"buggy": "netif_tx_lock (spin_lock) in the work item",
                    "fixed": "netif_tx_lock_bh (spin_lock_bh), commit 3c463721a73b"},
          params={"send_ns": 3_000, "rs_delay_ns": 2_000}, cpus=2)
def onestep(m, variant, send_ns, rs_delay_ns):
    """enetc_tx_onestep_tstamp against addrconf_rs_timer on the kworker's CPU."""
    xmit_lock = Spinlock(m, "_xmit_ETHER")
    dev = m.shared("net_device", sent=0)

    def enetc_tx_onestep_tstamp():
        if variant == "fixed":
            yield xmit_lock.spin_lock_bh()
        else:
            yield xmit_lock.spin_lock()
        yield work(send_ns // 2)           # enetc_start_xmit of the held packet
        dev.sent += 1
        yield work(send_ns // 2)
        if variant == "fixed":
            yield xmit_lock.spin_unlock_bh()
        else:
            yield xmit_lock.spin_unlock()

    def addrconf_rs_timer():
        # ndisc_send_rs -> __dev_queue_xmit -> sch_direct_xmit: HARD_TX_LOCK
        yield xmit_lock.spin_lock()
        dev.sent += 1
        yield xmit_lock.spin_unlock()

    rs_timer = Timer(m, "rs_timer", addrconf_rs_timer, cpu=1)

    def ndisc():
        yield rs_timer.mod_timer(rs_delay_ns)  # router solicitation pending on CPU1
        yield work(100)

    m.spawn(ndisc(), name="addrconf", cpu=0)
    # the kworker that runs the queued tx_onestep_tstamp work item, on CPU1
    m.spawn(enetc_tx_onestep_tstamp(), name="kworker/1:3", cpu=1)
