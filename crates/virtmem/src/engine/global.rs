//! Global and Local memory (`docs/heap-spec.md` §4, G1–G22) on a space's process heap.
//!
//! A fixed block is an ordinary process-heap block. A moveable block is an entry of one handle
//! table shared by Global* and Local* (G6): a reservation of [`MAX_HANDLES`] entries of two
//! words each, committed as it fills, laid out as on Windows (G4) — the flags word (in use,
//! moveable, discardable, discarded, DDESHARE, lock count in bits 16–23), then the slot holding
//! the data pointer; the handle is the slot's address, so `h % 16 == 8` on x64. Programs may
//! read both words; the table keeps its own record of every entry and only ever *writes* the
//! visible words, so a program that scribbles on them cannot make a call touch memory that is
//! not a live block. A value passed in is classified against that record and the process
//! heap's own tables ([`Target`]) before anything is done with it; nothing it points to is
//! read.
//!
//! Every call holds the process heap's lock while it works (G22), so HeapLock(GetProcessHeap())
//! holds Global/Local calls of other threads off, and `fork` (which takes every heap's lock)
//! never sees the table half-changed. The data pointer → handle index (for GlobalHandle, G5,
//! G17) is an open-addressing table on the metadata heap: nothing here calls `malloc`.

use super::heap::Heaps;
use crate::error::Result;
use crate::os::linux::metaheap::{meta_vec, Meta, MetaBox, MetaVec};
use crate::os::Os;
use crate::rules::global::{
    self as rules, Api, Attr, ReallocPlan, Reply, Target, ENTRY, MAX_HANDLES, SLOT,
};
use crate::rules::{Placement, Protection};
use std::sync::{Mutex, MutexGuard, OnceLock};

const ZERO_MEMORY: u32 = crate::rules::heap::ZERO_MEMORY;
const IN_PLACE_ONLY: u32 = crate::rules::heap::REALLOC_IN_PLACE_ONLY;
/// Slots of the data-pointer index (a power of two, twice the handle count).
const INDEX_SLOTS: usize = 2 * MAX_HANDLES;

#[derive(Clone, Copy, Default)]
struct Entry {
    used: bool,
    data: usize,
    attr: Attr,
}

/// The handle table (under the process heap's lock and the table mutex).
struct Table {
    /// The table's reservation; 0 until the first moveable block.
    base: usize,
    /// Entries whose memory is committed.
    committed: usize,
    /// The table's own record of every entry ever used.
    entries: MetaVec<Entry>,
    /// Free entries, most recently freed last (reused first).
    free: MetaVec<u32>,
    /// Data pointer → entry index + 1 (0: empty), linear probing.
    index: MetaVec<u32>,
}

/// The Global/Local memory of one address space (see the module documentation).
pub struct Globals<'s, O: Os> {
    heaps: &'s Heaps<'s, O>,
    table: Mutex<Table>,
}

static NATIVE: OnceLock<&'static Globals<'static, crate::os::linux::LinuxOs>> = OnceLock::new();

impl Globals<'static, crate::os::linux::LinuxOs> {
    /// The Global/Local memory of this process's real address space.
    pub(crate) fn native() -> &'static Globals<'static, crate::os::linux::LinuxOs> {
        NATIVE.get_or_init(|| Globals::new(Heaps::native()))
    }
}

fn hash(p: usize) -> usize {
    (((p >> 4) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - INDEX_SLOTS.trailing_zeros()))
        as usize
}

impl Table {
    fn handle(&self, i: usize) -> usize {
        self.base + i * ENTRY + SLOT
    }

    /// The live entry whose handle is `h`.
    fn entry_of(&self, h: usize) -> Option<usize> {
        if self.base == 0 || h < self.base + SLOT || !rules::handle_shaped(h) {
            return None;
        }
        let i = (h - self.base - SLOT) / ENTRY;
        (i < self.entries.len() && self.entries[i].used).then_some(i)
    }

