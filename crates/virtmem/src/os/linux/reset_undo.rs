//! MEM_RESET_UNDO: prove, page by page, that lazily freed memory still holds its data, and make
//! it keep it, without `mlock` and without racing memory reclaim.
//!
//! `MEM_RESET` is `madvise(MADV_FREE)`: the kernel may discard each page (clean, private,
//! anonymous) until the page is next written, and a discarded page reads back as zeros. A write
//! makes the page table entry dirty, and reclaim never discards a dirty page. So for each page:
//!
//! 1. **Pre-scan** (`PAGEMAP_SCAN`): a page that is not present, or maps the shared zero page,
//!    has lost its data. (The caller only passes pages that were resident when reset; a page
//!    that was never populated reads zero either way.) A page in swap still has its data (a
//!    discarded page leaves an empty entry, not a swap entry), so it goes on to step 2, which
//!    faults it back in.
//! 2. **Writable pages**: find the first non-zero 64-bit word `w` by atomic loads and
//!    `compare_exchange(w, w)` it. Success means the word still held `w` at that instant, so
//!    the page was never discarded (a discarded page is all zeros), and the store has dirtied the
//!    entry, which cancels the lazy free. Failure counts the page lost (conservatively).
//! 3. **Other pages** (`READONLY`, `NOACCESS`, `EXECUTE_READ`): the same through
//!    `/proc/self/mem`, whose accesses use `FOLL_FORCE` and so work whatever the protection:
//!    read the page, write its first non-zero word back unchanged (which dirties the page), read
//!    it again. Equal copies mean the write landed on the page that held the data (or on a
//!    replacement that is identical, which loses nothing either): intact; otherwise lost.
//! 4. **All-zero pages** have no word to write. A post-scan decides: still present and not the
//!    zero page means the data (zeros) is there, and discarding it later would lose nothing, so
//!    it is intact; anything else is lost. Without `PAGEMAP_SCAN` the zero page cannot be told
//!    from real data, and all-zero pages count as lost.
//!
//! No step ever reports a discarded page as intact.

use crate::os::linux::metaheap::{meta_vec, CollectMeta, MetaVec};

use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;

use super::pagemap::{self, PageFlags};
use super::procmaps::ProcSelfFile;
use crate::os::{OsError, OsErrorKind, Syscall, UndoReport};

/// `/proc/self/mem`, read-write.
static MEM_FILE: ProcSelfFile = ProcSelfFile::new("/proc/self/mem", true);

/// Bytes in the word that is touched.
const WORD: usize = size_of::<u64>();

/// Pages read through `/proc/self/mem` per `pread`.
const CHUNK_PAGES: usize = 16;

fn error(errno: i32) -> OsError {
    let kind = match errno {
        libc::ENOMEM | libc::EFAULT | libc::EIO => OsErrorKind::NotMapped,
        _ => OsErrorKind::Other,
    };
    OsError {
        call: Syscall::ResetUndo,
        errno,
        kind,
    }
}

fn errno_error(e: Errno) -> OsError {
    error(e.raw_os_error())
}

/// Undoes `MADV_FREE` on `[addr, addr+len)` where the data survived, and counts the pages whose
/// data was discarded (see the module documentation for the method and why it is race-free).
///
/// The range must be private anonymous memory owned by the caller, page aligned at `addr`
/// (`len` is rounded up to whole pages). With `writable` the pages must be readable and writable
/// by ordinary loads and stores; otherwise they are only touched through `/proc/self/mem`, so
/// any protection works. Errors use [`Syscall::ResetUndo`]; on error some pages may already
/// have had their lazy free cancelled, which changes nothing the caller can observe.
pub(crate) fn undo_lazy_free(
    addr: usize,
    len: usize,
    writable: bool,
) -> Result<UndoReport, OsError> {
    let ps = rustix::param::page_size();
    if addr % ps != 0 {
        return Err(error(libc::EINVAL));
    }
    let end = addr
        .checked_add(len)
        .and_then(|e| e.checked_add(ps - 1))
        .map(|e| e & !(ps - 1))
        .ok_or_else(|| error(libc::EINVAL))?;
    let pages = (end - addr) / ps;
    let mut report = UndoReport::default();
    if pages == 0 {
        return Ok(report);
    }

    // a. Pre-scan.
    // Scratch lists on the metadata heap (MEM_RESET_UNDO is a `malloc`'s call).
    let mut flags = meta_vec();
    pagemap::scan(addr, end - addr, &mut flags).map_err(error)?;
    let candidates: MetaVec<usize> = (0..pages)
        .filter(|&i| {
            flags
                .get(i)
                .is_some_and(|f| f.swapped || (f.present && !f.pfn_zero))
        })
        .collect_meta();
    report.lost = pages - candidates.len();

    // b./c. Touch every page that may still hold data.
    let mut zero_pages = meta_vec();
    if writable {
        touch_directly(addr, ps, &candidates, &mut report, &mut zero_pages);
    } else {
        touch_through_mem(addr, ps, &candidates, &mut report, &mut zero_pages)?;
    }

    // d. Post-scan the all-zero pages.
    if let (Some(&first), Some(&last)) = (zero_pages.first(), zero_pages.last()) {
        if pagemap::can_detect_zero_page() {
            let span_start = addr + first * ps;
            pagemap::scan(span_start, (last - first + 1) * ps, &mut flags).map_err(error)?;
            for &i in &zero_pages {
                let f = flags
                    .get(i - first)
                    .copied()
                    .unwrap_or(PageFlags::default());
                if f.present && !f.pfn_zero {
                    report.intact += 1;
                } else {
                    report.lost += 1;
                }
            }
        } else {
            report.lost += zero_pages.len();
        }
    }
    Ok(report)
}

