"""The cost model: how long each kind of step takes, in nanoseconds.

Every duration the engine charges comes from one ``Costs`` value, so a study
can change the machine's character (a slow interconnect, free lock
operations for a queueing check) by overriding fields, e.g.
``smpvm run ... --set costs.handoff_ns=250``.

Defaults are orders of magnitude for a 2010s x86 server; the sources are the
cross-model cost table in the project's model specifications (all marked
*assumed* there unless stated):

* uncontended mutex acquire + release: 20-50 ns
* cache-line transfer on a contended hand-off: ~100 ns
* block on a turnstile / Linux mutex and get woken: 2-5 us
* UMA/slab allocation fast path: ~100 ns
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Costs:
    """Durations charged by the engine; every field is in nanoseconds unless named otherwise."""

    #: Uncontended lock acquisition (atomic compare-and-swap on a local line).
    acquire_ns: int = 20
    #: Lock release.
    release_ns: int = 10
    #: Moving the lock's cache line from the CPU that touched it last.
    cacheline_ns: int = 100
    #: Hand-off of a released lock to a spinning waiter.
    handoff_ns: int = 100
    #: Extra hand-off time of a ticket lock per CPU still spinning on it
    #: (every spinner re-reads the line after each release).
    ticket_per_spinner_ns: int = 100
    #: A waiter that blocked (turnstile, sleep queue) being woken and scheduled.
    block_wakeup_ns: int = 3000
    #: Raising or lowering the interrupt priority level.
    spl_ns: int = 5
    #: Entering an interrupt handler (vector, save state).
    irq_entry_ns: int = 200
    #: Zone (UMA/slab) allocation and free fast paths.
    zone_alloc_ns: int = 100
    zone_free_ns: int = 50
    #: A load or store of a shared field issued as its own step.
    field_ns: int = 1
    #: Relative timing jitter: every duration d becomes d * (1 + jitter * u)
    #: with u uniform in [-1, 1), drawn from the run's seeded generator.
    jitter: float = 0.1

    @classmethod
    def field_names(cls) -> list[str]:
        """The cost fields, in declaration order (what ``--set costs.<field>=`` accepts)."""
        return [f.name for f in dataclasses.fields(cls)]

    def override(self, **changes) -> "Costs":
        """A copy with some fields changed; unknown names or negative values raise ValueError."""
        names = set(self.field_names())
        for key, value in changes.items():
            if key not in names:
                raise ValueError(
                    f"unknown cost 'costs.{key}'; known: {', '.join(sorted(names))}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 \
                    or not math.isfinite(value):
                raise ValueError(f"costs.{key} must be a finite number >= 0, got {value!r}")
        converted = {k: (float(v) if k == "jitter" else int(v)) for k, v in changes.items()}
        return dataclasses.replace(self, **converted)


#: Costs with every lock and memory operation free and no jitter: the setting
#: under which lock statistics can be compared with exact queueing formulas.
FREE = Costs(acquire_ns=0, release_ns=0, cacheline_ns=0, handoff_ns=0,
             ticket_per_spinner_ns=0, block_wakeup_ns=0, spl_ns=0, irq_entry_ns=0,
             zone_alloc_ns=0, zone_free_ns=0, field_ns=0, jitter=0.0)
