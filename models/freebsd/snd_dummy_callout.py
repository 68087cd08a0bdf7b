"""snd_dummy: a callout that re-arms itself, stopped at detach with ``callout_stop``.

FreeBSD's ``snd_dummy`` sound driver plays through a callout: every tick
``dummy_chan_io`` runs in softclock with the driver's mutex held (the
callout was set up with ``callout_init_mtx``), drops the mutex around
``chn_intr`` on each running channel, takes it back and re-arms itself
with ``callout_schedule`` while a channel still runs.  ``dummy_detach``
took the mutex, called ``callout_stop`` and went on to ``pcm_unregister``,
which frees the channels.  ``callout_stop`` cannot stop a handler that is
already past the point where it took the lock: here the handler is inside
``chn_intr`` with the mutex dropped, so ``callout_stop`` returns 0, and the
handler either touches the channel after ``pcm_unregister`` freed it or
re-arms itself so that the next tick does.  The kernel panicked under
KASAN with "UMAUseAfterFree" in ``chn_intr`` called from
``dummy_chan_io`` (``softclock_call_cc``).

The fix, FreeBSD commit 0432b2183f25ddba7e13a33adf1dd6f9563b0bd1
("snd_dummy: Make callout stopping more robust", Differential Revision
D50386, 2025): a flag under the mutex stops the handler from re-arming,
and ``callout_drain`` waits for a running handler before
``pcm_unregister``.

Scenario ``detach``: CPU0 runs ``dummy_detach``; the callout fires on CPU1
(softclock there) every ``tick_ns``.  Variants:

* ``buggy``: ``callout_stop`` under the mutex, then ``pcm_unregister``.
  Found: ``use-after-free`` of the ``pcm_channel`` (in the handler's
  ``chn_intr``).
* ``fixed``: the stop flag, ``callout_stop`` under the mutex, then
  ``callout_drain`` without it, then ``pcm_unregister``.  Clean.
* ``drain-locked``: a what-if that drains *with* the mutex held.  Found:
  ``deadlock`` whenever the handler is running (it waits for the mutex
  the drainer holds, the drainer sleeps until the handler ends).

The steps are cut at the driver's lock operations and at ``chn_intr``'s
buffer update; durations are assumed orders of magnitude (a tick of a few
microseconds, ``chn_intr`` a few hundred nanoseconds).  The channel plays
``ticks`` periods and then stops re-arming: in the exploration views time
does not order CPUs, so a callout that re-armed itself forever could keep
softclock's CPU busy for ever while detach waits its turn.
"""

from smpvm import Callout, SleepMutex, Zone, scenario, work

# dummy_chan_io runs with the driver mutex held by softclock; chn_intr takes no
# lock the model has: no documented order between two locks.
LOCK_ORDER = []

# What each variant must show, checked by ``pytest --smpvm models/`` (smpvm.testing).
EXPECT = {
    "detach": {"buggy": {"finds": "use-after-free", "runs": 300},
               "fixed": {"clean": 300},
               "drain-locked": {"finds": "deadlock", "runs": 300}},
}


@scenario(variants={"buggy": "callout_stop, then pcm_unregister frees the channel",
                    "fixed": "stop flag + callout_drain before pcm_unregister (0432b2183f25)",
                    "drain-locked": "what-if: callout_drain with the driver mutex held"},
          params={"tick_ns": 2_000, "intr_ns": 300, "ticks": 4}, cpus=2)
def detach(m, variant, tick_ns, intr_ns, ticks):
    """dummy_detach against the self-re-arming dummy_chan_io callout."""
    channels = Zone(m, "pcm_channel", {"running": True, "ptr": 0}, type_name="pcm_channel")
    ch = channels.new()
    sc = m.shared("dummy_softc", stopped=False)
    lock = SleepMutex(m, "dummy lock")
    callout = Callout(m, "dummy callout", lock=lock, cpu=1)

    def chn_intr(chan):
        yield work(intr_ns)
        chan.ptr += 1                      # the buffer pointer advances

    def dummy_chan_io():
        # softclock holds the driver mutex here (callout_init_mtx)
        if ch.running:
            yield lock.unlock()
            yield from chn_intr(ch)
            yield lock.lock()
        if not sc.stopped and ch.ptr < ticks:
            yield callout.schedule(tick_ns)

    def dummy_detach():
        yield callout.reset(tick_ns, dummy_chan_io)   # the channel was started earlier
        yield work(tick_ns)                           # playing
        yield lock.lock()
        if variant == "fixed":
            sc.stopped = True
        yield callout.stop()
        if variant == "drain-locked":
            yield callout.drain()
        yield lock.unlock()
        if variant == "fixed":
            yield callout.drain()
        yield channels.free(ch)                       # pcm_unregister -> chn_kill

    m.spawn(dummy_detach(), name="dummy_detach", cpu=0)
