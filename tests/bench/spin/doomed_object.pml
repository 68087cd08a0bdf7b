/*
 * The doomed-object race of models/freebsd/device_pager.py::doomed_object,
 * hand-written in Promela for SPIN, as the baseline that smpvm's exhaustive
 * search (`--strategy dfs`) is timed against.
 *
 *   spin -a [-DNALLOC=3] [-DBUGGY] doomed_object.pml && gcc -o pan pan.c && ./pan
 *
 * NALLOC allocators (Pa1..PaN, default 2) and one terminator (Pt) over one
 * device object obj0 that starts with one reference, on the pager list.
 * Default: the fixed variant; -DBUGGY: the sx-era allocator, in which SPIN
 * must find the use-after-free (an assertion violation), as smpvm does.
 *
 * What corresponds to what:
 *   smpvm                                   here
 *   dev_pager_mtx (SleepMutex)              mtx: owner's pid + 1, 0 when free
 *   dev_pager_sx (Sx, buggy only)           sx
 *   obj.lock (SleepMutex per object)        olock[o]
 *   obj_zone items: ref_count, flags        ref[o], flags[o]; freed[o] once zone.free ran
 *   pagers.objects (tuple, list order)      list[0..nlist-1]
 *   p.mappings (what each Pa mapped)        mapped[i]
 *   p.doomed_references (A1)                doomed
 * Invariants, as in the model: A1 (no reference taken on an OBJ_DEAD object;
 * judged at the end), A2 (ref_count is 0 through terminate), A3 (no access to
 * a freed object: every field access asserts !freed), A5 (every live object's
 * ref_count equals the mappings holding it; at the end), B4 (insert: no two
 * live objects with one handle on the list; every object has the device's
 * handle), refcount underflow, and deadlock (pan's invalid end states).
 *
 * Steps: one atomic block per smpvm step, i.e. per yield point: the
 * operation (a lock, unlock, work, note, alloc, free or load) and the model
 * code up to the next yield.  Two simplifications, neither changing what can
 * happen: a blocked lock attempt is no transition (smpvm makes the attempt
 * and each retry a step), and the insert that follows a second lookup is its
 * own step under dev_pager_mtx, which every access to the list holds.
 * Zone memory is not reused (smpvm's NOFREE zone may hand obj0's slot out
 * again; its generation check reports a stale pointer's use exactly as
 * freed[] does here).
 */

#ifndef NALLOC
#define NALLOC 2
#endif
#define NOBJ (NALLOC + 1)       /* obj0, and at most one fresh object per allocator */
#define NIL 255
#define OBJ_DEAD 8

byte ref[NOBJ];
byte flags[NOBJ];
bool freed[NOBJ];
byte olock[NOBJ];
byte mtx;
byte sx;
byte list[NOBJ];
byte nlist;
byte nmade;
byte mapped[NALLOC];
bool doomed;

#define ALIVE(o)   assert(!freed[o])                                   /* A3 */
#define LOCK(l)    (l == 0) -> l = _pid + 1
#define UNLOCK(l)  assert(l == _pid + 1); l = 0

/* vm_object_allocate: zone.alloc(ref_count=1, handle=dev) and a lock of its own. */
#define ALLOCATE(o) o = nmade; nmade++; ref[o] = 1; flags[o] = 0

/* insert(): B4, then TAILQ_INSERT_TAIL (every object here has the device as handle). */
inline insert(o) {
    j = 0;
    do
    :: j < nlist -> assert(flags[list[j]] & OBJ_DEAD); j++      /* B4 */
    :: else -> break
    od;
    list[nlist] = o; nlist++; j = 0
}

/* remove(): TAILQ_REMOVE, keeping the list's order. */
inline remove(o) {
    j = 0;
    do
    :: j < nlist && list[j] != o -> j++
    :: j < nlist && list[j] == o ->
        do
        :: j + 1 < nlist -> list[j] = list[j + 1]; j++
        :: else -> break
        od;
        nlist--; list[nlist] = 0; break
    :: else -> break
    od;
    j = 0
}

/*
 * lookup_referenced() (dev_pager_mtx held): walk the list in order; lock each
 * candidate; skip an OBJ_DEAD one; else reference it under its lock.  Sets
 * obj (NIL: none).  The list does not change meanwhile: its writers hold mtx.
 */
