"""Models whose runs may never end: what explorations do with a model that loops forever.

``spins`` loops forever in every schedule (a thread that yields and never
returns); ``second_first`` only where its second thread steps first, so an
exhaustive search meets the loop at its second schedule; ``long_but_finite``
ends, but only after more steps than its own bound allows; ``spins_unbounded``
declares no bound (a search's own applies).  Bounds are small: quick tests.
"""

from smpvm import scenario, work


def forever():
    while True:
        yield work(1)


@scenario(description="a thread that never returns", max_steps=2000)
def spins(m, variant):
    m.spawn(forever(), name="A")


def claim(box, me, loops_if_first):
    if box.first is None:
        box.first = me
    yield work(1)
    if box.first == me and loops_if_first:
        while True:
            yield work(1)


@scenario(description="the run never ends where B steps first", max_steps=2000)
def second_first(m, variant):
    box = m.shared("box", first=None)
    m.spawn(claim(box, "A", False), name="A")
    m.spawn(claim(box, "B", True), name="B")


def count_to(n):
    for _ in range(n):
        yield work(1)


@scenario(description="runs that end, but past the scenario's own step bound",
          params={"steps": 3000}, max_steps=2000)
def long_but_finite(m, variant, steps):
    m.spawn(count_to(steps), name="A")
    m.spawn(count_to(10), name="B")


@scenario(description="a thread that never returns, with no step bound of its own")
def spins_unbounded(m, variant):
    m.spawn(forever(), name="A")
