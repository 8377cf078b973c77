//! VirtualQuery: what one address looks like, Windows-style.

use super::fault_state::effective_state;
use super::directory::Lookup;
use super::Space;
use crate::error::{Error, Result};
use crate::os::{Backing, KernelRegion, Os};
use crate::rules::protection::win32_from_host;
use crate::vocab::consts::*;

/// A page's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// MEM_FREE: no allocation.
    Free,
    /// MEM_RESERVE: address space only.
    Reserve,
    /// MEM_COMMIT: backed by memory.
    Commit,
}

impl State {
    /// The Win32 value (MEM_FREE, MEM_RESERVE or MEM_COMMIT).
    pub const fn win32(self) -> u32 {
        match self {
            State::Free => MEM_FREE,
            State::Reserve => MEM_RESERVE,
            State::Commit => MEM_COMMIT,
        }
    }
}

/// What kind of memory a region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionType {
    /// Free memory has no type (0).
    None,
    /// MEM_PRIVATE: VirtualAlloc memory, or anonymous memory of the process.
    Private,
    /// MEM_MAPPED: a file mapping.
    Mapped,
    /// MEM_IMAGE: part of a loaded executable or library.
    Image,
}

impl RegionType {
    /// The Win32 value.
    pub const fn win32(self) -> u32 {
        match self {
            RegionType::None => 0,
            RegionType::Private => MEM_PRIVATE,
            RegionType::Mapped => MEM_MAPPED,
            RegionType::Image => MEM_IMAGE,
        }
    }
}

/// One region, as VirtualQuery describes it (MEMORY_BASIC_INFORMATION).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoryInfo {
    /// The queried address rounded down to a page.
    pub base_address: usize,
    /// The allocation's base (0 for free memory).
    pub allocation_base: usize,
    /// The protection given when the allocation was made (0 for free memory).
    pub allocation_protect: u32,
    /// Bytes from `base_address` while state and protection stay the same, never past the
    /// allocation's end.
    pub region_size: usize,
    /// Free, reserved or committed.
    pub state: State,
    /// The pages' protection: 0 for reserved pages, PAGE_NOACCESS for free memory.
    pub protect: u32,
    /// The region's type.
    pub kind: RegionType,
    /// Whether virtmem manages this region (false for free memory and foreign mappings).
    pub managed: bool,
}

