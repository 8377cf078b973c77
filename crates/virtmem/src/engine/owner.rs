//! Acting as an allocation's owner: the safe face's [`Reservation`](crate::Reservation) names
//! the allocation it owns by id, and every operation it makes looks allocations up only if
//! they carry that id. The check happens at lookup, under the same index lock that release
//! and reuse go through, so a base released behind the owner's back and reused by someone
//! else is never touched by the old owner: the operation finds no allocation there.

use std::cell::Cell;

thread_local! {
    /// The id lookups must match on this thread (0: any).
    static OWNER: Cell<u64> = const { Cell::new(0) };
}

/// Whether a lookup on this thread may return the allocation with this id.
pub(crate) fn admits(id: u64) -> bool {
    OWNER.with(|o| {
        let want = o.get();
        want == 0 || want == id
    })
}

/// Runs `f` with lookups on this thread restricted to the allocation `id`.
pub(crate) fn as_owner<R>(id: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            OWNER.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OWNER.with(|o| o.replace(id)));
    f()
}