inline lookup_referenced() {
    k = 0;
    obj = NIL;
    do
    :: k < nlist ->
        atomic { LOCK(olock[list[k]]) ->              /* obj.lock.lock(), then its code */
            ALIVE(list[k]);
            if
            :: flags[list[k]] & OBJ_DEAD -> skip
            :: else -> ref[list[k]]++; obj = list[k]
            fi }
        atomic { UNLOCK(olock[list[k]]);               /* obj.lock.unlock() */
            if
            :: obj != NIL -> k = 0; break
            :: else -> k++
            fi }
    :: else -> k = 0; break
    od
}

proctype Allocator(byte me) {
    byte obj = NIL, fresh = NIL, j, k;
    skip;                                              /* first step: up to work() */
    skip;                                              /* work(VALIDATE_NS) */
#ifndef BUGGY
    atomic { LOCK(mtx) }                               /* dev_pager_mtx: lookup and insert */
    lookup_referenced();
    atomic { UNLOCK(mtx) }
    if
    :: obj == NIL ->                                   /* allocate_and_insert */
        atomic { ALLOCATE(fresh) }                     /* zone.alloc: may sleep */
        atomic { LOCK(mtx) }
        lookup_referenced();
        if
        :: obj == NIL -> atomic { insert(fresh); obj = fresh; fresh = NIL }
        :: else -> skip
        fi;
        atomic { UNLOCK(mtx) }
        if
        :: fresh != NIL -> atomic { ALIVE(fresh); freed[fresh] = true; fresh = NIL }
        :: else -> skip
        fi
    :: else -> skip
    fi;
#else
    atomic { LOCK(sx);                                 /* dev_pager_sx, then an unlocked walk */
        if
        :: nlist > 0 -> obj = list[0]
        :: else -> obj = NIL
        fi }
    if
    :: obj == NIL ->
        atomic { ALLOCATE(obj) }
        atomic { LOCK(mtx) -> insert(obj) }
        atomic { UNLOCK(mtx) }
    :: else ->
        if
        :: (flags[obj] & OBJ_DEAD) || ref[obj] == 0 ->
            atomic { ALIVE(obj) }                      /* note(); then obj.lock is read */
        :: else -> skip
        fi;
        atomic { LOCK(olock[obj]) ->                   /* vm_object_reference */
            ALIVE(obj);
            ref[obj]++;
            if
            :: flags[obj] & OBJ_DEAD -> doomed = true  /* A1, judged at the end */
            :: else -> skip
            fi }
        atomic { UNLOCK(olock[obj]) }
    fi;
    atomic { UNLOCK(sx) }
#endif
    mapped[me] = obj;
    atomic { ALIVE(obj) }                              /* vm_fault: obj.load("flags") */
}

proctype Terminator() {
    byte j;
    bool last;
    skip;                                              /* first step: up to the lock */
    atomic { LOCK(olock[0]) ->                         /* vm_object_deallocate */
        ALIVE(0);
        assert(ref[0] > 0);                            /* refcount_release underflow */
        ref[0]--;
        last = (ref[0] == 0 && !(flags[0] & OBJ_DEAD)) }
    if
    :: !last -> atomic { UNLOCK(olock[0]) }
    :: else ->                                         /* vm_object_terminate */
        atomic { ALIVE(0); flags[0] = flags[0] | OBJ_DEAD }   /* note(); OBJ_DEAD */
        atomic { ALIVE(0); assert(ref[0] == 0) }       /* work(TERMINATE_NS); A2 */
        atomic { UNLOCK(olock[0]) }                    /* dev_pager_dealloc */
        atomic { LOCK(mtx) -> remove(0) }
        atomic { UNLOCK(mtx) }
        atomic { ALIVE(0); freed[0] = true }           /* zone.free(obj) */
    fi
}

init {
    byte i, o, holders;
    atomic {
        ALLOCATE(o);                                   /* obj0: mapped once, on the list */
        list[0] = o; nlist = 1;
        run Terminator();
        i = 0;
        do
        :: i < NALLOC -> mapped[i] = NIL; run Allocator(i); i++
        :: else -> break
        od;
        i = 0; o = 0
    }
    _nr_pr == 1;                                       /* quiescence: every thread is done */
    atomic {
        assert(!doomed);                               /* A1 */
        o = 0;
        do                                             /* A5 */
        :: o < nmade ->
            if
            :: !freed[o] ->
                holders = 0; i = 0;
                do
                :: i < NALLOC -> if :: mapped[i] == o -> holders++ :: else fi; i++
                :: else -> break
                od;
                assert(ref[o] == holders)
            :: else -> skip
            fi;
            o++
        :: else -> break
        od
    }
}