    fn find(&self, p: usize) -> Option<usize> {
        if self.index.is_empty() || p == 0 {
            return None;
        }
        let mask = INDEX_SLOTS - 1;
        let mut k = hash(p);
        loop {
            match self.index[k] {
                0 => return None,
                v if self.entries[v as usize - 1].data == p => return Some(v as usize - 1),
                _ => k = (k + 1) & mask,
            }
        }
    }

    fn index_insert(&mut self, p: usize, i: usize) {
        if self.index.is_empty() {
            self.index.resize(INDEX_SLOTS, 0);
        }
        let mask = INDEX_SLOTS - 1;
        let mut k = hash(p);
        while self.index[k] != 0 {
            k = (k + 1) & mask;
        }
        self.index[k] = i as u32 + 1;
    }

    /// Removes `p` (backward-shift deletion: no tombstones).
    fn index_remove(&mut self, p: usize) {
        if self.index.is_empty() || p == 0 {
            return;
        }
        let mask = INDEX_SLOTS - 1;
        let mut j = hash(p);
        loop {
            match self.index[j] {
                0 => return,
                v if self.entries[v as usize - 1].data == p => break,
                _ => j = (j + 1) & mask,
            }
        }
        self.index[j] = 0;
        let mut k = j;
        loop {
            k = (k + 1) & mask;
            let v = self.index[k];
            if v == 0 {
                return;
            }
            let home = hash(self.entries[v as usize - 1].data);
            if (k.wrapping_sub(home) & mask) >= (k.wrapping_sub(j) & mask) {
                self.index[j] = v;
                self.index[k] = 0;
                j = k;
            }
        }
    }
}

/// Holds the process heap's lock for a Global/Local call.
struct HeapHeld<'a, 's, O: Os> {
    heaps: &'a Heaps<'s, O>,
    ph: usize,
}

impl<O: Os> Drop for HeapHeld<'_, '_, O> {
    fn drop(&mut self) {
        let _ = self.heaps.unlock(self.ph);
    }
}

fn fail<T>(value: T, e: crate::error::Error) -> Reply<T> {
    Reply::set(value, e.win32_code())
}

impl<'s, O: Os> Globals<'s, O> {
    /// The Global/Local memory on `heaps`' process heap (no table yet). Leaked, like the heaps.
    pub fn new(heaps: &'s Heaps<'s, O>) -> &'s Globals<'s, O> {
        MetaBox::leak(MetaBox::new_in(
            Globals {
                heaps,
                table: Mutex::new(Table {
                    base: 0,
                    committed: 0,
                    entries: meta_vec(),
                    free: meta_vec(),
                    index: meta_vec(),
                }),
            },
            Meta,
        ))
    }

    /// The heaps this memory lives on.
    pub fn heaps(&self) -> &'s Heaps<'s, O> {
        self.heaps
    }

