"""``replay``: make the recorded choices again, in order.

A saved failure holds the list of choices of its run.  Replaying them with
the same seed, parameters and view of time reproduces the run step for step.
If the model changed so that a recorded choice is no longer one of the
options, replay says so (``ReplayMismatch``) instead of silently running
something else; with a ``then`` strategy it finishes the run with that
strategy after the recorded prefix instead.
"""

from ..violations import ModelError
from .base import Strategy


class ReplayMismatch(ModelError):
    """The recorded choices do not fit the model as it is now."""


class Replay(Strategy):
    """Replays a recorded list of choices exactly; ``then`` continues past its end."""
    name = "replay"

    def __init__(self, choices, timed: bool = False, then: Strategy | None = None):
        self.choices = [int(x) for x in choices]
        self.timed = bool(timed)
        self.then = then
        self.wants_footprints = bool(then and then.wants_footprints)
        self.pos = 0
        #: True once the run went past the recorded prefix (with ``then``).
        self.continued = False

    def begin(self, seed):
        """Start a run: rewind to the first recorded choice."""
        super().begin(seed)
        self.pos = 0
        self.continued = False
        if self.then is not None:
            self.then.begin(seed)

    def pick(self, kind, options, last):
        """The next recorded choice (a mismatch with ``options`` is a ``ReplayMismatch``)."""
        if self.pos < len(self.choices) and not self.continued:
            cid = self.choices[self.pos]
            self.pos += 1
            if cid not in options and self.then is not None:
                self.continued = True  # the prefix stops fitting here: finish with `then`
                return self.then.pick(kind, options, last)
            if cid not in options and kind == "irq":
                raise ReplayMismatch(
                    f"recorded choice {self.pos} is {cid}, but the run is placing an interrupt "
                    f"there (irq decision): the model or its parameters changed since the "
                    f"recording; use --continue random to finish the run after the prefix "
                    f"that still fits")
            if cid not in options:
                raise ReplayMismatch(
                    f"recorded choice {self.pos} is CPU{cid} but only CPUs {options} could step "
                    f"({kind} decision): the model or its parameters changed since the recording; "
                    f"use --continue random to finish the run after the prefix that still fits")
            return cid
        if self.then is not None:
            self.continued = True
            return self.then.pick(kind, options, last)
        raise ReplayMismatch(
            f"the run needs a choice after all {len(self.choices)} recorded ones were used: the "
            f"model changed since the recording; use --continue random to finish it")

    def describe(self):
        """What the run replays, for reports."""
        return {"name": self.name, "choices": len(self.choices), "timed": self.timed}
