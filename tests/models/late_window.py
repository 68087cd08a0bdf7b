"""An interrupt with a window that only some schedules raise.

The checker raises a device interrupt (landing anywhere within 1 us) only if
it runs before the setter: the first schedule dfs runs never raises it, a
later one does, and the search has to start over without its reduction.
The handler fails the run when it finds the setter's flag still clear.
"""

from smpvm import SPLBIO, current_machine, kassert, scenario, work


@scenario(description="a window interrupt first raised by a later schedule")
def late(m, variant):
    box = m.shared("box", flag=0)

    def handler():
        kassert((yield box.load("flag")) == 1, "the interrupt came before the flag was set")

    def setter():
        yield work(100)
        yield box.store("flag", 1)
        yield work(100)

    def checker():
        if (yield box.load("flag")) == 0:
            now = current_machine().now
            current_machine().interrupt(0, SPLBIO, handler, name="dev",
                                        window=(now, now + 1000))
        yield work(100)

    m.spawn(setter(), name="setter")
    m.spawn(checker(), name="checker")
