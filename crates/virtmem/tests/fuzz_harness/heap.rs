//! Heaps and Global/Local memory in the fuzz harness (issue 16 item 5; `docs/heap-spec.md`
//! §3–§5). Ops: HeapCreate (every flag, growable and fixed), HeapDestroy (also of the process
//! heap and of bogus handles), HeapAlloc / HeapReAlloc (sizes 0, small, around the large-block
//! threshold, huge; HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY, HEAP_GENERATE_EXCEPTIONS with
//! the exception hook set), HeapFree / HeapSize / HeapValidate with hostile pointers (freed,
//! interior, misaligned, another heap's, malloc's, the stack, unmapped, NULL, Global handles),
//! HeapWalk (also from bogus entries), HeapSummary, HeapCompact, HeapLock / HeapUnlock
//! (balanced and not), GetProcessHeaps, and the Global* / Local* calls on fixed and moveable
//! blocks and hostile values.
//!
//! The model: every live block (heap, requested size, a byte pattern the harness wrote), every
//! moveable handle (data, lock count, attributes), the heaps (flags, HeapLock depth). After
//! every step: each block's HeapSize and sampled contents; no two blocks overlap and each lies
//! in a reservation of its heap; a full HeapWalk of every heap reports exactly the model's
//! blocks with their requested sizes; the heap's reservations are learned from that walk
//! (REGION entries, large blocks, the handle table seen through a moveable handle, a released
//! large block's reservation kept as the heap's spare until HeapCompact / HeapDestroy), so a
//! reservation the walk cannot account for is a stray; a refused call changed no allocation or
//! region; the error codes the spec gives (H31, H34, H37, H43, H46, H50, H57, H67, G1, G12–G19).

use super::*;

/// Makes the heap ops the usual case of an input: `HEAP_MAGIC` then the ops.
pub const HEAP_MAGIC: &[u8; 4] = b"HEAP";
/// The large-block threshold on x64 (H22, H23).
const LARGE: usize = 0xFF000;
/// ERROR_NO_MORE_ITEMS, ERROR_DISCARDED, ERROR_NOT_LOCKED, ERROR_NOACCESS.
const NO_MORE: u32 = 259;
const DISCARDED: u32 = 157;
const NOT_LOCKED: u32 = 158;
const NOACCESS: u32 = 998;
const INVALID_HANDLE: u32 = 6;
const PARAM: u32 = 87;
const NOMEM: u32 = 8;
/// Most heaps one input creates (each costs a reservation).
const MAX_HEAPS: usize = 6;

/// HEAP_GENERATE_EXCEPTIONS raises (the hook counts them and continues).
static RAISED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static RAISED_STATUS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn hook(status: u32, _size: usize) -> bool {
    RAISED_STATUS.store(status, std::sync::atomic::Ordering::Relaxed);
    RAISED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    true
}

/// Installs the exception hook (once, with the environment).
pub(super) fn install_hook() {
    set_heap_exception_hook(Some(hook));
}

fn raised() -> u64 {
    RAISED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The Global handle table's allocation id, once learned (it lives as long as the process).
static TABLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Clone, Copy, Debug)]
struct HeapRec {
    flags: u32,
    growable: bool,
    /// HeapLock depth held by the harness.
    locks: u32,
}

#[derive(Clone, Copy, Debug)]
struct Blk {
    heap: usize,
    size: usize,
    seed: u64,
    /// The moveable handle whose data this is (0: none).
    handle: usize,
}

#[derive(Clone, Copy, Debug)]
struct Mov {
    data: usize,
    lock: u8,
    discardable: bool,
    ddeshare: bool,
}

/// What the allocation of a heap is (for the reservations check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Own {
    Region(usize),
    Large(usize),
    /// A released large block's reservation the heap kept.
    Spare(usize),
    Table,
}

/// The model of one input's heaps.
#[derive(Default)]
pub(super) struct HeapModel {
    ph: usize,
    /// Live heaps: the process heap and those this input created (creation order in `order`).
    heaps: BTreeMap<usize, HeapRec>,
    order: Vec<usize>,
    /// Heaps alive when the input started other than the process heap (not touched).
    others: usize,
    destroyed: Vec<usize>,
    blocks: BTreeMap<usize, Blk>,
    /// Process-heap blocks that existed before the input (never touched).
    base_blocks: BTreeMap<usize, usize>,
    freed: Vec<usize>,
    moveable: BTreeMap<usize, Mov>,
    dead_handles: Vec<usize>,
    /// Allocation id → whose it is.
    pub(super) owned: BTreeMap<u64, Own>,
    seq: u64,
    pub(super) active: bool,
}

fn pat(seed: u64, i: usize) -> u8 {
    ((seed >> ((i % 8) * 8)) as u8) ^ (i as u8).wrapping_mul(0x9D) ^ ((i >> 8) as u8)
}

/// The sampled offsets of a block of `n` bytes: its first and last 128 bytes and 16 bytes of
/// every 64 KiB.
fn samples(n: usize) -> Vec<(usize, usize)> {
    let mut v = vec![(0, n.min(128)), (n - n.min(128), n)];
    let mut at = 0x10000;
    while at + 16 < n {
        v.push((at, at + 16));
        at += 0x10000;
    }
    v
}

impl Blk {
    fn write(&self, p: usize, from: usize) {
        for (s, e) in samples(self.size) {
            for i in s.max(from)..e {
                // SAFETY: a live block of `size` bytes the harness owns.
                unsafe { ((p + i) as *mut u8).write_volatile(pat(self.seed, i)) };
            }
        }
    }
    /// The first sampled offset below `upto` whose byte differs from the pattern.
    fn check(&self, p: usize, upto: usize) -> Option<(usize, u8)> {
        for (s, e) in samples(self.size) {
            for i in s..e.min(upto) {
                // SAFETY: as in `write`.
                let v = unsafe { ((p + i) as *const u8).read_volatile() };
                if v != pat(self.seed, i) {
                    return Some((i, v));
                }
            }
        }
        None
    }
}

