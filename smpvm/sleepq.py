"""Sleep queues: ``tsleep``/``msleep`` and ``wakeup`` on wait channels.

A wait channel is any model object (an item, a lock, a string).  Sleepers on
a channel wait in FIFO order; ``wakeup`` makes all of them runnable,
``wakeup_one`` the first.  A sleeper that used ``msleep`` takes its interlock
mutex again before it continues.  A wakeup that comes before the sleep is
lost, as in a kernel: the sleeper then never wakes, and the machine reports
the stall as a deadlock naming the channel.
"""

from __future__ import annotations

from .cpu import BLOCKED as CPU_BLOCKED


class SleepQueues:
    """The machine's table of sleepers, keyed by channel object."""

    def __init__(self) -> None:
        # Dict keyed by the channel object itself; only looked up, never
        # iterated, so its order cannot leak into a run.
        self._queues: dict = {}

    def label(self, chan) -> str:
        lab = getattr(chan, "label", None)
        if callable(lab):
            return lab()
        return str(chan)

    def sleep(self, m, c, chan, interlock) -> None:
        self._queues.setdefault(chan, []).append(c)
        c.state = CPU_BLOCKED
        c.sleep_chan = chan
        c.interlock = interlock
        # The level belongs to the thread: while it sleeps its CPU idles at spl0 and
        # takes interrupts (how a 4.x biowait under splbio gets its disk interrupt).
        c.sleep_spl = c.spl
        c.spl = 0
        if c.irqs:
            m.idle_until_interrupt(c)
        if m.tracing:
            m.record(c, "sleep", self.label(chan), "")
        m.footprint_touch(("chan", self.label(chan)))

    def wakeup(self, m, c, chan, one: bool) -> int:
        m.footprint_touch(("chan", self.label(chan)))
        q = self._queues.get(chan)
        if not q:
            return 0
        woken = q[:1] if one else list(q)
        del q[:len(woken)]
        if not q:
            del self._queues[chan]
        for s in woken:
            s.sleep_chan = None
            m.resume_after_sleep(s, c.clock + m.costs.block_wakeup_ns)
        return len(woken)
