"""Which violation kinds count as a failure: ``--fail-on KINDS`` and ``--ignore KINDS``.

Witness reports a lock-order reversal as soon as both orders have been
seen, often long before (and in many more runs than) the deadlock it warns
of.  A user hunting the deadlock says ``--fail-on deadlock``: runs still
report every finding, but only a deadlock makes a run fail, is saved and
shrunk, stops ``--stop-on-first`` and sets the exit status.  ``--ignore
lock-order-reversal`` says the same from the other side.  A kind that ends
a run (an assertion, a use-after-free) still ends it when ignored: what
follows a failed assertion is not the program any more.  A run that ran into
the step bound ends a systematic search, whatever counts (``cut_at_bound``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..violations import KINDS, BadInput


@dataclass(frozen=True)
class FailOn:
    """The kinds that make a run fail."""

    #: Only these count (None: every kind not ignored).
    only: tuple | None = None
    #: These never count.
    ignore: tuple = ()

    def counts(self, kind: str) -> bool:
        return kind not in self.ignore and (self.only is None or kind in self.only)

    def failing(self, violations) -> list:
        """The violations that count, in order."""
        return [v for v in violations if self.counts(v.kind)]

    def kinds(self, result) -> list[str]:
        """A run's kinds that count, sorted (what ``RunResult.kinds`` gives unfiltered)."""
        return sorted({v.kind for v in result.violations if self.counts(v.kind)})

    @property
    def everything(self) -> bool:
        return self.only is None and not self.ignore


EVERY_KIND = FailOn()


def parse_kinds(text: str | None, option: str) -> tuple | None:
    """``"deadlock,assertion"`` -> a sorted tuple of known kinds; bad names are bad input."""
    if text is None:
        return None
    names = [k.strip() for k in str(text).split(",") if k.strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        raise BadInput(f"{option}: unknown violation kind {', '.join(unknown) or repr(text)}; "
                       f"choose from: {', '.join(KINDS)}")
    return tuple(sorted(set(names)))


def fail_on(only: str | None = None, ignore: str | None = None) -> FailOn:
    """The filter of ``--fail-on`` and ``--ignore`` as given on the command line."""
    return FailOn(parse_kinds(only, "--fail-on"), parse_kinds(ignore, "--ignore") or ())


def cut_at_bound(result) -> bool:
    """Did the run stop at the step bound (``max-steps``)?  A systematic search stops
    there: the schedules that branch off it may never end either, each would cost the
    whole bound, and the race analysis of so long a run grows with its square.  So a
    model that loops forever ends the search with that run, not hours later."""
    return any(v.kind == "max-steps" for v in result.violations)
