//! The pages of one allocation, stored as runs of equal state.
//!
//! Metadata grows with the number of distinct runs, never with the allocation's size: a
//! 1 TiB reservation is one run. A [`RunTable`] is immutable once published (see
//! `crate::engine::snapshot`); changes build a new table.

use crate::os::linux::metaheap::{Meta, MetaVec};

/// Runs a table keeps inline, without any heap block: enough for an allocation with one
/// page changed in its middle (three runs), so a VirtualProtect of one run plans and
/// publishes without allocating.
const INLINE: usize = 3;

/// The run starts of a table: inline up to [`INLINE`], else on the metadata heap.
#[derive(Clone, Debug)]
enum Starts {
    /// `items[..len]`; `hint` is the capacity to ask for if the runs outgrow the inline room.
    Inline {
        len: u32,
        hint: u32,
        items: [(usize, PageState); INLINE],
    },
    /// More runs than fit inline.
    Heap(MetaVec<(usize, PageState)>),
}

impl Starts {
    /// An empty list that may grow to about `n` runs: inline until it outgrows the inline
    /// room (a table whose runs merge back stays allocation-free).
    fn with_capacity(n: usize) -> Starts {
        Starts::Inline {
            len: 0,
            hint: u32::try_from(n).unwrap_or(u32::MAX),
            items: [(0, PageState::RESERVED); INLINE],
        }
    }

    #[inline(always)]
    fn push(&mut self, x: (usize, PageState)) {
        match self {
            Starts::Inline { len, items, .. } if (*len as usize) < INLINE => {
                items[*len as usize] = x;
                *len += 1;
            }
            Starts::Heap(v) => v.push(x),
            Starts::Inline { .. } => self.spill(x),
        }
    }

    /// Moves the inline runs to the metadata heap and appends `x`.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, x: (usize, PageState)) {
        if let Starts::Inline { len, hint, items } = self {
            let cap = (*hint as usize).max(2 * INLINE);
            let mut v = MetaVec::with_capacity_in(cap, Meta);
            v.extend_from_slice(&items[..*len as usize]);
            v.push(x);
            *self = Starts::Heap(v);
        }
    }

    /// Appends `(start, state)` unless the last run has that state (runs stay maximal).
    #[inline(always)]
    fn push_merged(&mut self, start: usize, state: PageState) {
        if self.last().is_some_and(|&(_, last)| last == state) {
            return;
        }
        self.push((start, state));
    }
}

impl std::ops::Deref for Starts {
    type Target = [(usize, PageState)];
    fn deref(&self) -> &Self::Target {
        match self {
            Starts::Inline { len, items, .. } => &items[..*len as usize],
            Starts::Heap(v) => v,
        }
    }
}

impl PartialEq for Starts {
    fn eq(&self, other: &Starts) -> bool {
        **self == **other
    }
}

impl Eq for Starts {}

/// The state of one page of an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PageState {
    /// Committed (`MEM_COMMIT`) or only reserved (`MEM_RESERVE`).
    pub committed: bool,
    /// The page's Win32 protection (base value and PAGE_GUARD; allocation-wide modifiers are
    /// kept on the allocation). 0 for reserved pages.
    pub protect: u32,
    /// Locked by VirtualLock.
    pub locked: bool,
    /// Lazily freed by MEM_RESET while resident, not yet undone: MEM_RESET_UNDO checks these.
    pub reset: bool,
    /// Written since the last write-watch reset, as far as recorded here (signal-driven write
    /// watch only; the kernel's page protections may know of more writes, see
    /// `engine::watch`).
    pub dirty: bool,
    /// Written, and latched by a VirtualProtect since (write watch): Windows keeps such a page
    /// reported as written through MEM_DECOMMIT and a new commit, until a reset
    /// (`windows-cases.md` case 105).
    pub latched: bool,
}

impl PageState {
    /// A reserved page.
    pub const RESERVED: PageState = PageState {
        committed: false,
        protect: 0,
        locked: false,
        reset: false,
        dirty: false,
        latched: false,
    };

    /// A freshly committed page with this page protection.
    pub const fn committed(protect: u32) -> PageState {
        PageState {
            committed: true,
            protect,
            locked: false,
            reset: false,
            dirty: false,
            latched: false,
        }
    }
}

/// One run: pages `[start, end)` (page indices within the allocation) share `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First page index.
    pub start: usize,
    /// One past the last page index.
    pub end: usize,
    /// The shared state.
    pub state: PageState,
}

/// The pages of an allocation as sorted, adjacent, maximal runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTable {
    /// Start page of each run (ascending, first is 0) and its state: inline for a few runs,
    /// else on the metadata heap (never the process heap: see `os::linux::metaheap`).
    starts: Starts,
    /// Number of pages in the allocation.
    pages: usize,
}

