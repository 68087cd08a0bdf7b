"""Interface addresses under the network epoch: a reference taken on a dying ``ifaddr``.

Since FreeBSD 12 the interface address lists are read inside the network
epoch (``NET_EPOCH_ENTER``) without the address lock: a reader walking
``if_addrhead`` may use every ``ifaddr`` it finds until it leaves the
epoch, because ``ifa_free`` destroys an address only through
``NET_EPOCH_CALL`` once the last reference is gone, that is after every
section open at that time has ended.  A reader that wants to keep the
address past the section takes a reference with ``ifa_ref``.  The race:
thread 1 removes the address and drops the last reference (the count goes
to 0 and the destruction is scheduled for after the grace period); thread
2, still inside its section, had found the address and now calls
``ifa_ref``, which takes the count from 0 back to 1; it leaves the epoch,
the grace period ends, the address is freed, and thread 2 goes on using it.

The fix, FreeBSD commit 600eade2fb4faacfcd408a01140ef15f85f0c817 ("Add
ifa_try_ref() to simplify ifa handling inside epoch", Differential Revision
D28639, 2021): ``ifa_try_ref`` refuses a count of 0
(``refcount_acquire_if_not_zero``), callers treat the address as gone, and
``ifa_ref`` asserts the count is not 0.  The same change for interfaces,
``if_try_ref``, followed in D28836.

Scenario ``lookup``: CPU0 deletes the address (``in_control`` →
``ifa_free``); CPU1 looks it up inside the epoch and keeps it
(``ifa_ifwithaddr`` + reference).  Variants:

* ``buggy``: ``ifa_ref`` (``refcount_acquire``).  Found: the increment on
  0, a ``use-after-free`` naming the ``ifaddr`` (refcount rules), in the
  runs where the lookup comes after the last release.
* ``fixed``: ``ifa_try_ref``.  Clean.
* ``no-epoch-call``: a what-if in which the fixed lookup meets an
  ``ifa_free`` that frees the address at once instead of through
  ``NET_EPOCH_CALL``.  Found: a ``use-after-free``
  reported with the reader's epoch section (where it entered, where it
  loaded the pointer), even in runs where the reader never touches it again.

Durations are assumed orders of magnitude: an address comparison of a few
tens of nanoseconds, a use of the address of a few hundred.
"""

from smpvm import (Epoch, SleepMutex, Zone, refcount_acquire, refcount_acquire_if_not_zero,
                   refcount_release, scenario, work)

# IF_ADDR_WLOCK guards the list for writers; readers use the epoch only.
LOCK_ORDER = []

# What each variant must show, checked by ``pytest --smpvm models/`` (smpvm.testing).
EXPECT = {
    "lookup": {"buggy": {"finds": "use-after-free", "runs": 300},
               "fixed": {"clean": 300},
               "no-epoch-call": {"finds": "use-after-free", "runs": 300}},
}


@scenario(variants={"buggy": "ifa_ref inside the epoch: 0 -> 1 revives a dying address",
                    "fixed": "ifa_try_ref (600eade2fb4f)",
                    "no-epoch-call": "what-if: ifa_free frees at once, no NET_EPOCH_CALL"},
          params={"use_ns": 300}, cpus=2)
def lookup(m, variant, use_ns):
    """ifa_free of a deleted address against an epoch reader taking a reference."""
    ifaddrs = Zone(m, "ifaddr", {"ifa_refcnt": 1, "ifa_addr": 0x0a000001}, type_name="ifaddr")
    ifa = ifaddrs.new()                        # the interface's own reference
    ifp = m.shared("ifnet", if_addrhead=ifa)
    addr_lock = SleepMutex(m, "if_addr_lock")
    net_epoch = Epoch(m, "net_epoch_preempt")

    def ifa_destroy(a):
        yield ifaddrs.free(a)

    def ifa_free(a):
        if refcount_release(a, "ifa_refcnt"):
            if variant == "no-epoch-call":
                yield ifaddrs.free(a)
            else:
                yield net_epoch.call(ifa_destroy, a)

    def in_control_delete():
        yield addr_lock.lock()                 # IF_ADDR_WLOCK
        ifp.if_addrhead = None                 # CK_STAILQ_REMOVE
        yield addr_lock.unlock()
        yield from ifa_free(ifa)

    def ifa_ifwithaddr_ref():
        yield net_epoch.enter()                # NET_EPOCH_ENTER
        found = net_epoch.load(ifp, "if_addrhead")
        if found is not None:
            yield work(30)                     # sa_equal(ifa->ifa_addr, addr)
            if variant != "buggy":
                if not refcount_acquire_if_not_zero(found, "ifa_refcnt"):
                    found = None               # ifa_try_ref failed: it is going away
            else:
                refcount_acquire(found, "ifa_refcnt")   # ifa_ref
        yield net_epoch.exit()
        if found is not None:
            yield work(use_ns)
            assert found.ifa_addr              # the caller uses the address
            yield from ifa_free(found)

    m.spawn(in_control_delete(), name="in_control", cpu=0)
    m.spawn(ifa_ifwithaddr_ref(), name="ifa_ifwithaddr", cpu=1)