impl<O: Os> Space<O> {
    /// VirtualQuery: describes the region containing `addr`.
    pub fn query(&self, addr: usize) -> Result<MemoryInfo> {
        if addr > self.layout.max_address {
            return Err(Error::InvalidParameter("address above user space"));
        }
        let page = self.layout.page_floor(addr);
        // Fast path, entirely under the index's read lock: no allocation, no reference
        // counting, no syscall — unless faults may have changed the allocation's pages.
        let fast = {
            let pin = super::snapshot::pin();
            match self.index.lookup(&pin, page) {
                Lookup::In(a) => self.describe_fast(a, page).map(Some),
                Lookup::Free => Some(None),
                Lookup::Ask => {
                    drop(pin);
                    let index = self.index.read();
                    match index.floor(page) {
                        Some((_, a)) if page < a.end() => self.describe_fast(a, page).map(Some),
                        _ => Some(None),
                    }
                }
            }
        };
        match fast {
            Some(Some(info)) => return Ok(info),
            Some(None) => return Ok(self.describe_foreign(page)),
            None => {}
        }
        if let Some(a) = self.find(page) {
            if a.kind == super::AllocKind::View {
                return Ok(self.describe_view(&a, page));
            }
            let p = self.page();
            let idx = (page - a.base) / p;
            // The region runs while State and Protect stay the same (lock, reset and dirty
            // state do not show), never past the allocation's end. A guard page touched since
            // the last operation has lost its guard: the kernel's protection tells.
            use crate::os::linux::metaheap::{meta_vec, CollectMeta};
            let candidates = a.read(|t| {
                let first = t.run_at(idx).state;
                t.runs_in(idx, t.pages())
                    .take_while(|r| {
                        r.state.committed == first.committed
                            && r.state.protect & !PAGE_GUARD == first.protect & !PAGE_GUARD
                    })
                    .collect_meta()
            });
            let check_kernel = a.fault_driven() && self.os.real_memory();
            let armed = a.armed();
            let mut pieces = meta_vec::<(usize, usize, bool, u32)>();
            for r in &candidates {
                let st = r.state;
                if check_kernel && st.committed && st.protect & PAGE_GUARD != 0 {
                    let mut at = r.start;
                    while at < r.end {
                        let (e, prot) = match self.os.kernel_region(a.base + at * p) {
                            KernelRegion::Mapped(m) => {
                                let e = r.end.min((m.end - a.base).div_ceil(p)).max(at + 1);
                                (e, effective_state(st, armed, m.prot).protect)
                            }
                            KernelRegion::Free { .. } => (r.end, st.protect),
                        };
                        pieces.push((at, e, true, prot));
                        at = e;
                    }
                } else {
                    pieces.push((r.start, r.end, st.committed, st.protect));
                }
            }
            let (first_committed, first_protect) = (pieces[0].2, pieces[0].3);
            let run_end = pieces
                .iter()
                .take_while(|x| x.2 == first_committed && (!x.2 || x.3 == first_protect))
                .last()
                .map_or(idx + 1, |x| x.1);
            let run = crate::rules::runs::Run {
                start: idx,
                end: run_end,
                state: crate::rules::runs::PageState {
                    committed: first_committed,
                    protect: first_protect,
                    ..Default::default()
                },
            };
            let (state, protect) = if run.state.committed {
                (State::Commit, run.state.protect | a.modifiers)
            } else {
                (State::Reserve, 0)
            };
            return Ok(MemoryInfo {
                base_address: page,
                allocation_base: a.base,
                allocation_protect: a.alloc_protect,
                region_size: (run.end - idx) * p,
                state,
                protect,
                kind: RegionType::Private,
                managed: true,
            });
        }
        Ok(self.describe_foreign(page))
    }

    /// A region of an allocation without fault-driven state: its runs tell everything.
    /// [`Space::describe`], unless faults may have changed the allocation's pages or it is a
    /// view (those need the slow path).
    #[inline]
    fn describe_fast(&self, a: &super::Allocation, page: usize) -> Option<MemoryInfo> {
        if (a.fault_driven() && self.os.real_memory()) || a.kind == super::AllocKind::View {
            None
        } else {
            Some(self.describe(a, page))
        }
    }

    fn describe(&self, a: &super::Allocation, page: usize) -> MemoryInfo {
        let p = self.page();
        let idx = (page - a.base) >> p.trailing_zeros();
        let (first, end) = if let Some(st) = a.single_state() {
            (st, a.size >> p.trailing_zeros())
        } else {
            a.read(|t| {
            let first = t.run_at(idx).state;
            let end = t
                .runs_in(idx, t.pages())
                .take_while(|r| {
                    r.state.committed == first.committed
                        && (!first.committed || r.state.protect == first.protect)
                })
                .last()
                .map_or(idx + 1, |r| r.end);
                (first, end)
            })
        };
        let (state, protect) = if first.committed {
            (State::Commit, first.protect | a.modifiers)
        } else {
            (State::Reserve, 0)
        };
        MemoryInfo {
            base_address: page,
            allocation_base: a.base,
            allocation_protect: a.alloc_protect,
            region_size: (end - idx) * p,
            state,
            protect,
            kind: RegionType::Private,
            managed: true,
        }
    }

