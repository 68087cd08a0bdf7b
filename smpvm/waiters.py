"""Which sleeper ``wakeup_one`` wakes, when the real primitive does not say.

FreeBSD's ``wakeup_one`` wakes the sleeper that has waited longest, and that
is what a channel does by default.  But ``pthread_cond_signal`` wakes "at
least one" waiter, Linux's exclusive waits depend on queue position and
priority, and a model of either should not bake in one order.  After
``any_waiter(chan)`` a ``wakeup_one(chan)`` makes every sleeper runnable and
hands out one *claim*: the first to step takes it and goes on (retaking its
``msleep`` mutex); the others find it gone and sleep again.  Who steps first
is an ordinary scheduling decision, so every strategy explores which waiter
a signal wakes.  A sleeper woken and not yet stepped still counts as asleep:
a second ``wakeup_one`` before it steps adds a claim rather than being lost.
"""

from __future__ import annotations


class Claim:
    """A woken sleeper's first step: take a wakeup, or go back to sleep."""

    __slots__ = ("queues", "chan", "group", "interlock", "then", "blocked")

    def __init__(self, queues, chan, group, interlock, then, blocked):
        self.queues = queues
        self.chan = chan
        #: [wakeups not yet claimed, sleepers woken and not yet stepped], shared.
        self.group = group
        #: The ``msleep`` mutex to sleep with again, or None.
        self.interlock = interlock
        #: What the sleeper does once it has the wakeup (retake the mutex), or None.
        self.then = then
        #: The operations' "must wait" answer (``smpvm.ops.BLOCKED``, which imports this).
        self.blocked = blocked

    def execute(self, m, c):
        queues, group = self.queues, self.group
        m.footprint_touch(("chan", queues.label(self.chan)))
        group[1] -= 1
        if group[1] == 0:
            del queues.claims[self.chan]
        if group[0] > 0:
            group[0] -= 1
            c.op = self.then  # if retaking the mutex must wait, that is what it waits in
            return self.then.execute(m, c) if self.then is not None else None
        queues.sleep(m, c, self.chan, self.interlock)
        return self.blocked


def any_waiter(chan) -> None:
    """Let ``wakeup_one(chan)`` wake any of its sleepers, as the strategy chooses."""
    from .current import current_machine
    m = current_machine()
    if m is None:
        raise RuntimeError("any_waiter() is called while a scenario sets its machine up")
    m.sleepq.any_order.add(chan)


def wake_any(m, c, queues, chan, sleepers, one: bool, blocked) -> int:
    """A wakeup on an any-order channel: its sleepers run for the claims; how many get one.

    Sleepers woken earlier that have not stepped yet are still in the running,
    so a second ``wakeup_one`` before they step is not lost.
    """
    group = queues.claims.get(chan)
    if group is None:
        group = queues.claims[chan] = [0, 0]
    for s in sleepers:
        s.sleep_chan = None
        interlock = s.interlock
        m.resume_after_sleep(s, c.clock + m.costs.block_wakeup_ns)
        group[1] += 1
        if s.irq_depth:  # it continues when the handler on its CPU returns
            fr = s.frames[1]
            fr.saved_op = Claim(queues, chan, group, interlock, fr.saved_op, blocked)
        else:
            s.op = Claim(queues, chan, group, interlock, s.op, blocked)
    before = group[0]
    group[0] = min(group[1], group[0] + 1 if one else group[1])
    if not group[1]:
        del queues.claims[chan]
    return group[0] - before
