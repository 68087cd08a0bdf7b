"""Ticket spin lock: FIFO, and its hand-off slows as spinners pile up.

Every spinner polls the one ``now_serving`` word, so each release
invalidates the line in every waiting CPU's cache and the next holder's read
queues behind theirs: hand-off time grows with the number of spinners
(Boyd-Wickizer et al., "Non-scalable locks are dangerous", 2012).  That is
the mechanism behind the collapse the ``spin_collapse`` study draws.
"""

from .base import ExclusiveOps, Lock


class TicketLock(ExclusiveOps, Lock):
    """Ticket spin lock: FIFO, with a hand-off that slows as spinners pile up."""
    kind = "ticket spinlock"
    spin = True
    waiters_spin = True
    fifo = True

    def handoff_cost(self, m) -> int:
        """Hand-off time: the base cost plus one line re-read per CPU still spinning."""
        # every CPU still spinning (the next holder included) re-reads the line
        return m.costs.handoff_ns + m.costs.ticket_per_spinner_ns * len(self.waiters)