    /// The handle table's reservation `(base, size)`, once a moveable block was made.
    pub fn table_range(&self) -> Option<(usize, usize)> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        (t.base != 0).then_some((t.base, MAX_HANDLES * ENTRY))
    }

    /// Runs `f` with the process heap's lock and the table held; `fail_value` with
    /// ERROR_NOT_ENOUGH_MEMORY if there is no process heap.
    fn run<T>(&self, fail_value: T, f: impl FnOnce(&mut Table, usize) -> Reply<T>) -> Reply<T> {
        let ph = match self.heaps.process_heap() {
            Ok(ph) => ph,
            Err(e) => return fail(fail_value, e),
        };
        if let Err(e) = self.heaps.lock(ph) {
            return fail(fail_value, e);
        }
        let _held = HeapHeld {
            heaps: self.heaps,
            ph,
        };
        let mut t: MutexGuard<'_, Table> = self.table.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut t, ph)
    }

    /// What `v` is (see [`Target`]) and, for a live handle or a moveable block's data, its
    /// entry. Reads nothing `v` points to.
    fn classify(&self, t: &Table, ph: usize, v: usize) -> (Target, usize) {
        if v == 0 {
            return (Target::Null, 0);
        }
        if rules::handle_shaped(v) {
            return match t.entry_of(v) {
                Some(i) => (Target::Handle(t.entries[i].attr), i),
                None => (Target::DeadHandle, 0),
            };
        }
        match self.heaps.size(ph, 0, v) {
            Ok(_) => match t.find(v) {
                Some(i) => (Target::Data, i),
                None => (
                    Target::Fixed {
                        front_end: self.heaps.in_front_end(v),
                    },
                    0,
                ),
            },
            Err(crate::error::Error::NoAccess(_)) => (Target::Garbage, 0),
            Err(_) => (Target::Stale, 0),
        }
    }

    /// Writes entry `i`'s visible words (G4).
    fn publish(&self, t: &Table, i: usize) {
        let e = t.entries[i];
        let at = t.base + i * ENTRY;
        let space = self.heaps.space();
        if e.used {
            space.heap_store(at, e.attr.word() as u64);
            space.heap_store(at + SLOT, e.data as u64);
        } else {
            // A freed entry: slot NULL, the flags word a pointer-aligned, non-zero link to the
            // next free entry (or to itself), never with the in-use bit (G4).
            let next = t.free.iter().rev().nth(1).map_or(i, |&n| n as usize);
            space.heap_store(at, (t.base + next * ENTRY) as u64);
            space.heap_store(at + SLOT, 0);
        }
    }

    /// A free entry, its memory committed (ERROR_NOT_ENOUGH_MEMORY with 0x10000 live, G6).
    fn take_entry(&self, t: &mut Table) -> Result<usize> {
        let space = self.heaps.space();
        if t.base == 0 {
            let prot = Protection::parse(crate::vocab::consts::PAGE_READWRITE, false)?;
            t.base = space.reserve(Placement::Anywhere, MAX_HANDLES * ENTRY, false, prot, false)?;
        }
        if let Some(i) = t.free.pop() {
            return Ok(i as usize);
        }
        let i = t.entries.len();
        if i >= MAX_HANDLES {
            return Err(crate::error::Error::NotEnoughMemory("0x10000 moveable handles are live"));
        }
        if i >= t.committed {
            let page = space.page();
            let start = t.base + t.committed * ENTRY;
            let end = start + page.max(ENTRY);
            let prot = Protection::parse(crate::vocab::consts::PAGE_READWRITE, false)?;
            space.commit(start, end, prot)?;
            t.committed = (end - t.base) / ENTRY;
        }
        t.entries.push(Entry::default());
        Ok(i)
    }

    /// Returns entry `i` to the free list.
    fn release_entry(&self, t: &mut Table, i: usize) {
        t.entries[i] = Entry::default();
        t.free.push(i as u32);
        self.publish(t, i);
    }

    /// A new moveable entry with `data` (0: none).
    fn new_moveable(&self, t: &mut Table, i: usize, data: usize, attr: Attr) -> usize {
        t.entries[i] = Entry {
            used: true,
            data,
            attr: Attr {
                has_data: data != 0,
                ..attr
            },
        };
        if data != 0 {
            t.index_insert(data, i);
        }
        self.publish(t, i);
        t.handle(i)
    }

    /// GlobalAlloc / LocalAlloc (G1–G8).
    pub fn alloc(&self, api: Api, flags: u32, size: usize) -> Reply<usize> {
        let plan = match rules::alloc_plan(api, flags, size) {
            Ok(p) => p,
            Err(e) => return fail(0, e),
        };
        let zero = if plan.zero { ZERO_MEMORY } else { 0 };
        self.run(0, |t, ph| {
            if !plan.moveable {
                return match self.heaps.alloc(ph, zero, plan.size) {
                    Ok(p) => Reply::ok(p),
                    Err(e) => fail(0, e),
                };
            }
            let i = match self.take_entry(t) {
                Ok(i) => i,
                Err(e) => return fail(0, e),
            };
            let data = if plan.size == 0 {
                0
            } else {
                match self.heaps.alloc(ph, zero, plan.size) {
                    Ok(p) => p,
                    Err(e) => {
                        self.release_entry(t, i);
                        return fail(0, e);
                    }
                }
            };
            let attr = Attr {
                discardable: plan.discardable,
                ddeshare: plan.ddeshare,
                ..Attr::default()
            };
            Reply::ok(self.new_moveable(t, i, data, attr))
        })
    }

    /// GlobalLock / LocalLock (G10–G12).
    pub fn lock(&self, api: Api, h: usize) -> Reply<usize> {
        self.run(0, |t, ph| match self.classify(t, ph, h) {
            (Target::Handle(a), i) => match rules::lock_count_after_lock(a) {
                Some(n) => {
                    t.entries[i].attr.lock = n;
                    self.publish(t, i);
                    Reply::ok(t.entries[i].data)
                }
                None => with(0, rules::lock_failure(api, Target::Handle(a))),
            },
            (Target::Fixed { .. } | Target::Data, _) => Reply::ok(h),
            (target, _) => with(0, rules::lock_failure(api, target)),
        })
    }

    /// GlobalUnlock / LocalUnlock (G13).
    pub fn unlock(&self, api: Api, h: usize) -> Reply<bool> {
        self.run(false, |t, ph| {
            let (target, i) = self.classify(t, ph, h);
            let (reply, count) = rules::unlock(api, target);
            if let Some(n) = count {
                t.entries[i].attr.lock = n;
                self.publish(t, i);
            }
            reply
        })
    }

    /// GlobalSize / LocalSize (G16): the requested size; 0 for a block without data.
    pub fn size(&self, _api: Api, h: usize) -> Reply<usize> {
        self.run(0, |t, ph| match self.classify(t, ph, h) {
            (Target::Handle(_), i) => {
                let d = t.entries[i].data;
                Reply::ok(if d == 0 {
                    0
                } else {
                    self.heaps.size(ph, 0, d).unwrap_or(0)
                })
            }
            (Target::Fixed { .. } | Target::Data, _) => match self.heaps.size(ph, 0, h) {
                Ok(n) => Reply::ok(n),
                Err(_) => Reply::set(0, rules::SIZE_FAILURE),
            },
            _ => Reply::set(0, rules::SIZE_FAILURE),
        })
    }

    /// GlobalFlags / LocalFlags (G15).
    pub fn flags(&self, api: Api, h: usize) -> Reply<u32> {
        self.run(rules::INVALID_HANDLE, |t, ph| match self.classify(t, ph, h) {
            (Target::Handle(a), _) => Reply::ok(a.flags(api)),
            (target, _) => rules::flags_other(api, target),
        })
    }

    /// GlobalHandle / LocalHandle (G17).
    pub fn handle(&self, api: Api, p: usize) -> Reply<usize> {
        self.run(0, |t, ph| match self.classify(t, ph, p) {
            (Target::Data, i) => Reply::ok(t.handle(i)),
            (Target::Fixed { .. } | Target::Handle(_), _) => Reply::ok(p),
            (target, _) => with(0, rules::handle_failure(api, target)),
        })
    }

    /// GlobalFree / LocalFree (G14, G18): NULL, or the value itself on failure.
    pub fn free(&self, _api: Api, h: usize) -> Reply<usize> {
        self.run(h, |t, ph| match self.classify(t, ph, h) {
            (Target::Null, _) => Reply::ok(0),
            (Target::Handle(_), i) => {
                let d = t.entries[i].data;
                if d != 0 {
                    t.index_remove(d);
                    let _ = self.heaps.free(ph, 0, d);
                }
                self.release_entry(t, i);
                Reply::ok(0)
            }
            (Target::Fixed { .. }, _) => match self.heaps.free(ph, 0, h) {
                Ok(()) => Reply::ok(0),
                Err(e) => fail(h, e),
            },
            (target, _) => Reply::set(h, rules::free_failure(target)),
        })
    }

    /// GlobalReAlloc / LocalReAlloc (G19, G20).
    pub fn realloc(&self, api: Api, h: usize, size: usize, flags: u32) -> Reply<usize> {
        let zero = if flags & rules::ZEROINIT != 0 {
            ZERO_MEMORY
        } else {
            0
        };
        self.run(0, |t, ph| {
            let (target, i) = self.classify(t, ph, h);
            match rules::realloc_plan(api, target, size, flags) {
                ReallocPlan::Fail(code) => Reply::set(0, code),
                ReallocPlan::Same => Reply::ok(h),
                ReallocPlan::MarkDiscardable => {
                    t.entries[i].attr.discardable = true;
                    self.publish(t, i);
                    Reply::ok(h)
                }
                ReallocPlan::Convert { discardable } => self.convert(t, ph, h, discardable),
                ReallocPlan::Resize {
                    in_place_only,
                    force_move,
                } => {
                    let p = match target {
                        Target::Handle(_) => t.entries[i].data,
                        _ => h,
                    };
                    let q = if force_move {
                        self.moved(ph, p, size, zero)
                    } else {
                        let fl = zero | if in_place_only { IN_PLACE_ONLY } else { 0 };
                        self.heaps.realloc(ph, fl, p, size)
                    };
                    match (q, target) {
                        (Err(e), _) => fail(0, e),
                        (Ok(q), Target::Handle(_)) => {
                            if q != p {
                                t.index_remove(p);
                                t.entries[i].data = q;
                                t.index_insert(q, i);
                                self.publish(t, i);
                            }
                            Reply::ok(h)
                        }
                        (Ok(q), _) => Reply::ok(q),
                    }
                }
                ReallocPlan::Discard => {
                    let d = t.entries[i].data;
                    if d != 0 {
                        t.index_remove(d);
                        let _ = self.heaps.free(ph, 0, d);
                    }
                    t.entries[i].data = 0;
                    t.entries[i].attr.has_data = false;
                    self.publish(t, i);
                    Reply::ok(h)
                }
                ReallocPlan::Refill => match self.heaps.alloc(ph, zero, size) {
                    Ok(q) => {
                        t.entries[i].data = q;
                        t.entries[i].attr.has_data = true;
                        t.index_insert(q, i);
                        self.publish(t, i);
                        Reply::ok(h)
                    }
                    Err(e) => fail(0, e),
                },
            }
        })
    }

    /// GlobalDiscard / LocalDiscard: `realloc(h, 0, MOVEABLE)` (the SDK's macros, G21).
    pub fn discard(&self, api: Api, h: usize) -> Reply<usize> {
        self.realloc(api, h, 0, rules::MOVEABLE)
    }

    /// A copy of block `p` in a new block of `size` bytes; `p` freed.
    fn moved(&self, ph: usize, p: usize, size: usize, zero: u32) -> Result<usize> {
        let old = self.heaps.size(ph, 0, p)?;
        let q = self.heaps.alloc(ph, 0, size)?;
        let space = self.heaps.space();
        space.heap_copy(q, p, old.min(size));
        if zero != 0 && size > old {
            space.heap_zero(q + old, size - old);
        }
        self.heaps.free(ph, 0, p)?;
        Ok(q)
    }

    /// Global MODIFY|MOVEABLE on a fixed block: a new moveable block holding a copy.
    fn convert(&self, t: &mut Table, ph: usize, p: usize, discardable: bool) -> Reply<usize> {
        let old = match self.heaps.size(ph, 0, p) {
            Ok(n) => n,
            Err(e) => return fail(0, e),
        };
        let i = match self.take_entry(t) {
            Ok(i) => i,
            Err(e) => return fail(0, e),
        };
        let data = if old == 0 {
            0
        } else {
            match self.heaps.alloc(ph, 0, old) {
                Ok(q) => {
                    self.heaps.space().heap_copy(q, p, old);
                    q
                }
                Err(e) => {
                    self.release_entry(t, i);
                    return fail(0, e);
                }
            }
        };
        let _ = self.heaps.free(ph, 0, p);
        let attr = Attr {
            discardable,
            ..Attr::default()
        };
        Reply::ok(self.new_moveable(t, i, data, attr))
    }
}

/// `value` with the last-error effect of `r`.
fn with<T>(value: T, r: Reply<()>) -> Reply<T> {
    Reply {
        value,
        last_error: r.last_error,
    }
}

