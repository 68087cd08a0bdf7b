"""``timed``: durations decide; exact ties go to the lowest CPU number.

The default strategy of ``smpvm run`` and of the lock-granularity studies.
Step durations come from the cost model with seeded jitter, so which CPU is
due first is a matter of simulated time; when two are due at exactly the same
nanosecond the lower CPU number goes first (a stable key, never an event id).
A released lock whose order the real lock does not fix goes to a waiter
drawn from the strategy's seeded stream, like the race of woken waiters on a
real machine, and an interrupt given a window lands where that stream says
(``Strategy.arrival``).
"""

from .base import Strategy


class Timed(Strategy):
    """The default strategy: CPUs step in order of simulated time; exact ties go to the lowest CPU."""
    name = "timed"
    timed = True
    draws_by_index = True

    def pick(self, kind, options, last):
        """The lowest CPU for a tie in time; a uniform draw among waiters for a hand-off;
        a drawn placement for a window interrupt."""
        if kind == "cpu":
            return options[0]
        if kind == "irq":
            return self.arrival()
        return self.choose(options)

    def index(self, n: int) -> int:
        """A uniform index below ``n``: the hand-off draw without building a list."""
        return int(self._rand.random() * n)  # random() < 1, so always below n
