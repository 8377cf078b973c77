//! The safe face's runtime guarantees (issue 12): a `Reservation` acts only on the allocation
//! it owns, never hands out a borrow of pages whose bytes may change under it (MEM_RESET,
//! guard pages), and AWE frames belong to exactly one owner at a time. The compile-time half
//! is `crates/virtmem-ui`.

use virtmem::win32::*;
use virtmem::{Error, PhysicalPages, Protect, Reservation, State};

#[test]
fn a_reservation_never_touches_a_reused_base() {
    let mut r = Reservation::committed(65536, Protect::ReadWrite).unwrap();
    let base = r.base() as usize;
    // Someone releases it behind the reservation's back (the unsafe face allows it) and
    // someone else reserves the same range.
    // SAFETY: no borrow of `r` is alive; the range is released once.
    assert_eq!(unsafe { VirtualFree(base as _, 0, MEM_RELEASE) }, TRUE);
    // SAFETY: fresh memory at a free address; released at the end of the test.
    let other = unsafe { VirtualAlloc(base as _, 65536, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) };
    if other.is_null() {
        return; // another thread took the range first: nothing to compare
    }
    assert_eq!(other as usize, base);
    // SAFETY: the new owner writes its own committed page.
    unsafe { *(other as *mut u8) = 0x5A };
    assert!(!r.is_live());
    for e in [
        r.decommit(0, 4096).unwrap_err(),
        r.protect(0, 4096, Protect::NoAccess).unwrap_err(),
        r.commit(0, 4096, Protect::ReadOnly).unwrap_err(),
        r.reset(0, 4096).unwrap_err(),
        r.lock(0, 4096).unwrap_err(),
        r.as_slice(0, 1).unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidAddress(_)), "{e:?}");
    }
    drop(r);
    // The new owner's memory is untouched: still committed, writable, with its byte.
    let i = virtmem::query(base).unwrap();
    assert_eq!((i.state, i.protect), (State::Commit, PAGE_READWRITE));
    // SAFETY: still the new owner's committed page.
    assert_eq!(unsafe { *(other as *const u8) }, 0x5A);
    // SAFETY: released once by its owner.
    assert_eq!(unsafe { VirtualFree(other, 0, MEM_RELEASE) }, TRUE);
}

#[test]
fn reset_pages_are_not_lent_until_undone() {
    let mut r = Reservation::committed(2 * 4096, Protect::ReadWrite).unwrap();
    r.as_mut_slice(0, 2 * 4096).unwrap().fill(7);
    r.reset(0, 4096).unwrap();
    assert!(matches!(r.as_slice(0, 1), Err(Error::NoAccess(_))));
    assert!(matches!(r.as_mut_slice(0, 4096), Err(Error::NoAccess(_))));
    assert!(matches!(r.as_slice(0, 2 * 4096), Err(Error::NoAccess(_))));
    // The page that was not reset is still lent.
    assert_eq!(r.as_slice(4096, 1).unwrap()[0], 7);
    // After MEM_RESET_UNDO (intact or not) the bytes are stable again.
    let _ = r.reset_undo(0, 4096);
    let b = r.as_slice(0, 1).unwrap()[0];
    assert!(b == 7 || b == 0);
    // Decommitting and committing again also ends the reset state.
    r.reset(0, 4096).unwrap();
    r.decommit(0, 4096).unwrap();
    r.commit(0, 4096, Protect::ReadWrite).unwrap();
    assert_eq!(r.as_slice(0, 1).unwrap()[0], 0);
}

#[test]
fn guard_pages_are_not_lent() {
    let mut r = Reservation::committed(2 * 4096, Protect::ReadWrite).unwrap();
    r.guard(4096, 4096, Protect::ReadWrite).unwrap();
    assert!(matches!(r.as_slice(4096, 1), Err(Error::NoAccess(_))));
    assert!(matches!(
        r.as_mut_slice(0, 2 * 4096),
        Err(Error::NoAccess(_))
    ));
    assert!(r.as_slice(0, 4096).is_ok());
}

#[test]
fn frames_have_one_owner() {
    let mut w = Reservation::awe_window(4 * 4096).unwrap();
    let mut pages = PhysicalPages::allocate(2).unwrap();
    let frames = pages.frames().to_vec();
    w.map_physical(0, &mut pages).unwrap();
    assert!(pages.is_empty(), "the window took the frames over");
    drop(pages); // frees nothing: the window owns them
    w.as_mut_slice(0, 2 * 4096).unwrap().fill(9);
    // A page that holds a frame cannot get another one.
    let mut more = PhysicalPages::allocate(1).unwrap();
    assert!(matches!(
        w.map_physical(4096, &mut more),
        Err(Error::InvalidParameter(_))
    ));
    assert_eq!(
        more.len(),
        1,
        "a failed map keeps the frames with their owner"
    );
    // Unmapping gives the frames back, in address order, with their contents.
    let mut back = w.unmap_physical(0, 2).unwrap();
    assert_eq!(back.frames(), &frames[..]);
    assert!(w.as_slice(0, 1).is_err());
    w.map_physical(2 * 4096, &mut back).unwrap();
    assert_eq!(w.as_slice(2 * 4096, 2 * 4096).unwrap()[4096], 9);
    w.map_physical(0, &mut more).unwrap();
    assert_eq!(
        w.as_slice(0, 1).unwrap()[0],
        0,
        "fresh frames are zero-filled"
    );
    w.release().unwrap();
}

#[test]
fn a_released_window_frees_its_frames() {
    // Frames freed with their window are handed out again (zero-filled).
    let mut w = Reservation::awe_window(4096).unwrap();
    let mut pages = PhysicalPages::allocate(1).unwrap();
    w.map_physical(0, &mut pages).unwrap();
    w.as_mut_slice(0, 1).unwrap()[0] = 1;
    drop(w);
    let mut w2 = Reservation::awe_window(4096).unwrap();
    let mut again = PhysicalPages::allocate(1).unwrap();
    w2.map_physical(0, &mut again).unwrap();
    assert_eq!(w2.as_slice(0, 1).unwrap()[0], 0);
}
