"""mpc52xx SPI: a work item still queued or running when remove frees the controller.

The MPC52xx PSC SPI driver runs its transfer state machine from a work item,
``mpc52xx_spi_wq``, which the interrupt handler (and the transfer path)
queue with ``schedule_work(&ms->work)``; the work takes ``ms->lock`` and
advances the state machine stored in ``ms``.  ``mpc52xx_spi_remove`` freed
the interrupts and the GPIOs and unregistered the controller, which frees
``ms``, without making sure the work was neither queued nor running: the
work then ran on freed memory.

The fix, Linux commit 984836621aad98802d92c4a3047114cf518074c8 ("spi:
mpc52xx: Add cancel_work_sync before module remove", 2023): call
``cancel_work_sync(&ms->work)`` in remove before the controller is
unregistered.

Scenario ``remove``: CPU0 runs ``mpc52xx_spi_remove``; the SPI interrupt
arrives on CPU1 and queues the work; the system workqueue's worker runs
it on a free CPU.  Variants:

* ``buggy``: no cancel.  Found: ``use-after-free`` naming the work item
  (``ms`` freed with the work pending or running) or the work's access to
  the freed ``ms``.
* ``fixed``: ``free_irq`` first (no new queueing), then
  ``cancel_work_sync``.  Clean.

Durations are assumed orders of magnitude: an interrupt a few
microseconds into the remove, a state-machine step of a microsecond.
"""

from smpvm import (SPLBIO, DrainRef, Spinlock, WorkItem, Workqueue, Zone, cancel_work_sync,
                   scenario, work)

# ms->lock is the only lock: no documented order.
LOCK_ORDER = []

# What each variant must show, checked by ``pytest --smpvm models/`` (smpvm.testing).
EXPECT = {
    "remove": {"buggy": {"finds": "use-after-free", "runs": 300},
               "fixed": {"clean": 300}},
}


@scenario(variants={"buggy": "remove frees ms with the work possibly queued or running",
                    "fixed": "cancel_work_sync before unregistering (984836621aad)"},
          params={"irq_at_ns": 1_000, "fsm_ns": 1_000}, cpus=3)
def remove(m, variant, irq_at_ns, fsm_ns):
    """mpc52xx_spi_remove against the interrupt-queued mpc52xx_spi_wq."""
    controllers = Zone(m, "spi_master", {"state": 0}, type_name="mpc52xx_spi")
    ms = controllers.new()
    lock = Spinlock(m, "ms->lock")
    system_wq = Workqueue(m, "events")

    def mpc52xx_spi_wq():
        yield lock.spin_lock_irq()
        yield work(fsm_ns)                 # mpc52xx_spi_fsm_process
        ms.state += 1
        yield lock.spin_unlock_irq()

    ms_work = WorkItem(m, "ms->work", mpc52xx_spi_wq, owner=ms)

    # free_irq: no new handler starts, and a running one is waited for
    irq_desc = DrainRef(m, "psc_spi irq")

    def mpc52xx_spi_irq():
        if irq_desc.acquire():
            yield system_wq.queue_work(ms_work)
            irq_desc.release()

    m.interrupt(1, SPLBIO, mpc52xx_spi_irq, name="psc_spi", at_ns=irq_at_ns)

    def mpc52xx_spi_remove():
        yield work(irq_at_ns)              # the controller is in use until now
        yield irq_desc.drain()             # free_irq
        if variant == "fixed":
            yield cancel_work_sync(ms_work)
        yield controllers.free(ms)         # spi_unregister_controller drops the last reference

    m.spawn(mpc52xx_spi_remove(), name="mpc52xx_spi_remove", cpu=0)
