"""Violations: what a run found wrong.

A violation is a finding, not a crash: the model did something a kernel
would panic, warn or deadlock on, and the engine recorded where and when.
Kinds are fixed strings so that tools can count and compare them across
runs; each carries the simulated time, the CPU and context, the model source
line, and the run's scheduling choices up to that moment (so the failing
prefix can be replayed).

Some kinds end the run (a kernel would panic or hang there); the others are
warnings in the manner of WITNESS, and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

class BadInput(ValueError):
    """Bad user input (a target, a variant, a parameter); the CLI exits 2 with the message."""


KINDS = (
    "use-after-free",
    "double-free",
    "assertion",
    "deadlock",
    "lock-order-reversal",
    "spl-violation",
    "sleep-with-spinlock",
    "sleep-in-atomic",
    "recursion",
    "unlock-not-held",
    "held-lock-freed",
    "livelock",
    "max-steps",
)

#: Kinds after which the run cannot meaningfully continue.
FATAL = frozenset({"use-after-free", "double-free", "assertion", "deadlock",
                   "recursion", "unlock-not-held", "livelock", "max-steps"})


@dataclass
class Violation:
    """One finding of one run."""

    #: One of ``KINDS``.
    kind: str
    #: Human-readable explanation, naming the objects and sites involved.
    message: str
    #: Simulated time of the finding, in ns.
    time_ns: int
    #: CPU on which it was found (-1 when found outside any CPU, e.g. at quiescence).
    cpu: int
    #: Thread name or ``irq:<source>``; "" outside any CPU.
    ctx: str
    #: Model source location ``path:line`` ("" when unknown).
    location: str
    #: Scheduling choices made before the finding (a replayable prefix).
    choices: list[int] = field(default_factory=list)
    #: Kind-specific data (sites of a lock-order reversal, the deadlock cycle, ...).
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The violation as plain JSON-ready data."""
        return {"kind": self.kind, "message": self.message, "time_ns": self.time_ns,
                "cpu": self.cpu, "ctx": self.ctx, "location": self.location,
                "choices": list(self.choices), "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "Violation":
        """A violation from ``to_dict``'s data (a saved failure file)."""
        return cls(kind=d["kind"], message=d["message"], time_ns=int(d["time_ns"]),
                   cpu=int(d["cpu"]), ctx=d.get("ctx", ""), location=d.get("location", ""),
                   choices=list(d.get("choices", [])), extra=dict(d.get("extra", {})))

    def one_line(self) -> str:
        """``kind: message @ location on CPUn at t ns``: the violation on one line."""
        where = f" @ {self.location}" if self.location else ""
        on = f" on CPU{self.cpu}" if self.cpu >= 0 else ""
        return f"{self.kind}: {self.message}{where}{on} at {self.time_ns} ns"


class ModelError(Exception):
    """The model itself is wrong (raised, yielded a non-operation, bad setup).

    This is bad input, not a finding: the CLI reports it on one line and
    exits with status 2.
    """