impl RunTable {
    /// A table of `pages` pages, all in `state`.
    pub fn new(pages: usize, state: PageState) -> RunTable {
        let mut items = [(0, PageState::RESERVED); INLINE];
        items[0].1 = state;
        RunTable {
            starts: Starts::Inline {
                len: 1,
                hint: 1,
                items,
            },
            pages,
        }
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Number of runs (the metadata size).
    pub fn run_count(&self) -> usize {
        self.starts.len()
    }

    /// The run containing `page` (O(log runs)).
    pub fn run_at(&self, page: usize) -> Run {
        debug_assert!(page < self.pages);
        let i = self.starts.partition_point(|&(s, _)| s <= page) - 1;
        self.run(i)
    }

    fn run(&self, i: usize) -> Run {
        let (start, state) = self.starts[i];
        let end = self.starts.get(i + 1).map_or(self.pages, |&(s, _)| s);
        Run { start, end, state }
    }

    /// The runs overlapping pages `[start, end)`, clipped to it, in order.
    pub fn runs_in(&self, start: usize, end: usize) -> impl Iterator<Item = Run> + '_ {
        let first = if start < self.pages {
            self.starts.partition_point(|&(s, _)| s <= start) - 1
        } else {
            self.starts.len()
        };
        (first..self.starts.len())
            .map(|i| self.run(i))
            .take_while(move |r| r.start < end)
            .map(move |r| Run {
                start: r.start.max(start),
                end: r.end.min(end),
                state: r.state,
            })
    }

    /// All runs in order.
    pub fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        self.runs_in(0, self.pages)
    }

    /// [`RunTable::with`] for a small table (at most three runs, before and after) and pages
    /// `[start, end)` inside one run: the common VirtualProtect (one run split in three, or
    /// three merged back into one) in a few dozen instructions, no general pass. `f` gives the
    /// run's new state, or `None` to refuse. Returns `None` if the table or the result is not
    /// small, the range spans several runs, or `f` refused; else the run's old state and the
    /// new table (`None` if nothing changes).
    #[inline]
    pub fn with_in_run(
        &self,
        start: usize,
        end: usize,
        f: impl FnOnce(PageState) -> Option<PageState>,
    ) -> Option<(PageState, Option<RunTable>)> {
        let Starts::Inline { len, items, .. } = &self.starts else {
            return None;
        };
        let n = (*len as usize).min(INLINE);
        let mut i = 0;
        while i + 1 < n && items[i + 1].0 <= start {
            i += 1;
        }
        let (rs, old) = items[i];
        let re = if i + 1 < n { items[i + 1].0 } else { self.pages };
        if end > re || start >= end {
            return None;
        }
        let new = f(old)?;
        if new == old {
            return Some((old, None));
        }
        // The pieces in order, each merged into the one before if equal (runs stay maximal).
        let mut out = [(0, PageState::RESERVED); INLINE];
        let mut k = 0;
        let mut put = |at: usize, st: PageState| {
            if k > 0 && out[k - 1].1 == st {
                return true;
            }
            if k == INLINE {
                return false;
            }
            out[k] = (at, st);
            k += 1;
            true
        };
        let fits = items[..i].iter().all(|&(s, st)| put(s, st))
            && (rs == start || put(rs, old))
            && put(start, new)
            && (end == re || put(end, old))
            && items[i + 1..n].iter().all(|&(s, st)| put(s, st));
        if !fits {
            return None;
        }
        let table = RunTable {
            starts: Starts::Inline {
                len: k as u32,
                hint: k as u32,
                items: out,
            },
            pages: self.pages,
        };
        Some((old, Some(table)))
    }

    /// A new table where every page of `[start, end)` has state `f(old state)`; runs are kept
    /// maximal. Costs O(runs).
    pub fn with(&self, start: usize, end: usize, f: impl Fn(PageState) -> PageState) -> RunTable {
        let end = end.min(self.pages);
        let src = &self.starts[..];
        let mut out = Starts::with_capacity(src.len() + 2);
        for (i, &(rs, st)) in src.iter().enumerate() {
            let re = src.get(i + 1).map_or(self.pages, |&(s, _)| s);
            if re <= start || rs >= end {
                out.push_merged(rs, st);
                continue;
            }
            if rs < start {
                out.push_merged(rs, st);
            }
            out.push_merged(rs.max(start), f(st));
            if re > end {
                out.push_merged(end, st);
            }
        }
        RunTable {
            starts: out,
            pages: self.pages,
        }
    }
}