/// Step b: atomic loads to find a non-zero word, `compare_exchange(w, w)` to prove and dirty.
fn touch_directly(
    addr: usize,
    ps: usize,
    candidates: &[usize],
    report: &mut UndoReport,
    zero_pages: &mut MetaVec<usize>,
) {
    for &i in candidates {
        let page = addr + i * ps;
        let mut found = None;
        for off in (0..ps).step_by(WORD) {
            // SAFETY: the caller guarantees that the page is mapped readable and writable and
            // that it owns it; `page + off` is 8-byte aligned (pages are), so it may be viewed as
            // an `AtomicU64`. Atomic accesses are sound even if other threads use the memory.
            let word = unsafe { &*((page + off) as *const AtomicU64) };
            let w = word.load(Ordering::Relaxed);
            if w != 0 {
                found = Some((word, w));
                break;
            }
        }
        match found {
            Some((word, w)) => {
                if word
                    .compare_exchange(w, w, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    report.intact += 1;
                } else {
                    report.lost += 1;
                }
            }
            None => zero_pages.push(i),
        }
    }
}

/// `pread` that fills `buf` completely, or fails.
fn read_exact_at(
    fd: &impl std::os::fd::AsFd,
    buf: &mut [u8],
    offset: usize,
) -> Result<(), OsError> {
    let mut done = 0;
    while done < buf.len() {
        let n =
            rustix::io::pread(fd, &mut buf[done..], (offset + done) as u64).map_err(errno_error)?;
        if n == 0 {
            return Err(error(libc::EIO));
        }
        done += n;
    }
    Ok(())
}

/// `pwrite` of all of `buf`, or fails.
fn write_all_at(fd: &impl std::os::fd::AsFd, buf: &[u8], offset: usize) -> Result<(), OsError> {
    let mut done = 0;
    while done < buf.len() {
        let n =
            rustix::io::pwrite(fd, &buf[done..], (offset + done) as u64).map_err(errno_error)?;
        if n == 0 {
            return Err(error(libc::EIO));
        }
        done += n;
    }
    Ok(())
}