    /// A region of a view (VQ1): commits other views made are folded in first, and a
    /// written copy-on-write page reports PAGE_READWRITE (CW1).
    fn describe_view(
        &self,
        a: &crate::os::linux::metaheap::MetaArc<super::Allocation>,
        page: usize,
    ) -> MemoryInfo {
        if a.view.as_ref().is_some_and(|v| v.section.is_reserve()) {
            if let Some(_g) = a.begin() {
                self.sync_view(a);
            }
        }
        let p = self.page();
        let idx = (page - a.base) / p;
        let (first, end) = if a.fault_driven() && self.os.real_memory() {
            // Guard pages: the kernel's protection tells whether one was touched.
            if let Some(_g) = a.begin() {
                self.sync(a, idx, a.size / p);
            }
            self.view_region(a, idx)
        } else {
            self.view_region(a, idx)
        };
        let (state, protect) = if first.committed {
            (State::Commit, first.protect | a.modifiers)
        } else {
            (State::Reserve, 0)
        };
        MemoryInfo {
            base_address: page,
            allocation_base: a.base,
            allocation_protect: a.alloc_protect,
            region_size: (end - idx) * p,
            state,
            protect,
            kind: RegionType::Mapped,
            managed: true,
        }
    }

    /// What the kernel has at `page`, which no allocation of ours contains.
    fn describe_foreign(&self, page: usize) -> MemoryInfo {
        // Not ours: ask the kernel, and clip to our neighbours (the kernel may have merged a
        // foreign mapping with one of ours).
        let (prev_end, next_base) = self.neighbours(page);
        let top = self.layout.max_address + 1;
        foreign_info(page, self.os.kernel_region(page), prev_end, next_base, top)
    }

    /// Every region from `start` up to the top of user space, in address order.
    pub fn regions(&self, start: usize) -> Regions<'_, O> {
        Regions {
            space: self,
            next: Some(self.layout.page_floor(start)),
        }
    }
}

/// An iterator over the regions of an address space (see [`Space::regions`]).
pub struct Regions<'a, O: Os> {
    space: &'a Space<O>,
    next: Option<usize>,
}

impl<O: Os> Iterator for Regions<'_, O> {
    type Item = MemoryInfo;

    fn next(&mut self) -> Option<MemoryInfo> {
        let at = self.next?;
        let info = self.space.query(at).ok()?;
        let end = info.base_address.checked_add(info.region_size);
        self.next = end.filter(|&e| e > at && e <= self.space.layout.max_address);
        Some(info)
    }
}

/// The one classifier of memory virtmem does not manage: what the kernel has at `page` as
/// VirtualQuery reports it, for foreign mappings of this process and for every mapping of
/// another process (VirtualQueryEx). A mapping is committed with the protection the kernel
/// gives it (a `PROT_NONE` mapping is PAGE_NOACCESS), anonymous memory is MEM_PRIVATE, a file
/// mapping MEM_MAPPED, a mapping of a loaded executable MEM_IMAGE. The region is clipped to
/// `[prev_end, next_base)` (the neighbouring allocations of this process; nothing for another
/// one) and to `top`.
pub(crate) fn foreign_info(
    page: usize,
    region: KernelRegion,
    prev_end: usize,
    next_base: usize,
    top: usize,
) -> MemoryInfo {
    match region {
        KernelRegion::Free { end, .. } => MemoryInfo {
            base_address: page,
            allocation_base: 0,
            allocation_protect: 0,
            region_size: end.min(next_base).min(top) - page,
            state: State::Free,
            protect: PAGE_NOACCESS,
            kind: RegionType::None,
            managed: false,
        },
        KernelRegion::Mapped(m) => {
            let protect = win32_from_host(m.prot);
            MemoryInfo {
                base_address: page,
                allocation_base: m.start.max(prev_end),
                allocation_protect: protect,
                region_size: m.end.min(next_base).min(top) - page,
                state: State::Commit,
                protect,
                kind: match m.backing {
                    Backing::Anonymous => RegionType::Private,
                    Backing::Image => RegionType::Image,
                    Backing::File => RegionType::Mapped,
                },
                managed: false,
            }
        }
    }
}