impl RunTable {
    /// A new table where, for each `(start, end, x)` of `segments` (sorted, disjoint), the
    /// pages of `[start, end)` have state `f(old state, x)`. One pass: O(runs + segments).
    pub fn with_segments<X: Copy>(
        &self,
        segments: &[(usize, usize, X)],
        f: impl Fn(PageState, X) -> PageState,
    ) -> RunTable {
        let mut out = Starts::with_capacity(self.starts.len() + 2 * segments.len());
        let mut push = |s: usize, st: PageState| out.push_merged(s, st);
        let mut seg = segments.iter().peekable();
        for r in self.runs() {
            let mut at = r.start;
            while at < r.end {
                // Skip segments that end before `at`.
                while seg.peek().is_some_and(|&&(_, e, _)| e <= at) {
                    seg.next();
                }
                match seg.peek() {
                    Some(&&(s, e, x)) if s <= at => {
                        let stop = e.min(r.end);
                        push(at, f(r.state, x));
                        at = stop;
                    }
                    Some(&&(s, _, _)) if s < r.end => {
                        push(at, r.state);
                        at = s;
                    }
                    _ => {
                        push(at, r.state);
                        at = r.end;
                    }
                }
            }
        }
        RunTable {
            starts: out,
            pages: self.pages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_in_one_pass() {
        let t = RunTable::new(20, PageState::RESERVED).with(5, 15, |_| PageState::committed(4));
        let segs = [(0, 2, 1u32), (4, 6, 2), (10, 12, 3), (14, 20, 4)];
        let f = |st: PageState, x: u32| PageState {
            protect: st.protect + x * 100,
            ..st
        };
        let one = t.with_segments(&segs, f);
        let many = segs
            .iter()
            .fold(t.clone(), |t, &(s, e, x)| t.with(s, e, |st| f(st, x)));
        assert_eq!(one, many);
    }

    #[test]
    fn split_and_merge() {
        let t = RunTable::new(16, PageState::RESERVED);
        let c = PageState::committed(4);
        let t2 = t.with(2, 5, |_| c);
        assert_eq!(t2.run_count(), 3);
        assert_eq!(
            t2.run_at(3),
            Run {
                start: 2,
                end: 5,
                state: c
            }
        );
        assert_eq!(t2.run_at(7).start, 5);
        let t3 = t2.with(5, 16, |_| c).with(0, 2, |_| c);
        assert_eq!(t3.run_count(), 1);
        let t4 = t3.with(0, 16, |_| PageState::RESERVED);
        assert_eq!(t4, t);
        let clipped: Vec<Run> = t2.runs_in(3, 7).collect();
        assert_eq!(clipped.len(), 2);
        assert_eq!((clipped[0].start, clipped[0].end), (3, 5));
        assert_eq!((clipped[1].start, clipped[1].end), (5, 7));
    }

    #[test]
    fn huge_table_is_one_run() {
        let t = RunTable::new(1 << 28, PageState::RESERVED); // 1 TiB of 4 KiB pages
        assert_eq!(t.run_count(), 1);
        let t = t.with(1 << 20, (1 << 20) + 1, |_| PageState::committed(4));
        assert_eq!(t.run_count(), 3);
    }

    /// `with_in_run` agrees with `with` on every small table of six pages (built from up to
    /// three runs of three states), every range and every new state, and declines only where
    /// it says it does: the range spans runs, or the table or the result has too many runs.
    #[test]
    fn with_in_run_agrees_with_with_exhaustively() {
        let states = [
            PageState::committed(4),
            PageState::committed(2),
            PageState {
                locked: true,
                ..PageState::committed(4)
            },
        ];
        const N: usize = 6;
        let mut tables = vec![];
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    for cut1 in 1..N {
                        for cut2 in cut1..N {
                            let t = RunTable::new(N, states[a])
                                .with(cut1, N, |_| states[b])
                                .with(cut2, N, |_| states[c]);
                            tables.push(t);
                        }
                    }
                }
            }
        }
        // Tables of four runs or more (on the heap): always declined.
        tables.push(
            RunTable::new(N, states[0])
                .with(1, 2, |_| states[1])
                .with(3, 4, |_| states[1]),
        );
        let (mut took, mut declined) = (0, 0);
        for t in &tables {
            for s in 0..N {
                for e in s + 1..=N {
                    for &new in &states {
                        let expect = t.with(s, e, |_| new);
                        let run = t.run_at(s);
                        match t.with_in_run(s, e, |_| Some(new)) {
                            Some((old, None)) => {
                                assert_eq!(old, run.state);
                                assert_eq!(expect, *t);
                                took += 1;
                            }
                            Some((old, Some(table))) => {
                                assert_eq!(old, run.state);
                                assert_eq!(table, expect, "{t:?} [{s}, {e}) -> {new:?}");
                                took += 1;
                            }
                            None => {
                                assert!(
                                    e > run.end
                                        || t.run_count() > INLINE
                                        || expect.run_count() > INLINE,
                                    "declined {t:?} [{s}, {e}) -> {new:?}"
                                );
                                declined += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(took > 1000 && declined > 100, "{took} {declined}");
        // `f` refusing is a decline.
        assert!(tables[0].with_in_run(0, 1, |_| None).is_none());
    }
}