fn zero_samples(p: usize, from: usize, n: usize) -> Option<usize> {
    for (s, e) in samples(n) {
        for i in s.max(from)..e {
            // SAFETY: a live block of `n` bytes.
            if unsafe { ((p + i) as *const u8).read_volatile() } != 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Each live heap's full walk.
type Walks = BTreeMap<usize, Vec<PROCESS_HEAP_ENTRY>>;

/// A full HeapWalk, or the failure code.
pub(super) fn walk(h: usize) -> Result<Vec<PROCESS_HEAP_ENTRY>, u32> {
    let mut out = Vec::new();
    let mut e = PROCESS_HEAP_ENTRY::default();
    loop {
        SetLastError(0x5EED);
        // SAFETY: a valid entry.
        if unsafe { HeapWalk(h as HANDLE, &mut e) } == 0 {
            let c = GetLastError();
            return if c == NO_MORE { Ok(out) } else { Err(c) };
        }
        out.push(e);
        assert!(out.len() < 1_000_000, "HeapWalk({h:#x}) never ends");
    }
}

/// Expected last error for a pointer that is not a block: nothing mapped there → 998, else 87.
fn bad_code(st: &State, p: usize) -> u32 {
    let i = st.maps.partition_point(|v| v.end <= p);
    if st.maps.get(i).is_some_and(|v| v.start <= p) {
        PARAM
    } else {
        NOACCESS
    }
}

impl Harness<'_> {
    pub(super) fn heap_begin(&mut self, st: &State) {
        let hm = &mut self.hm;
        // SAFETY: no arguments.
        hm.ph = unsafe { GetProcessHeap() } as usize;
        assert_ne!(hm.ph, 0, "GetProcessHeap");
        assert_eq!(hm.ph & 0xFFFF, 0, "H51: the process heap is 64 KiB aligned");
        hm.heaps.insert(
            hm.ph,
            HeapRec {
                flags: 0,
                growable: true,
                locks: 0,
            },
        );
        // SAFETY: counting only.
        hm.others = unsafe { GetProcessHeaps(0, null_mut()) } as usize - 1;
        let w = walk(hm.ph).expect("walk of the process heap");
        for e in &w {
            if e.wFlags as u32 & PROCESS_HEAP_ENTRY_BUSY != 0 {
                hm.base_blocks.insert(e.lpData as usize, e.cbData as usize);
            }
        }
        hm.active = true;
        let now = state();
        let _ = st;
        self.heap_learn(&now, &now, None);
    }

    // ---------------------------------------------------------------------------------
    // Pickers
    // ---------------------------------------------------------------------------------

    fn pick_heap(&self, b: &mut Bytes) -> usize {
        let hm = &self.hm;
        match b.u8() % 12 {
            0..=3 => hm.ph,
            4..=8 => {
                let v: Vec<usize> = hm.heaps.keys().copied().collect();
                v[b.u8() as usize % v.len()]
            }
            9 if !hm.destroyed.is_empty() => hm.destroyed[b.u8() as usize % hm.destroyed.len()],
            10 if !hm.blocks.is_empty() => *hm
                .blocks
                .keys()
                .nth(b.u8() as usize % hm.blocks.len())
                .unwrap(),
            _ => b.pick(&[
                0usize,
                1,
                0x1234,
                usize::MAX,
                hm.ph + 0x10000,
                hm.ph + 8,
                0xdead_0000,
            ]),
        }
    }

    /// A pointer for HeapFree & co: mostly live blocks, else hostile.
    fn pick_ptr(&self, b: &mut Bytes, stack: usize) -> usize {
        let hm = &self.hm;
        let live: Vec<usize> = hm.blocks.keys().copied().collect();
        let pick_live = |b: &mut Bytes| live[b.u8() as usize % live.len()];
        match b.u8() % 16 {
            0..=5 if !live.is_empty() => pick_live(b),
            6 if !hm.freed.is_empty() => hm.freed[b.u8() as usize % hm.freed.len()],
            7 if !live.is_empty() => {
                let p = pick_live(b);
                p + b.pick(&[8usize, 16, 32, 1, 0x1000])
            }
            8 if !live.is_empty() => pick_live(b) - b.pick(&[8usize, 16, 1, 0x40]),
            9 if !hm.moveable.is_empty() => *hm
                .moveable
                .keys()
                .nth(b.u8() as usize % hm.moveable.len())
                .unwrap(),
            10 => self.env.targets[b.u8() as usize % self.env.targets.len()].1,
            11 => stack,
            12 => {
                let g = self.env.arena + (b.u8() as usize % ARENA_GRANULES) * G + 0x40;
                b.pick(&[0xdead_be00usize, g, 16, 0x10, usize::MAX - 15, 1 << 47])
            }
            13 if !hm.dead_handles.is_empty() => {
                hm.dead_handles[b.u8() as usize % hm.dead_handles.len()]
            }
            14 => hm.ph + b.pick(&[0usize, 0x40, 0x400, 0x1000, 0x2000]),
            _ => 0,
        }
    }

    fn heap_size_arg(&self, b: &mut Bytes) -> usize {
        match b.u8() % 14 {
            0 => 0,
            1..=4 => b.u8() as usize % 257,
            5 | 6 => b.u16() as usize,
            7 => b.pick(&[
                LARGE - 0x2000,
                LARGE - 0x1001,
                LARGE - 1,
                LARGE,
                LARGE + 1,
                0x100000,
                0x60000,
                0x20000,
                0x20200,
            ]),
            8 => (b.u16() as usize) << (b.u8() % 7),
            9 => b.pick(&[
                usize::MAX,
                usize::MAX - 7,
                usize::MAX - 15,
                usize::MAX - 0x1000,
                isize::MAX as usize,
                1 << 47,
                1 << 63,
            ]),
            _ => b.u8() as usize * 16 + b.u8() as usize % 16,
        }
    }

    fn heap_flags_arg(&self, b: &mut Bytes) -> u32 {
        match b.u8() % 8 {
            0..=2 => 0,
            3 => HEAP_ZERO_MEMORY,
            4 => HEAP_NO_SERIALIZE,
            5 => HEAP_GENERATE_EXCEPTIONS | b.pick(&[0, HEAP_ZERO_MEMORY]),
            6 => HEAP_REALLOC_IN_PLACE_ONLY | b.pick(&[0, HEAP_ZERO_MEMORY]),
            _ => 1u32 << (b.u8() % 32),
        }
    }

    // ---------------------------------------------------------------------------------
    // One heap step
    // ---------------------------------------------------------------------------------

    pub(super) fn heap_step(&mut self, b: &mut Bytes, stack: usize, before: State) -> State {
        let k = b.u8() % 26;
        let r0 = raised();
        let done = match k {
            0 | 1 => self.h_create(b),
            2 => self.h_destroy(b),
            3..=6 => self.h_alloc(b, &before),
            7 | 8 => self.h_realloc(b, &before, stack),
            9 | 10 => self.h_free(b, &before, stack),
            11 => self.h_size_validate(b, &before, stack),
            12 => self.h_walk_hostile(b, &before, stack),
            13 => self.h_summary(b),
            14 => self.h_compact(b),
            15 => self.h_lock(b),
            16 | 17 => self.g_alloc(b),
            18 | 19 => self.g_realloc(b, &before, stack),
            20 => self.g_lock(b, &before, stack),
            21 => self.g_free(b, &before, stack),
            22 => self.g_query(b, &before, stack),
            23 => self.h_heaps(),
            _ => self.h_alloc(b, &before),
        };
        let Some((changes, compacted)) = done else {
            return before;
        };
        self.stats.calls += 1;
        let after = state();
        if !changes {
            assert_eq!(
                before.allocs, after.allocs,
                "{}: a refused or read-only heap call changed the allocations",
                self.log
            );
            if before.regions != after.regions {
                let d = before
                    .regions
                    .iter()
                    .zip(&after.regions)
                    .find(|(x, y)| x != y);
                panic!(
                    "{}: a refused or read-only heap call changed the regions: {d:x?}",
                    self.log
                );
            }
        }
        if !matches!(k, 3..=8 | 24 | 25) {
            assert_eq!(
                raised(),
                r0,
                "{}: an exception raised by a call that allocates nothing",
                self.log
            );
        }
        self.check_call(
            &Outcome {
                ok: true,
                code: 0,
                partial_ok: false,
            },
            &before,
            &after,
            &[],
        );
        let walks = self.heap_learn(&before, &after, compacted);
        self.heap_check(&after, &walks);
        after
    }

    /// Runs a heap call with the sentinel last error (through `call`, which catches panics).
    fn hcall<T: Copy + Default + std::fmt::LowerHex>(
        &mut self,
        what: String,
        f: impl FnOnce() -> T,
    ) -> (T, u32) {
        let mut v = T::default();
        let _ = self.call(what, || {
            v = f();
            true
        });
        let code = GetLastError();
        let l = self.log.0.last_mut().unwrap();
        l.push_str(&format!(" = {v:#x} [LE {code}]"));
        if trace() {
            eprintln!("    = {v:#x} [LE {code}]");
        }
        (v, code)
    }

    fn h_create(&mut self, b: &mut Bytes) -> Option<(bool, Option<usize>)> {
        let flags = match b.u8() % 8 {
            0..=2 => 0,
            3 => HEAP_NO_SERIALIZE,
            4 => HEAP_GENERATE_EXCEPTIONS | b.pick(&[0, HEAP_NO_SERIALIZE]),
            5 => HEAP_CREATE_ENABLE_EXECUTE,
            6 => HEAP_TAIL_CHECKING_ENABLED | HEAP_FREE_CHECKING_ENABLED | 0x0400_0000,
            _ => b.u32() & !0x0004_0000,
        };
        let init = match b.u8() % 6 {
            0 | 1 => 0,
            2 => (b.u16() as usize) << 4,
            3 => b.pick(&[P, 0x80000, 0x150000, 0x2000]),
            4 => b.pick(&[usize::MAX, 1 << 48, usize::MAX - P]),
            _ => b.u16() as usize,
        };
        let max = match b.u8() % 6 {
            0..=2 => 0,
            3 => (b.u8() as usize + 1) * 0x100,
            4 => b.pick(&[0x2000usize, 0x10000, 0x200000, 0x500000, 0x14000]),
            _ => b.pick(&[usize::MAX, 1 << 48, usize::MAX - G + 1]),
        };
        let hopeless = init >= 1 << 47 || max >= 1 << 47;
        if !hopeless && self.hm.heaps.len() > MAX_HEAPS {
            return None;
        }
        let (h, code) = self.hcall(
            format!("HeapCreate({flags:#x}, {init:#x}, {max:#x})"),
            || {
                // SAFETY: plain values.
                unsafe { HeapCreate(flags, init, max) as usize }
            },
        );
        let log = &self.log;
        if h == 0 {
            assert_eq!(code, NOMEM, "{log}: H8");
            assert!(hopeless, "{log}: HeapCreate refused a plausible heap");
            return Some((false, None));
        }
        assert!(!hopeless, "{log}: HeapCreate accepted an impossible size");
        assert_eq!(h & 0xFFFF, 0, "{log}: H1: heap handle alignment");
        assert!(
            !self.hm.heaps.contains_key(&h),
            "{log}: a live heap's handle given again"
        );
        self.hm.heaps.insert(
            h,
            HeapRec {
                flags: flags
                    & (HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS | HEAP_CREATE_ENABLE_EXECUTE),
                growable: max == 0,
                locks: 0,
            },
        );
        self.hm.order.push(h);
        self.hm.destroyed.retain(|&d| d != h);
        Some((true, None))
    }

    fn h_destroy(&mut self, b: &mut Bytes) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let (ok, code) = self.hcall(format!("HeapDestroy({h:#x})"), || {
            // SAFETY: HeapDestroy looks handles up (H50).
            unsafe { HeapDestroy(h as HANDLE) }
        });
        let log = &self.log;
        let live = h != self.hm.ph && self.hm.heaps.contains_key(&h);
        if !live {
            assert_eq!((ok, code), (0, INVALID_HANDLE), "{log}: H50");
            return Some((false, None));
        }
        assert_ne!(
            ok, 0,
            "{log}: H49: HeapDestroy of a live heap failed ({code})"
        );
        self.hm.heaps.remove(&h);
        self.hm.order.retain(|&x| x != h);
        self.hm.destroyed.push(h);
        let gone: Vec<usize> = self
            .hm
            .blocks
            .iter()
            .filter(|(_, x)| x.heap == h)
            .map(|(&p, _)| p)
            .collect();
        for p in gone {
            self.hm.blocks.remove(&p);
            self.hm.freed.push(p);
        }
        Some((true, Some(h)))
    }

    /// Whether exceptions are asked for: the heap's flags or the call's (H13, H16).
    fn wants_exc(&self, h: usize, flags: u32) -> bool {
        (flags | self.hm.heaps.get(&h).map_or(0, |r| r.flags)) & HEAP_GENERATE_EXCEPTIONS != 0
    }

    fn check_raise(&self, r0: u64, failed_nomem: bool, h: usize, flags: u32) {
        let want = failed_nomem && self.hm.heaps.contains_key(&h) && self.wants_exc(h, flags);
        let got = raised() - r0;
        assert_eq!(
            got, want as u64,
            "{}: H16: STATUS_NO_MEMORY raised {got} times",
            self.log
        );
        if want {
            assert_eq!(
                RAISED_STATUS.load(std::sync::atomic::Ordering::Relaxed),
                0xC000_0017
            );
        }
    }

    fn new_block(&mut self, h: usize, p: usize, size: usize, zero: bool, handle: usize) {
        let log = &self.log;
        assert_eq!(p % 16, 0, "{log}: H26: block {p:#x} alignment");
        if zero {
            if let Some(i) = zero_samples(p, 0, size) {
                panic!("{log}: H15: byte {i} of a zeroed block {p:#x} is not 0");
            }
        }
        self.hm.seq += 1;
        let blk = Blk {
            heap: h,
            size,
            seed: self.hm.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ p as u64,
            handle,
        };
        blk.write(p, 0);
        assert!(
            self.hm.blocks.insert(p, blk).is_none(),
            "{log}: {p:#x} handed out twice"
        );
        self.hm.freed.retain(|&f| f != p);
    }

    fn h_alloc(&mut self, b: &mut Bytes, _st: &State) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let flags = self.heap_flags_arg(b);
        let mut n = self.heap_size_arg(b);
        if n > 8 << 20 && n < 1 << 47 {
            n = 8 << 20;
        }
        let r0 = raised();
        let (p, code) = self.hcall(format!("HeapAlloc({h:#x}, {flags:#x}, {n:#x})"), || {
            // SAFETY: HeapAlloc looks the handle up.
            unsafe { HeapAlloc(h as HANDLE, flags, n) as usize }
        });
        let log = &self.log;
        let Some(&rec) = self.hm.heaps.get(&h) else {
            assert_eq!(
                (p, code),
                (0, INVALID_HANDLE),
                "{log}: HeapAlloc on a bogus heap"
            );
            self.check_raise(r0, false, h, flags);
            return Some((false, None));
        };
        if p == 0 {
            assert_eq!(code, NOMEM, "{log}: H21");
            assert!(
                n >= 1 << 47 || !rec.growable,
                "{log}: H25: a growable heap refused {n:#x} bytes"
            );
            self.check_raise(r0, true, h, flags);
            return Some((false, None));
        }
        assert!(n < 1 << 47, "{log}: H20: HeapAlloc of {n:#x} succeeded");
        assert!(
            rec.growable || n < LARGE,
            "{log}: H23: a fixed heap gave a large block"
        );
        if rec.growable && n >= LARGE {
            assert_eq!(p % 64, 0, "{log}: H26: large block alignment");
        }
        self.check_raise(r0, false, h, flags);
        self.new_block(h, p, n, flags & HEAP_ZERO_MEMORY != 0, 0);
        Some((true, None))
    }

    fn h_realloc(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
    ) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let p = self.pick_ptr(b, stack);
        let flags = self.heap_flags_arg(b);
        let mut n = self.heap_size_arg(b);
        if n > 8 << 20 && n < 1 << 47 {
            n = 8 << 20;
        }
        let blk = self.hm.blocks.get(&p).copied();
        // Moveable data is the handle table's: freeing or moving it behind its back is the
        // caller's bug (as on Windows), not a case.
        if blk.is_some_and(|x| x.handle != 0 && x.heap == h) {
            return None;
        }
        let r0 = raised();
        let (q, code) = self.hcall(
            format!("HeapReAlloc({h:#x}, {flags:#x}, {p:#x}, {n:#x})"),
            || {
                // SAFETY: hostile pointers are refused without being touched (H43 [ours]).
                unsafe { HeapReAlloc(h as HANDLE, flags, p as _, n) as usize }
            },
        );
        let log = &self.log;
        let Some(&rec) = self.hm.heaps.get(&h) else {
            assert_eq!(
                (q, code),
                (0, INVALID_HANDLE),
                "{log}: HeapReAlloc on a bogus heap"
            );
            self.check_raise(r0, false, h, flags);
            return Some((false, None));
        };
        if p == 0 {
            assert_eq!((q, code), (0, 0), "{log}: H37");
            self.check_raise(r0, false, h, flags);
            return Some((false, None));
        }
        let Some(blk) = blk.filter(|x| x.heap == h) else {
            assert_eq!(
                q, 0,
                "{log}: H43: HeapReAlloc of a pointer that is not a block succeeded"
            );
            let want = bad_code(st, p);
            // A request that can never fit (H20, H23) is refused before the pointer is looked
            // at: ERROR_NOT_ENOUGH_MEMORY then (the engine's order; Windows crashes here).
            let never = n >= 1 << 47 || (!rec.growable && n >= LARGE);
            let ok = code == want || (never && code == NOMEM);
            assert!(ok, "{log}: H43: code {code}, expected {want}");
            self.check_raise(r0, code == NOMEM, h, flags);
            return Some((false, None));
        };
        if q == 0 {
            assert_eq!(code, NOMEM, "{log}: H44");
            assert!(
                n >= 1 << 47 || flags & HEAP_REALLOC_IN_PLACE_ONLY != 0 || !rec.growable,
                "{log}: H25: a growable heap could not move a block to {n:#x} bytes"
            );
            self.check_raise(r0, true, h, flags);
            return Some((false, None));
        }
        self.check_raise(r0, false, h, flags);
        assert!(n < 1 << 47, "{log}: H20: HeapReAlloc to {n:#x} succeeded");
        if flags & HEAP_REALLOC_IN_PLACE_ONLY != 0 {
            assert_eq!(q, p, "{log}: H40: in-place realloc moved the block");
        }
        assert_eq!(q % 16, 0, "{log}: H26");
        let old = blk.size;
        let keep = old.min(n);
        let moved = Blk { size: n, ..blk };
        // H38: contents kept up to the smaller size; H39: growth zeroed with HEAP_ZERO_MEMORY.
        if let Some((i, v)) = (Blk { size: old, ..blk }).check(q, keep) {
            panic!("{log}: H38: byte {i} changed ({v:#x}) by HeapReAlloc {p:#x} -> {q:#x}");
        }
        if flags & HEAP_ZERO_MEMORY != 0 && n > old {
            if let Some(i) = zero_samples(q, old, n) {
                panic!("{log}: H39: byte {i} of the grown part is not 0");
            }
        }
        self.hm.blocks.remove(&p);
        if q != p {
            self.hm.freed.push(p);
            assert!(
                !self.hm.blocks.contains_key(&q),
                "{log}: {q:#x} handed out twice"
            );
        }
        moved.write(q, 0);
        self.hm.blocks.insert(q, moved);
        self.hm.freed.retain(|&f| f != q);
        Some((true, None))
    }

    fn h_free(&mut self, b: &mut Bytes, st: &State, stack: usize) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let p = self.pick_ptr(b, stack);
        let flags = self.heap_flags_arg(b);
        let blk = self.hm.blocks.get(&p).copied();
        if blk.is_some_and(|x| x.handle != 0 && x.heap == h) {
            return None;
        }
        let (ok, code) = self.hcall(format!("HeapFree({h:#x}, {flags:#x}, {p:#x})"), || {
            // SAFETY: hostile pointers are refused without being touched (H34 [ours]).
            unsafe { HeapFree(h as HANDLE, flags, p as _) }
        });
        let log = &self.log;
        if p == 0 {
            assert_eq!((ok, code), (TRUE, SENTINEL), "{log}: H32");
            return Some((false, None));
        }
        if !self.hm.heaps.contains_key(&h) {
            assert_eq!(
                (ok, code),
                (0, INVALID_HANDLE),
                "{log}: HeapFree on a bogus heap"
            );
            return Some((false, None));
        }
        match blk.filter(|x| x.heap == h) {
            Some(_) => {
                assert_eq!((ok, code), (TRUE, SENTINEL), "{log}: H33");
                self.hm.blocks.remove(&p);
                self.hm.freed.push(p);
                Some((true, None))
            }
            None => {
                assert_eq!((ok, code), (0, bad_code(st, p)), "{log}: H34");
                Some((false, None))
            }
        }
    }

    fn h_size_validate(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
    ) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let p = self.pick_ptr(b, stack);
        let validate = b.u8() % 2 == 0;
        let blk = self.hm.blocks.get(&p).copied().filter(|x| x.heap == h);
        let known = self.hm.heaps.contains_key(&h);
        if validate {
            let (ok, code) = self.hcall(format!("HeapValidate({h:#x}, 0, {p:#x})"), || {
                // SAFETY: HeapValidate never touches memory outside the heap.
                unsafe { HeapValidate(h as HANDLE, 0, p as _) }
            });
            let log = &self.log;
            let want = if !known {
                (0, INVALID_HANDLE)
            } else if p == 0 || blk.is_some() {
                (TRUE, SENTINEL) // H45, H46
            } else if bad_code(st, p) == NOACCESS {
                (0, NOACCESS)
            } else {
                (0, SENTINEL) // H46: FALSE, LE untouched
            };
            assert_eq!((ok, code), want, "{log}: HeapValidate");
        } else {
            let (n, code) = self.hcall(format!("HeapSize({h:#x}, 0, {p:#x})"), || {
                // SAFETY: as above (H31).
                unsafe { HeapSize(h as HANDLE, 0, p as _) }
            });
            let log = &self.log;
            let want = if !known {
                (usize::MAX, INVALID_HANDLE)
            } else if let Some(x) = blk {
                (x.size, SENTINEL)
            } else {
                (usize::MAX, bad_code(st, p))
            };
            assert_eq!((n, code), want, "{log}: H29/H31: HeapSize");
        }
        Some((false, None))
    }

    fn h_walk_hostile(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
    ) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let null_entry = b.u8() % 8 == 0;
        let mut e = PROCESS_HEAP_ENTRY {
            lpData: self.pick_ptr(b, stack) as *mut c_void,
            wFlags: b.pick(&[0u16, 1, 2, 4, 4, 0xFFFF]),
            iRegionIndex: b.pick(&[0u8, 1, 64, 63, 255]),
            cbData: b.u32(),
            ..PROCESS_HEAP_ENTRY::default()
        };
        let ep: *mut PROCESS_HEAP_ENTRY = if null_entry { null_mut() } else { &mut e };
        let (ok, code) = self.hcall(
            format!(
                "HeapWalk({h:#x}, from {:#x} flags {:#x} idx {})",
                e.lpData as usize, e.wFlags, e.iRegionIndex
            ),
            || {
                // SAFETY: `ep` is NULL or a valid entry.
                unsafe { HeapWalk(h as HANDLE, ep) }
            },
        );
        let log = &self.log;
        if !self.hm.heaps.contains_key(&h) {
            let want = if null_entry { NOACCESS } else { INVALID_HANDLE };
            assert_eq!((ok, code), (0, want), "{log}: HeapWalk on a bogus heap");
        } else if null_entry {
            assert_eq!((ok, code), (0, NOACCESS), "{log}: HeapWalk(NULL entry)");
        } else if ok != 0 {
            // H66: whatever it resumes from, it gives an item of the heap.
            let all = walk(h).unwrap_or_else(|c| panic!("{log}: walk failed {c}"));
            assert!(
                all.iter()
                    .any(|x| x.lpData == e.lpData && x.wFlags == e.wFlags && x.cbData == e.cbData),
                "{log}: H66: HeapWalk from a bogus entry gave an item not in the heap: {:#x} {:#x}",
                e.lpData as usize,
                e.wFlags
            );
        } else {
            assert!(code == PARAM || code == NO_MORE, "{log}: H66: code {code}");
        }
        let _ = st;
        Some((false, None))
    }

    fn h_summary(&mut self, b: &mut Bytes) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let sz = size_of::<HEAP_SUMMARY>() as u32;
        let cb = b.pick(&[sz, sz, sz, 0, sz - 1, sz + 1, u32::MAX]);
        let null = b.u8() % 10 == 0;
        let mut s = HEAP_SUMMARY {
            cb,
            ..HEAP_SUMMARY::default()
        };
        let sp: *mut HEAP_SUMMARY = if null { null_mut() } else { &mut s };
        let (ok, code) = self.hcall(format!("HeapSummary({h:#x}, cb={cb}, null={null})"), || {
            // SAFETY: NULL or a valid summary.
            unsafe { HeapSummary(h as HANDLE, 0, sp) }
        });
        let log = &self.log;
        let want = if null {
            (0, NOACCESS)
        } else if cb != sz {
            (0, PARAM) // H67
        } else if !self.hm.heaps.contains_key(&h) {
            (0, INVALID_HANDLE)
        } else {
            (TRUE, SENTINEL)
        };
        assert_eq!((ok, code), want, "{log}: HeapSummary");
        if ok != 0 {
            let mut alloc: usize = self
                .hm
                .blocks
                .values()
                .filter(|x| x.heap == h)
                .map(|x| x.size)
                .sum();
            if h == self.hm.ph {
                alloc += self.hm.base_blocks.values().sum::<usize>();
            }
            assert_eq!(s.cbAllocated, alloc, "{log}: H68: cbAllocated");
            assert!(
                s.cbCommitted >= s.cbAllocated && s.cbReserved >= s.cbCommitted,
                "{log}: H68"
            );
        }
        Some((false, None))
    }

    fn h_compact(&mut self, b: &mut Bytes) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let (n, code) = self.hcall(format!("HeapCompact({h:#x})"), || {
            // SAFETY: a handle looked up.
            unsafe { HeapCompact(h as HANDLE, 0) }
        });
        let log = &self.log;
        if !self.hm.heaps.contains_key(&h) {
            assert_eq!(
                (n, code),
                (0, INVALID_HANDLE),
                "{log}: HeapCompact on a bogus heap"
            );
            return Some((false, None));
        }
        if n == 0 {
            assert_eq!(code, 0, "{log}: H48: 0 without NO_ERROR");
        }
        Some((true, Some(h)))
    }

    fn h_lock(&mut self, b: &mut Bytes) -> Option<(bool, Option<usize>)> {
        let h = self.pick_heap(b);
        let unlock = b.u8() % 2 == 0;
        let rec = self.hm.heaps.get(&h).copied();
        if !unlock && rec.is_some_and(|r| r.locks >= 8) {
            return None;
        }
        let (ok, code) = self.hcall(
            format!("Heap{}({h:#x})", if unlock { "Unlock" } else { "Lock" }),
            || {
                // SAFETY: a handle looked up.
                unsafe {
                    if unlock {
                        HeapUnlock(h as HANDLE)
                    } else {
                        HeapLock(h as HANDLE)
                    }
                }
            },
        );
        let log = &self.log;
        let Some(rec) = rec else {
            assert_eq!(
                (ok, code),
                (0, INVALID_HANDLE),
                "{log}: HeapLock on a bogus heap"
            );
            return Some((false, None));
        };
        let noser = rec.flags & HEAP_NO_SERIALIZE != 0;
        if unlock && rec.locks == 0 && !noser {
            assert_eq!((ok, code), (0, NOT_LOCKED), "{log}: H57");
        } else {
            assert_eq!((ok, code), (TRUE, SENTINEL), "{log}: H54/H55");
            if !noser {
                let r = self.hm.heaps.get_mut(&h).unwrap();
                if unlock {
                    r.locks -= 1;
                } else {
                    r.locks += 1;
                }
            }
        }
        Some((false, None))
    }

    fn h_heaps(&mut self) -> Option<(bool, Option<usize>)> {
        let mut buf = [null_mut::<c_void>(); 16];
        let (n, _) = self.hcall("GetProcessHeaps(16)".into(), || {
            // SAFETY: 16 slots.
            unsafe { GetProcessHeaps(16, buf.as_mut_ptr()) }
        });
        let log = &self.log;
        let want = 1 + self.hm.others + self.hm.order.len();
        assert_eq!(n as usize, want, "{log}: H12: heap count");
        assert_eq!(
            buf[0] as usize, self.hm.ph,
            "{log}: H12: process heap first"
        );
        let got: BTreeSet<usize> = buf[..want.min(16)].iter().map(|&x| x as usize).collect();
        for h in &self.hm.order {
            assert!(got.contains(h), "{log}: H12: heap {h:#x} not listed");
        }
        Some((false, None))
    }

    // ---------------------------------------------------------------------------------
    // Global / Local
    // ---------------------------------------------------------------------------------

    /// A value for the Global* calls: handles (live or dead), fixed blocks, moveable data,
    /// or hostile values.
    fn pick_gval(&self, b: &mut Bytes, stack: usize) -> usize {
        let hm = &self.hm;
        match b.u8() % 6 {
            0 | 1 if !hm.moveable.is_empty() => *hm
                .moveable
                .keys()
                .nth(b.u8() as usize % hm.moveable.len())
                .unwrap(),
            2 => {
                let ph: Vec<usize> = hm
                    .blocks
                    .iter()
                    .filter(|(_, x)| x.heap == hm.ph)
                    .map(|(&p, _)| p)
                    .collect();
                if ph.is_empty() {
                    0
                } else {
                    ph[b.u8() as usize % ph.len()]
                }
            }
            3 => b.pick(&[0xdead_bee0usize, 0xdead_bee8, 0xc042, 0]),
            _ => self.pick_ptr(b, stack),
        }
    }

    /// The engine's view of a value, from the model (G12–G19's targets).
    fn gclass(&self, st: &State, v: usize) -> GTarget {
        if v == 0 {
            return GTarget::Null;
        }
        if v % 16 == 8 {
            return if self.hm.moveable.contains_key(&v) {
                GTarget::Handle
            } else {
                GTarget::Dead
            };
        }
        match self.hm.blocks.get(&v) {
            Some(x) if x.heap == self.hm.ph => {
                if x.handle != 0 {
                    GTarget::Data
                } else {
                    GTarget::Fixed
                }
            }
            _ if self.hm.base_blocks.contains_key(&v) => GTarget::Fixed,
            _ if bad_code(st, v) == NOACCESS => GTarget::Garbage,
            _ => GTarget::Stale,
        }
    }

    fn slot(&self, h: usize) -> usize {
        // SAFETY: `h` is a live handle: its slot is committed table memory (G4).
        unsafe { (h as *const usize).read_volatile() }
    }

    fn learn_table(&mut self, st: &State, h: usize) {
        let Some(a) = self.ours(st, h) else {
            panic!("{}: G4: handle {h:#x} is not in any allocation", self.log)
        };
        let t = TABLE.load(std::sync::atomic::Ordering::Relaxed);
        assert!(t == 0 || t == a.2, "{}: two handle tables", self.log);
        TABLE.store(a.2, std::sync::atomic::Ordering::Relaxed);
    }

    fn g_alloc(&mut self, b: &mut Bytes) -> Option<(bool, Option<usize>)> {
        let local = b.u8() % 2 == 0;
        let valid = if local {
            LMEM_VALID_FLAGS
        } else {
            GMEM_VALID_FLAGS
        };
        let flags = match b.u8() % 8 {
            0 | 1 => 0,
            2 => GMEM_MOVEABLE,
            3 => GMEM_MOVEABLE | GMEM_ZEROINIT,
            4 => {
                GMEM_MOVEABLE
                    | if local {
                        LMEM_DISCARDABLE
                    } else {
                        GMEM_DISCARDABLE | GMEM_DDESHARE
                    }
            }
            5 => GMEM_ZEROINIT | b.pick(&[0, GMEM_NOCOMPACT, GMEM_NODISCARD]),
            6 => b.pick(&[
                GMEM_MODIFY,
                0x8000,
                0x1,
                GMEM_MOVEABLE | GMEM_NOTIFY,
                GMEM_LOWER,
            ]),
            _ => b.u32() & 0xFFFF,
        };
        let mut n = self.heap_size_arg(b);
        if n > 8 << 20 && n < 1 << 47 {
            n = 8 << 20;
        }
        let name = if local { "LocalAlloc" } else { "GlobalAlloc" };
        let (h, code) = self.hcall(format!("{name}({flags:#x}, {n:#x})"), || {
            // SAFETY: plain values.
            unsafe {
                if local {
                    LocalAlloc(flags, n) as usize
                } else {
                    GlobalAlloc(flags, n) as usize
                }
            }
        });
        let log = &self.log;
        if flags & !valid != 0 {
            assert_eq!((h, code), (0, PARAM), "{log}: G1");
            return Some((false, None));
        }
        if h == 0 {
            assert_eq!(code, NOMEM, "{log}: {name} failed");
            assert!(n >= 1 << 47, "{log}: G8: {name} of {n:#x} failed");
            return Some((false, None));
        }
        assert!(n < 1 << 47, "{log}: {name} of {n:#x} succeeded");
        let zero = flags & GMEM_ZEROINIT != 0;
        let ph = self.hm.ph;
        if flags & GMEM_MOVEABLE != 0 {
            assert_eq!(h % 16, 8, "{log}: G4: handle shape");
            let st = state();
            self.learn_table(&st, h);
            let data = self.slot(h);
            assert_eq!(data == 0, n == 0, "{}: G7/G8: data {data:#x}", self.log);
            self.hm.moveable.insert(
                h,
                Mov {
                    data,
                    lock: 0,
                    discardable: flags
                        & if local {
                            LMEM_DISCARDABLE
                        } else {
                            GMEM_DISCARDABLE
                        }
                        != 0,
                    ddeshare: !local && flags & GMEM_DDESHARE != 0,
                },
            );
            self.hm.dead_handles.retain(|&d| d != h);
            if data != 0 {
                self.new_block(ph, data, n, zero, h);
            }
        } else {
            // G3: GlobalAlloc(FIXED, 0) has size 1; LocalAlloc 0.
            let size = if n == 0 && !local { 1 } else { n };
            self.new_block(ph, h, size, zero, 0);
        }
        Some((true, None))
    }

    fn g_free(&mut self, b: &mut Bytes, st: &State, stack: usize) -> Option<(bool, Option<usize>)> {
        let local = b.u8() % 2 == 0;
        let v = self.pick_gval(b, stack);
        let t = self.gclass(st, v);
        if t == GTarget::Fixed && self.hm.base_blocks.contains_key(&v) {
            return None;
        }
        let name = if local { "LocalFree" } else { "GlobalFree" };
        let (r, code) = self.hcall(format!("{name}({v:#x}) [{t:?}]"), || {
            // SAFETY: hostile values are classified without being dereferenced.
            unsafe {
                if local {
                    LocalFree(v as _) as usize
                } else {
                    GlobalFree(v as _) as usize
                }
            }
        });
        let log = &self.log;
        match t {
            GTarget::Null => assert_eq!((r, code), (0, SENTINEL), "{log}: G18"),
            GTarget::Handle => {
                assert_eq!(r, 0, "{log}: G14/G18: freeing a handle ({code})");
                let m = self.hm.moveable.remove(&v).unwrap();
                if m.data != 0 {
                    self.hm.blocks.remove(&m.data);
                    self.hm.freed.push(m.data);
                }
                self.hm.dead_handles.push(v);
                return Some((true, None));
            }
            GTarget::Fixed => {
                assert_eq!(r, 0, "{log}: G18: freeing a fixed block ({code})");
                self.hm.blocks.remove(&v);
                self.hm.freed.push(v);
                return Some((true, None));
            }
            GTarget::Garbage => assert_eq!((r, code), (v, NOACCESS), "{log}: G18"),
            _ => assert_eq!((r, code), (v, INVALID_HANDLE), "{log}: G18"),
        }
        Some((false, None))
    }

    fn g_lock(&mut self, b: &mut Bytes, st: &State, stack: usize) -> Option<(bool, Option<usize>)> {
        let local = b.u8() % 2 == 0;
        let unlock = b.u8() % 2 == 0;
        let v = self.pick_gval(b, stack);
        let t = self.gclass(st, v);
        let pre = if unlock { "Unlock" } else { "Lock" };
        let api = if local { "Local" } else { "Global" };
        let (r, code) = self.hcall(format!("{api}{pre}({v:#x}) [{t:?}]"), || {
            // SAFETY: classified without dereferencing.
            unsafe {
                match (local, unlock) {
                    (false, false) => GlobalLock(v as _) as usize,
                    (true, false) => LocalLock(v as _) as usize,
                    (false, true) => GlobalUnlock(v as _) as usize,
                    (true, true) => LocalUnlock(v as _) as usize,
                }
            }
        });
        let log = &self.log;
        if !unlock {
            let want = match t {
                GTarget::Handle => {
                    let m = self.hm.moveable.get_mut(&v).unwrap();
                    if m.data == 0 {
                        (0, DISCARDED) // G12
                    } else {
                        m.lock = m.lock.saturating_add(1); // G10
                        (m.data, SENTINEL)
                    }
                }
                GTarget::Fixed | GTarget::Data => (v, SENTINEL), // G11
                GTarget::Dead => (0, INVALID_HANDLE),
                _ if local => (0, SENTINEL),
                _ => (0, INVALID_HANDLE),
            };
            assert_eq!((r, code), want, "{log}: G10–G12");
        } else {
            let want = match t {
                GTarget::Handle => {
                    let m = self.hm.moveable.get_mut(&v).unwrap();
                    match m.lock {
                        0 => (0, NOT_LOCKED),
                        1 => {
                            m.lock = 0;
                            (0, 0)
                        }
                        _ => {
                            m.lock -= 1;
                            (1, SENTINEL)
                        }
                    }
                }
                GTarget::Dead => ((!local) as usize, INVALID_HANDLE),
                _ if local => (0, NOT_LOCKED),
                _ => (1, SENTINEL),
            };
            assert_eq!((r, code), want, "{log}: G13");
        }
        Some((false, None))
    }

    fn g_query(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
    ) -> Option<(bool, Option<usize>)> {
        let local = b.u8() % 2 == 0;
        let what = b.u8() % 3;
        let v = self.pick_gval(b, stack);
        let t = self.gclass(st, v);
        let api = if local { "Local" } else { "Global" };
        let names = ["Size", "Flags", "Handle"];
        let (r, code) = self.hcall(
            format!("{api}{}({v:#x}) [{t:?}]", names[what as usize]),
            || {
                // SAFETY: classified without dereferencing.
                unsafe {
                    match (local, what) {
                        (false, 0) => GlobalSize(v as _),
                        (true, 0) => LocalSize(v as _),
                        (false, 1) => GlobalFlags(v as _) as usize,
                        (true, 1) => LocalFlags(v as _) as usize,
                        (false, _) => GlobalHandle(v as _) as usize,
                        (true, _) => LocalHandle(v as _) as usize,
                    }
                }
            },
        );
        let log = &self.log;
        let size_of_block = |p: usize| {
            self.hm
                .blocks
                .get(&p)
                .map(|x| x.size)
                .or_else(|| self.hm.base_blocks.get(&p).copied())
                .unwrap()
        };
        let garbage_code = if local { NOACCESS } else { INVALID_HANDLE };
        let want = match (what, t) {
            (0, GTarget::Handle) => {
                let m = self.hm.moveable[&v];
                (
                    if m.data == 0 {
                        0
                    } else {
                        size_of_block(m.data)
                    },
                    SENTINEL,
                )
            }
            (0, GTarget::Fixed | GTarget::Data) => (size_of_block(v), SENTINEL),
            (0, _) => (0, INVALID_HANDLE), // G16
            (1, GTarget::Handle) => {
                let m = self.hm.moveable[&v];
                let mut f = m.lock as usize;
                if m.discardable {
                    f |= if local { 0xF00 } else { 0x100 };
                }
                if m.data == 0 {
                    f |= 0x4000;
                }
                if m.ddeshare && !local {
                    f |= 0x2000;
                }
                (f, SENTINEL)
            }
            (1, GTarget::Fixed | GTarget::Data) => (0, SENTINEL),
            (1, GTarget::Null | GTarget::Garbage) => (0x8000, garbage_code), // G15
            (1, _) => (0x8000, INVALID_HANDLE),
            (_, GTarget::Data) => (self.hm.blocks[&v].handle, SENTINEL), // G17
            (_, GTarget::Fixed | GTarget::Handle) => (v, SENTINEL),
            (_, GTarget::Null | GTarget::Garbage) => (0, garbage_code),
            (_, _) => (0, INVALID_HANDLE),
        };
        assert_eq!((r, code), want, "{log}: G15–G17");
        Some((false, None))
    }

    fn g_realloc(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
    ) -> Option<(bool, Option<usize>)> {
        let local = b.u8() % 2 == 0;
        let v = self.pick_gval(b, stack);
        let t = self.gclass(st, v);
        if t == GTarget::Fixed && self.hm.base_blocks.contains_key(&v) {
            return None;
        }
        let disc = if local {
            LMEM_DISCARDABLE
        } else {
            GMEM_DISCARDABLE
        };
        let flags = match b.u8() % 8 {
            0 | 1 => 0,
            2 | 3 => GMEM_MOVEABLE,
            4 => GMEM_MOVEABLE | GMEM_ZEROINIT,
            5 => GMEM_MODIFY | b.pick(&[0, GMEM_MOVEABLE, GMEM_MOVEABLE | disc, disc]),
            6 => disc | b.pick(&[0, GMEM_MOVEABLE]),
            _ => b.u32() & 0xFFFF,
        };
        let mut n = self.heap_size_arg(b);
        if n > 8 << 20 && n < 1 << 47 {
            n = 8 << 20;
        }
        let api = if local { "Local" } else { "Global" };
        // The block before: (data pointer, its record).
        let data = match t {
            GTarget::Handle => self.hm.moveable[&v].data,
            GTarget::Fixed => v,
            _ => 0,
        };
        let old = self.hm.blocks.get(&data).copied();
        let (r, code) = self.hcall(
            format!("{api}ReAlloc({v:#x}, {n:#x}, {flags:#x}) [{t:?}]"),
            || {
                // SAFETY: classified without dereferencing.
                unsafe {
                    if local {
                        LocalReAlloc(v as _, n, flags) as usize
                    } else {
                        GlobalReAlloc(v as _, n, flags) as usize
                    }
                }
            },
        );
        let log = &self.log;
        match t {
            GTarget::Garbage => {
                assert_eq!((r, code), (0, NOACCESS), "{log}: G19");
                return Some((false, None));
            }
            GTarget::Null | GTarget::Dead | GTarget::Stale | GTarget::Data => {
                assert_eq!((r, code), (0, INVALID_HANDLE), "{log}: G19");
                return Some((false, None));
            }
            _ => {}
        }
        let modify = flags & GMEM_MODIFY != 0;
        let moveable = flags & GMEM_MOVEABLE != 0;
        let discardable = flags & disc != 0;
        if !modify && discardable {
            assert_eq!(r, 0, "{log}: G19: DISCARDABLE without MODIFY succeeded");
        }
        if modify {
            assert_ne!(r, 0, "{log}: G19: MODIFY failed ({code})");
        }
        if r == 0 {
            assert!(
                matches!(code, NOMEM | PARAM | SENTINEL | 0),
                "{log}: G19: code {code}"
            );
            // Unchanged: checked by the step (allocations, regions) and below (contents).
            if t == GTarget::Handle {
                assert_eq!(
                    self.slot(v),
                    data,
                    "{log}: a failed {api}ReAlloc moved the data"
                );
            }
            return Some((false, None));
        }
        let ph = self.hm.ph;
        let check_kept = |q: usize, newsize: usize, log: &Log| {
            if let Some(o) = old {
                if let Some((i, x)) = o.check(q, o.size.min(newsize)) {
                    panic!("{log}: G19: byte {i} changed ({x:#x}) by {api}ReAlloc");
                }
            }
        };
        if t == GTarget::Handle {
            assert_eq!(
                r, v,
                "{log}: G19: a moveable realloc returned another handle"
            );
            let m = self.hm.moveable[&v];
            let nd = self.slot(v);
            if modify {
                assert_eq!(nd, data, "{log}: G19: MODIFY moved the data");
                if discardable {
                    self.hm.moveable.get_mut(&v).unwrap().discardable = true;
                }
                return Some((false, None));
            }
            if n == 0 {
                assert!(
                    moveable && m.lock == 0,
                    "{log}: G19: discard of a locked block or without MOVEABLE"
                );
                assert_eq!(nd, 0, "{log}: G19: discarded block keeps data");
                if let Some(o) = old {
                    let _ = o;
                    self.hm.blocks.remove(&data);
                    self.hm.freed.push(data);
                }
                self.hm.moveable.get_mut(&v).unwrap().data = 0;
                return Some((true, None));
            }
            assert_ne!(nd, 0, "{log}: G19: resized block without data");
            if m.lock > 0 && !moveable {
                assert_eq!(
                    nd, data,
                    "{log}: G19: a locked block moved without MOVEABLE"
                );
            }
            check_kept(nd, n, log);
            match old {
                Some(o) => {
                    self.hm.blocks.remove(&data);
                    if nd != data {
                        self.hm.freed.push(data);
                    }
                    if flags & GMEM_ZEROINIT != 0 && n > o.size {
                        if let Some(i) = zero_samples(nd, o.size, n) {
                            panic!("{}: G19: byte {i} of the grown part is not 0", self.log);
                        }
                    }
                    let nb = Blk { size: n, ..o };
                    nb.write(nd, 0);
                    self.hm.blocks.insert(nd, nb);
                    self.hm.freed.retain(|&f| f != nd);
                }
                None => self.new_block(ph, nd, n, flags & GMEM_ZEROINIT != 0, v),
            }
            self.hm.moveable.get_mut(&v).unwrap().data = nd;
            return Some((true, None));
        }
        // A fixed block.
        let o = old.unwrap();
        if r % 16 == 8 {
            // G19: Global MODIFY|MOVEABLE converts it into a moveable block of the same size.
            assert!(
                modify && moveable && !local,
                "{log}: G19/G20: converted to a handle"
            );
            let st = state();
            self.learn_table(&st, r);
            let nd = self.slot(r);
            assert_eq!(nd == 0, o.size == 0, "{}: G19: converted data", self.log);
            check_kept(nd, o.size, &self.log);
            self.hm.blocks.remove(&v);
            self.hm.freed.push(v);
            self.hm.moveable.insert(
                r,
                Mov {
                    data: nd,
                    lock: 0,
                    discardable,
                    ddeshare: false,
                },
            );
            self.hm.dead_handles.retain(|&d| d != r);
            if nd != 0 {
                let nb = Blk { handle: r, ..o };
                self.hm.blocks.insert(nd, nb);
                self.hm.freed.retain(|&f| f != nd);
            }
            return Some((true, None));
        }
        if modify {
            assert_eq!(r, v, "{log}: G19: MODIFY on a fixed block");
            return Some((false, None));
        }
        if !moveable {
            assert_eq!(r, v, "{log}: G19: a fixed block moved without MOVEABLE");
        }
        assert_eq!(r % 16, 0, "{log}: G2");
        check_kept(r, n, log);
        if flags & GMEM_ZEROINIT != 0 && n > o.size {
            if let Some(i) = zero_samples(r, o.size, n) {
                panic!("{log}: G19: byte {i} of the grown part is not 0");
            }
        }
        self.hm.blocks.remove(&v);
        if r != v {
            self.hm.freed.push(v);
            assert!(
                !self.hm.blocks.contains_key(&r),
                "{log}: {r:#x} handed out twice"
            );
        }
        let nb = Blk { size: n, ..o };
        nb.write(r, 0);
        self.hm.blocks.insert(r, nb);
        self.hm.freed.retain(|&f| f != r);
        Some((true, None))
    }

    // ---------------------------------------------------------------------------------
    // Checks
    // ---------------------------------------------------------------------------------

    /// Learns the heaps' reservations from their walks; every allocation a heap call made must
    /// be one of them. `compacted`: a heap that was just compacted or destroyed (no spare).
    fn heap_learn(&mut self, before: &State, after: &State, compacted: Option<usize>) -> Walks {
        let log = &self.log;
        let mut owned: BTreeMap<u64, Own> = BTreeMap::new();
        let id_of = |a: usize| self.ours(after, a).map(|x| x.2);
        let mut walks = Walks::new();
        for &h in self.hm.heaps.keys() {
            let w =
                walk(h).unwrap_or_else(|c| panic!("{log}: H58: walk of {h:#x} failed with {c}"));
            for e in &w {
                let p = e.lpData as usize;
                if e.wFlags as u32 & PROCESS_HEAP_REGION != 0 {
                    let id = id_of(p).unwrap_or_else(|| {
                        panic!("{log}: region {p:#x} of heap {h:#x} is not allocated")
                    });
                    owned.insert(id, Own::Region(h));
                } else if e.iRegionIndex == 64 && e.wFlags as u32 & PROCESS_HEAP_ENTRY_BUSY != 0 {
                    let id = id_of(p).unwrap_or_else(|| {
                        panic!("{log}: large block {p:#x} of heap {h:#x} is not allocated")
                    });
                    owned.insert(id, Own::Large(h));
                }
            }
            walks.insert(h, w);
        }
        let t = TABLE.load(std::sync::atomic::Ordering::Relaxed);
        if t != 0 {
            assert!(
                after.allocs.iter().any(|a| a.2 == t),
                "{log}: the handle table was released"
            );
            owned.insert(t, Own::Table);
        }
        // A released large block's reservation the heap keeps for the next one.
        for (&id, &o) in &self.hm.owned {
            if owned.contains_key(&id) {
                continue;
            }
            let Some(a) = after.allocs.iter().find(|a| a.2 == id) else {
                continue;
            };
            let h = match o {
                Own::Large(h) | Own::Spare(h) => h,
                // A region (segment, front-end arena) the walk no longer shows must be gone:
                // a reservation kept behind the walk's back is one nobody accounts for.
                Own::Region(h) => panic!(
                    "{log}: heap {h:#x}'s region {:#x}+{:#x} left its walk but is still reserved",
                    a.0, a.1
                ),
                Own::Table => continue,
            };
            assert!(
                self.hm.heaps.contains_key(&h) && compacted != Some(h),
                "{log}: H49/H48: heap {h:#x}'s reservation (id {id}) outlived HeapDestroy / HeapCompact"
            );
            owned.insert(id, Own::Spare(h));
        }
        // Every allocation a heap call made is one of the heaps'.
        for a in &after.allocs {
            if before.allocs.iter().any(|x| x.2 == a.2) || owned.contains_key(&a.2) {
                continue;
            }
            panic!(
                "{log}: a heap call left an allocation {:#x}+{:#x} that no heap's walk accounts for",
                a.0, a.1
            );
        }
        self.hm.owned = owned;
        walks
    }

    /// The model against the heaps after every step.
    pub(super) fn heap_check(&mut self, st: &State, walks: &Walks) {
        let log = &self.log;
        // Blocks: contents, HeapSize, no overlap, inside a reservation of their heap.
        let mut prev_end = 0usize;
        for (&p, x) in &self.hm.blocks {
            assert!(
                p >= prev_end,
                "{log}: block {p:#x} overlaps the previous one"
            );
            prev_end = p + x.size.max(1);
            if let Some((i, v)) = x.check(p, usize::MAX) {
                panic!(
                    "{log}: block {p:#x} ({:#x} bytes of heap {:#x}): byte {i} is {v:#x}",
                    x.size, x.heap
                );
            }
            // SAFETY: a live block of a live heap.
            let n = unsafe { HeapSize(x.heap as HANDLE, 0, p as _) };
            assert_eq!(n, x.size, "{log}: H29: HeapSize of {p:#x}");
            let a = self
                .ours(st, p)
                .unwrap_or_else(|| panic!("{log}: block {p:#x} is in no allocation"));
            let own = self.hm.owned.get(&a.2);
            assert!(
                matches!(own, Some(Own::Region(h) | Own::Large(h)) if *h == x.heap),
                "{log}: block {p:#x} of heap {:#x} lies in {own:?}",
                x.heap
            );
            assert!(
                p + x.size <= a.0 + a.1,
                "{log}: block {p:#x} runs past its reservation"
            );
        }
        // Moveable handles: the slot holds the data pointer (G4).
        for (&h, m) in &self.hm.moveable {
            assert_eq!(self.slot(h), m.data, "{log}: G4: slot of {h:#x}");
        }
        // The walks: exactly the model's blocks with their requested sizes (H61, H62).
        for &h in self.hm.heaps.keys() {
            let w = &walks[&h];
            let mut busy: BTreeMap<usize, usize> = BTreeMap::new();
            for e in w {
                let f = e.wFlags as u32;
                assert_eq!(f & (PROCESS_HEAP_ENTRY_MOVEABLE | 0x20), 0, "{log}: G9");
                if f & PROCESS_HEAP_ENTRY_BUSY != 0 {
                    assert!(
                        busy.insert(e.lpData as usize, e.cbData as usize).is_none(),
                        "{log}: H66: {:#x} walked twice",
                        e.lpData as usize
                    );
                }
            }
            let mut want: BTreeMap<usize, usize> = self
                .hm
                .blocks
                .iter()
                .filter(|(_, x)| x.heap == h)
                .map(|(&p, x)| (p, x.size.min(u32::MAX as usize)))
                .collect();
            if h == self.hm.ph {
                want.extend(self.hm.base_blocks.iter().map(|(&p, &n)| (p, n)));
            }
            if busy != want {
                let extra: Vec<_> = busy
                    .iter()
                    .filter(|(p, n)| want.get(p) != Some(n))
                    .collect();
                let missing: Vec<_> = want
                    .iter()
                    .filter(|(p, n)| busy.get(p) != Some(n))
                    .collect();
                panic!("{log}: HeapWalk of {h:#x} disagrees with the model: walked but not live {extra:x?}, live but not walked {missing:x?}");
            }
        }
    }

    /// Frees what the input made and checks the heaps are back where they started.
    pub(super) fn heap_finish(&mut self) {
        if !self.hm.active {
            return;
        }
        let ph = self.hm.ph;
        let st = state();
        let walks = self.heap_learn(&st, &st, None);
        self.heap_check(&st, &walks);
        // Balance the harness's locks.
        for (&h, r) in &self.hm.heaps {
            for _ in 0..r.locks {
                // SAFETY: a lock this thread holds.
                assert_ne!(
                    unsafe { HeapUnlock(h as HANDLE) },
                    0,
                    "{}: HeapUnlock at the end",
                    self.log
                );
            }
        }
        for &h in &self.hm.order {
            // SAFETY: a heap this input created.
            assert_ne!(
                unsafe { HeapDestroy(h as HANDLE) },
                0,
                "{}: HeapDestroy at the end",
                self.log
            );
        }
        for &h in self.hm.moveable.keys() {
            // SAFETY: our handle.
            assert_eq!(
                unsafe { GlobalFree(h as _) } as usize,
                0,
                "{}: GlobalFree at the end",
                self.log
            );
        }
        for (&p, x) in &self.hm.blocks {
            if x.heap == ph && x.handle == 0 {
                // SAFETY: our block.
                assert_ne!(
                    unsafe { HeapFree(ph as HANDLE, 0, p as _) },
                    0,
                    "{}: HeapFree at the end",
                    self.log
                );
            }
        }
        // SAFETY: plain call.
        unsafe { HeapCompact(ph as HANDLE, 0) };
        let destroyed: Vec<usize> = self.hm.order.clone();
        self.hm.heaps.retain(|&h, _| h == ph);
        self.hm.order.clear();
        self.hm.blocks.clear();
        self.hm.moveable.clear();
        let after = state();
        let walks = self.heap_learn(&st, &after, Some(ph));
        for (id, o) in &self.hm.owned {
            if let Own::Region(h) | Own::Large(h) | Own::Spare(h) = o {
                assert!(
                    !destroyed.contains(h),
                    "{}: allocation {id} of a destroyed heap",
                    self.log
                );
            }
        }
        self.heap_check(&after, &walks);
        // SAFETY: counting only.
        let n = unsafe { GetProcessHeaps(0, null_mut()) } as usize;
        assert_eq!(n, 1 + self.hm.others, "{}: H12: heaps left", self.log);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GTarget {
    Null,
    Handle,
    Dead,
    Fixed,
    Data,
    Garbage,
    Stale,
}