/// Step c: read, write the first non-zero word back, read again; through `/proc/self/mem`.
/// Consecutive pages are read together, up to [`CHUNK_PAGES`] at a time; each page is still
/// read, then written, then read again, in that order.
fn touch_through_mem(
    addr: usize,
    ps: usize,
    candidates: &[usize],
    report: &mut UndoReport,
    zero_pages: &mut MetaVec<usize>,
) -> Result<(), OsError> {
    if candidates.is_empty() {
        return Ok(());
    }
    let fd = MEM_FILE.get().map_err(errno_error)?;
    let mut before = vec![0u8; CHUNK_PAGES * ps];
    let mut after = vec![0u8; CHUNK_PAGES * ps];
    let mut next = 0;
    while next < candidates.len() {
        let run_first = candidates[next];
        let mut run = 1;
        while run < CHUNK_PAGES && candidates.get(next + run) == Some(&(run_first + run)) {
            run += 1;
        }
        next += run;
        let base = addr + run_first * ps;
        let bytes = run * ps;
        read_exact_at(&fd, &mut before[..bytes], base)?;
        let mut written = [false; CHUNK_PAGES];
        for (p, was_written) in written.iter_mut().enumerate().take(run) {
            let page = &before[p * ps..(p + 1) * ps];
            match page
                .chunks_exact(WORD)
                .position(|w| w.iter().any(|&b| b != 0))
            {
                Some(k) => {
                    let off = k * WORD;
                    write_all_at(&fd, &page[off..off + WORD], base + p * ps + off)?;
                    *was_written = true;
                }
                None => zero_pages.push(run_first + p),
            }
        }
        if !written.iter().any(|&w| w) {
            continue;
        }
        read_exact_at(&fd, &mut after[..bytes], base)?;
        for (p, _) in written.iter().enumerate().take(run).filter(|(_, &w)| w) {
            let range = p * ps..(p + 1) * ps;
            if before[range.clone()] == after[range] {
                report.intact += 1;
            } else {
                report.lost += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::pagemap::tests::PinToCpu;
    use super::*;
    use rustix::mm::{Advice, MapFlags, MprotectFlags, ProtFlags};
    use std::ffi::c_void;
    use std::ptr::null_mut;

    fn ps() -> usize {
        rustix::param::page_size()
    }

    /// A private anonymous mapping, unmapped on drop.
    struct Anon {
        base: usize,
        pages: usize,
    }

    impl Anon {
        fn new(pages: usize) -> Anon {
            // SAFETY: a fresh mapping that only this test uses.
            let p = unsafe {
                rustix::mm::mmap_anonymous(
                    null_mut(),
                    pages * ps(),
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )
            }
            .expect("mmap");
            Anon {
                base: p as usize,
                pages,
            }
        }

        fn len(&self) -> usize {
            self.pages * ps()
        }

        fn words(&self, page: usize) -> *mut u64 {
            (self.base + page * ps()) as *mut u64
        }

        /// Fills page `i` with a pattern unique to the page and the word; `tail_only` leaves
        /// all but the last word zero.
        fn fill(&self, i: usize, tail_only: bool) {
            let n = ps() / 8;
            for k in 0..n {
                let v = if tail_only && k + 1 < n {
                    0
                } else {
                    pattern(i, k)
                };
                // SAFETY: inside our own mapping, which is read-write while filled.
                unsafe { self.words(i).add(k).write_volatile(v) };
            }
        }

        /// Whether page `i` (made readable first if needed) holds its pattern.
        fn holds(&self, i: usize, tail_only: bool) -> bool {
            let n = ps() / 8;
            (0..n).all(|k| {
                let v = if tail_only && k + 1 < n {
                    0
                } else {
                    pattern(i, k)
                };
                // SAFETY: inside our own mapping, readable when called.
                unsafe { self.words(i).add(k).read_volatile() == v }
            })
        }

        fn advise(&self, first: usize, pages: usize, advice: Advice) {
            // SAFETY: inside our own mapping.
            unsafe { rustix::mm::madvise(self.words(first).cast(), pages * ps(), advice) }
                .expect("madvise");
        }

        fn protect(&self, prot: MprotectFlags) {
            // SAFETY: our own mapping.
            unsafe { rustix::mm::mprotect(self.base as *mut c_void, self.len(), prot) }
                .expect("mprotect");
        }

        fn undo(&self, writable: bool) -> UndoReport {
            undo_lazy_free(self.base, self.len(), writable).expect("undo")
        }
    }

    impl Drop for Anon {
        fn drop(&mut self) {
            // SAFETY: our own mapping.
            let _ = unsafe { rustix::mm::munmap(self.base as *mut c_void, self.len()) };
        }
    }

    fn pattern(page: usize, word: usize) -> u64 {
        0x9E37_79B9_7F4A_7C15u64.wrapping_mul((page * 1000 + word + 1) as u64) | 1
    }

    fn report(intact: usize, lost: usize) -> UndoReport {
        UndoReport { intact, lost }
    }

    const RW: MprotectFlags = MprotectFlags::READ.union(MprotectFlags::WRITE);

    /// Checks that MADV_PAGEOUT really discards lazily freed pages here, whatever their
    /// protection (else the tests below would prove nothing), and that merely reading them,
    /// directly or through /proc/self/mem, does not cancel the lazy free.
    #[test]
    fn pageout_discards_lazily_freed_pages() {
        let _pin = PinToCpu::new();
        for prot in [RW, MprotectFlags::READ, MprotectFlags::empty()] {
            let a = Anon::new(4);
            for i in 0..4 {
                a.fill(i, false);
            }
            a.advise(0, 4, Advice::LinuxFree);
            a.protect(prot);
            let mut copy = vec![0u8; 4 * ps()];
            let fd = MEM_FILE.get().unwrap();
            read_exact_at(&fd, &mut copy, a.base).unwrap();
            a.advise(0, 4, Advice::LinuxPageOut);
            a.protect(RW);
            for i in 0..4 {
                assert!(
                    !a.holds(i, false),
                    "{prot:?}: page {i} survived MADV_FREE + MADV_PAGEOUT"
                );
            }
        }
    }

    fn intact_and_kept(prot: MprotectFlags, writable: bool) {
        let _pin = PinToCpu::new();
        let pages = 8;
        let a = Anon::new(pages);
        for i in 0..pages {
            a.fill(i, i % 3 == 1);
        }
        a.advise(0, pages, Advice::LinuxFree);
        a.protect(prot);
        assert_eq!(a.undo(writable), report(pages, 0));
        // The lazy free is cancelled: forced reclaim now keeps everything.
        a.advise(0, pages, Advice::LinuxPageOut);
        a.protect(RW);
        for i in 0..pages {
            assert!(
                a.holds(i, i % 3 == 1),
                "page {i} lost after undo + MADV_PAGEOUT"
            );
        }
        // Undoing again changes nothing.
        assert_eq!(a.undo(true), report(pages, 0));
    }

    fn some_lost(prot: MprotectFlags, writable: bool) {
        let _pin = PinToCpu::new();
        let pages = 40;
        let a = Anon::new(pages);
        for i in 0..pages {
            a.fill(i, i % 5 == 2);
        }
        a.advise(0, pages, Advice::LinuxFree);
        let gone = [0, 3, 4, 17, 18, 19, 39];
        for &i in &gone {
            a.advise(i, 1, Advice::LinuxPageOut);
        }
        // A discarded page that has been read since maps the zero page: still lost.
        // SAFETY: inside our own mapping, still read-write.
        assert_eq!(unsafe { a.words(3).read_volatile() }, 0);
        a.protect(prot);
        assert_eq!(a.undo(writable), report(pages - gone.len(), gone.len()));
        a.advise(0, pages, Advice::LinuxPageOut);
        a.protect(RW);
        for i in 0..pages {
            assert_eq!(a.holds(i, i % 5 == 2), !gone.contains(&i), "page {i}");
        }
    }

    #[test]
    fn writable_intact_and_kept() {
        intact_and_kept(RW, true);
    }

    #[test]
    fn writable_some_lost() {
        some_lost(RW, true);
    }

    #[test]
    fn readonly_intact_and_kept() {
        intact_and_kept(MprotectFlags::READ, false);
    }

    #[test]
    fn readonly_some_lost() {
        some_lost(MprotectFlags::READ, false);
    }

    #[test]
    fn noaccess_intact_and_kept() {
        intact_and_kept(MprotectFlags::empty(), false);
    }

    #[test]
    fn noaccess_some_lost() {
        some_lost(MprotectFlags::empty(), false);
    }

    #[test]
    fn read_write_memory_through_proc_mem() {
        // The non-writable path also works on writable memory.
        intact_and_kept(RW, false);
        some_lost(RW, false);
    }

    fn zero_pages(prot: MprotectFlags, writable: bool) {
        let a = Anon::new(4);
        // Page 0: written, then zeroed (a real page of zeros). Page 1: only read (the shared
        // zero page). Page 2: never touched. Page 3: data.
        // SAFETY: inside our own mapping, read-write here.
        unsafe {
            a.words(0).write_volatile(1);
            a.words(0).write_volatile(0);
            std::hint::black_box(a.words(1).read_volatile());
        }
        a.fill(3, false);
        a.advise(0, 4, Advice::LinuxFree);
        a.protect(prot);
        assert_eq!(a.undo(writable), report(2, 2));
        a.protect(RW);
        // SAFETY: inside our own mapping.
        assert_eq!(unsafe { a.words(0).read_volatile() }, 0);
        assert!(a.holds(3, false));
    }

    #[test]
    fn all_zero_page_is_intact() {
        zero_pages(RW, true);
        zero_pages(MprotectFlags::READ, false);
        zero_pages(MprotectFlags::empty(), false);
    }

    #[test]
    fn bad_arguments() {
        let ps = ps();
        let a = Anon::new(2);
        let e = undo_lazy_free(a.base + 8, ps, true).unwrap_err();
        assert_eq!(
            (e.call, e.errno, e.kind),
            (Syscall::ResetUndo, libc::EINVAL, OsErrorKind::Other)
        );
        assert_eq!(undo_lazy_free(a.base, 0, true), Ok(UndoReport::default()));
        assert!(undo_lazy_free(usize::MAX & !(ps - 1), 2 * ps, false).is_err());
        // A partial last page counts as a page.
        a.fill(0, false);
        a.fill(1, false);
        assert_eq!(undo_lazy_free(a.base, ps + 1, false), Ok(report(2, 0)));
    }
}
