//! What the NT layer (`win32::nt`) asks of the engine beyond the Win32 verbs: the whole
//! allocation around an address (MemoryRegionInformation), whether pages are locked
//! (STATUS_WAS_LOCKED), NT-only partial release, the working set (one function behind
//! QueryWorkingSet, QueryWorkingSetEx and NtQueryVirtualMemory's working-set classes), and
//! which file a view maps (MemoryMappedFilenameInformation, NtAreMappedFilesTheSame).

use super::query::{MemoryInfo, RegionType, State};
use super::{AllocKind, Allocation, Space};
use crate::error::{Error, Result};
use crate::os::linux::metaheap::{meta_vec, MetaArc as Arc};
use crate::os::{Os, PresentPage};
use crate::rules::runs::RunTable;
use crate::vocab::consts::PAGE_GUARD;

/// The allocation around an address (MemoryRegionInformation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// The allocation's base.
    pub allocation_base: usize,
    /// Its AllocationProtect.
    pub allocation_protect: u32,
    /// The whole allocation's size (not a run of equal pages: case 84).
    pub size: usize,
    /// Committed bytes: the committed pages of private memory; for a view, its size when
    /// it is copy-on-write (every page may become private) and 0 otherwise (CW3).
    pub commit_size: usize,
    /// MEM_PRIVATE, MEM_MAPPED or MEM_IMAGE.
    pub kind: RegionType,
    /// A VirtualAlloc2 placeholder.
    pub placeholder: bool,
    /// A view of a section backed by a file (else of the paging file); false for private
    /// memory.
    pub file_backed: bool,
}

/// One page of the working set, or a page that is not in it (`valid` false).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WorkingSetPage {
    /// The page's address.
    pub address: usize,
    /// The page is present in memory (in the working set).
    pub valid: bool,
    /// Its protection (the Win32 value, modifiers included); 0 when not valid.
    pub protect: u32,
    /// It can be shared (a page of a file or of shared memory).
    pub shared: bool,
    /// How many mappings share it (capped at 7, Windows' field width); 0 for private pages.
    pub share_count: u32,
    /// Locked by VirtualLock.
    pub locked: bool,
    /// Part of a large (huge) page.
    pub large_page: bool,
    /// Hardware-poisoned.
    pub bad: bool,
    /// The NUMA node holding it.
    pub node: u32,
}

/// What NtAreMappedFilesTheSame finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameFile {
    /// The same view, or an image and a view of its file.
    Same,
    /// Views, but not of the same file (in the way Windows compares them).
    NotSame,
    /// One address is private memory (not a view).
    Private,
    /// One address is free.
    Free,
}

/// What MemoryMappedFilenameInformation finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedName {
    /// The path of the mapped file.
    Path(String),
    /// A view of a section without a file (the paging file), or a file the kernel does not
    /// name.
    NoFile,
    /// Free or private memory.
    NotMapped,
}

impl<O: Os> Space<O> {
    /// MemoryRegionInformation: the allocation containing `addr`; `None` for free memory.
    pub fn region_info(&self, addr: usize) -> Result<Option<RegionInfo>> {
        let info = self.query(addr)?;
        if info.state == State::Free {
            return Ok(None);
        }
        if let Some(a) = self.find(info.base_address) {
            let p = self.page();
            let (commit_size, file_backed) = match (&a.kind, &a.view) {
                (AllocKind::View, Some(v)) => (
                    if crate::rules::sections::is_writecopy(a.alloc_protect) {
                        a.size
                    } else {
                        0
                    },
                    v.section.file_backed,
                ),
                _ => (
                    a.read(|t| {
                        t.runs()
                            .filter(|r| r.state.committed)
                            .map(|r| (r.end - r.start) * p)
                            .sum()
                    }),
                    false,
                ),
            };
            return Ok(Some(RegionInfo {
                allocation_base: a.base,
                allocation_protect: a.alloc_protect,
                size: a.size,
                commit_size,
                kind: info.kind,
                placeholder: a.kind == AllocKind::Placeholder,
                file_backed,
            }));
        }
        // Memory virtmem did not allocate: the kernel mapping is the allocation.
        let size = info.base_address - info.allocation_base + info.region_size;
        Ok(Some(RegionInfo {
            allocation_base: info.allocation_base,
            allocation_protect: info.allocation_protect,
            size,
            commit_size: size,
            kind: info.kind,
            placeholder: false,
            file_backed: info.kind != RegionType::Private,
        }))
    }

    /// Whether every page of `[start, end)` (page aligned) is locked (VirtualLock).
    pub fn all_locked(&self, start: usize, end: usize) -> bool {
        let p = self.page();
        let foreign = |s: usize, e: usize| {
            s >= e
                || self
                    .foreign_locks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(s, e)
        };
        let mut at = start;
        for a in self.overlapping(start, end).iter() {
            if !foreign(at, a.base.min(end)) {
                return false;
            }
            let (s, e) = (at.max(a.base), end.min(a.end()));
            let (ps, pe) = ((s - a.base) / p, (e - a.base).div_ceil(p));
            if !a.read(|t| t.runs_in(ps, pe).all(|r| r.state.locked)) {
                return false;
            }
            at = e;
        }
        foreign(at, end)
    }

    /// NtFreeVirtualMemory(MEM_RELEASE) of the pages `[start, end)` of one allocation, which
    /// need not be all of it (cases 60, 61): the pages are unmapped, what is left on either
    /// side becomes an allocation of its own (with its own AllocationBase, case 61). The whole
    /// allocation is a plain release. Only ordinary private memory without write watch can be
    /// split (else ERROR_NOT_SUPPORTED); a range leaving its allocation is 87
    /// (STATUS_UNABLE_TO_FREE_VM, cases 67, 68), free memory 487.
    pub fn release_part(&self, start: usize, end: usize) -> Result<()> {
        let missing = Error::InvalidAddress("the first page is free");
        let whole = self.with_allocation(start, missing, |a| {
            if end > a.end() {
                return Err(Error::InvalidParameter("the range leaves its allocation"));
            }
            if start == a.base && end == a.end() {
                return Ok(true);
            }
            if a.kind != AllocKind::Normal || a.watch.is_some() {
                return Err(Error::NotSupported(
                    "releasing part of a view, placeholder, large-page, AWE or write-watch \
                     allocation",
                ));
            }
            self.split_release(a, start, end).map(|()| false)
        })?;
        if whole {
            self.release(start)?;
        }
        Ok(())
    }

    /// The pages `[s, e)` (indices into `a`) of `a`'s runs, as a table of their own.
    fn slice_runs(a: &Allocation, s: usize, e: usize) -> RunTable {
        a.read(|t| {
            let first = t.run_at(s).state;
            t.runs_in(s, e)
                .fold(RunTable::new(e - s, first), |acc, r| {
                    acc.with(r.start.max(s) - s, r.end.min(e) - s, |_| r.state)
                })
        })
    }

    /// A new allocation for the pages `[s, e)` of `a` (its protections, kind and modifiers).
    fn piece_of(&self, a: &Allocation, s: usize, e: usize) -> Allocation {
        let p = self.page();
        let table = Self::slice_runs(a, s, e);
        let first = table.run_at(0).state;
        let piece = Allocation::new(
            a.base + s * p,
            (e - s) * p,
            p,
            a.alloc_protect,
            a.modifiers,
            self.new_id(),
            None,
            first,
        )
        .of_kind(a.kind, a.from_placeholder);
        let guard = table.runs().any(|r| r.state.protect & PAGE_GUARD != 0);
        piece.publish(table);
        if guard || a.fault_driven() {
            piece.set_fault_driven();
        }
        piece
    }

    /// Splits `a` (its operation lock held) around `[start, end)` and unmaps that range.
    fn split_release(&self, a: &Arc<Allocation>, start: usize, end: usize) -> Result<()> {
        let p = self.page();
        let (s, e) = ((start - a.base) / p, (end - a.base) / p);
        let mut parts = meta_vec();
        if s > 0 {
            parts.push(self.piece_of(a, 0, s));
        }
        if e < a.size / p {
            parts.push(self.piece_of(a, e, a.size / p));
        }
        let listed = a.fault_driven() && self.os.real_memory();
        // The old allocation stops owning its pages (under its handler lock, which
        // `with_allocation` holds) and leaves the index before the kernel range changes.
        a.set_live(false);
        if listed {
            crate::engine::fault::remove(a.base);
        }
        let new = self.swap_in(std::slice::from_ref(a), parts);
        if let Err(err) = self.os.unmap(start, end - start) {
            // Nothing changed in the kernel: put the whole allocation back.
            let back = self.piece_of(a, 0, a.size / p);
            let back = self.swap_in(&new, [back]);
            if back[0].fault_driven() && self.os.real_memory() {
                crate::engine::fault::add(&back[0]);
            }
            return Err(Error::from_os(err));
        }
        for n in new.iter() {
            if n.fault_driven() && self.os.real_memory() {
                crate::engine::fault::add(n);
            }
        }
        Ok(())
    }

    /// The working set within `[start, end)`: calls `f` for every page present in memory, in
    /// address order, with its attributes. Reads page tables and virtmem's records only: no
    /// page is touched. The one function behind QueryWorkingSet, QueryWorkingSetEx and
    /// NtQueryVirtualMemory(MemoryWorkingSetInformation / MemoryWorkingSetExInformation).
    pub fn working_set(
        &self,
        start: usize,
        end: usize,
        f: &mut dyn FnMut(WorkingSetPage),
    ) -> Result<()> {
        let p = self.page();
        let top = self.layout.max_address + 1;
        let end = end.min(top);
        let mut at = self.layout.page_floor(start);
        while at < end {
            let info = self.query(at)?;
            let region_end = info
                .base_address
                .saturating_add(info.region_size)
                .min(end)
                .max(at + p);
            if info.state == State::Commit {
                self.present_in_region(&info, at, region_end, f)?;
            }
            at = region_end;
        }
        Ok(())
    }

    /// The present pages of `[s, e)`, all inside the region `info` describes.
    fn present_in_region(
        &self,
        info: &MemoryInfo,
        s: usize,
        e: usize,
        f: &mut dyn FnMut(WorkingSetPage),
    ) -> Result<()> {
        let p = self.page();
        let ours = if info.managed { self.find(s) } else { None };
        let large = ours.as_ref().is_some_and(|a| a.kind == AllocKind::LargePages);
        let mut emit = |page: usize, pp: PresentPage| {
            let locked = match &ours {
                Some(a) => a.read(|t| t.run_at((page - a.base) / p).state.locked),
                None => self
                    .foreign_locks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(page, page + p),
            };
            f(WorkingSetPage {
                address: page,
                valid: true,
                protect: info.protect,
                shared: pp.shared,
                share_count: if pp.shared { pp.map_count.clamp(1, 7) } else { 0 },
                locked,
                large_page: large || pp.huge,
                bad: pp.bad,
                node: pp.node,
            })
        };
        self.os
            .present_pages(s, e - s, &mut emit)
            .map_err(Error::from_os)
    }

    /// The working-set attributes of the page containing `addr` (QueryWorkingSetEx): its
    /// entry when it is present, else an entry with `valid` false (and `shared` when the page
    /// belongs to a view or shared mapping).
    pub fn working_set_page(&self, addr: usize) -> Result<WorkingSetPage> {
        let page = self.layout.page_floor(addr);
        let mut found = None;
        if page <= self.layout.max_address {
            self.working_set(page, page + self.page(), &mut |w| found = Some(w))?;
        }
        Ok(found.unwrap_or_else(|| {
            let shared = self.query(page).is_ok_and(|i| {
                i.state == State::Commit && i.kind != RegionType::Private
            });
            WorkingSetPage {
                address: page,
                shared,
                ..WorkingSetPage::default()
            }
        }))
    }

    /// NtAreMappedFilesTheSame (k32 test_NtAreMappedFilesTheSame, run on Windows): free
    /// memory → [`SameFile::Free`]; private memory → [`SameFile::Private`]; two addresses of
    /// one view (or one kernel file mapping) → same; an image and any mapping of the image's
    /// file → same; anything else — two views of one file included — not the same.
    pub fn same_mapped_file(&self, first: usize, second: usize) -> SameFile {
        let (Ok(a), Ok(b)) = (self.query(first), self.query(second)) else {
            return SameFile::Free;
        };
        if a.state == State::Free || b.state == State::Free {
            return SameFile::Free;
        }
        if a.kind == RegionType::Private || b.kind == RegionType::Private {
            return SameFile::Private;
        }
        if a.allocation_base == b.allocation_base && a.managed == b.managed {
            return SameFile::Same;
        }
        if a.kind == RegionType::Image {
            if let (Some(fa), Some(fb)) = (self.os.mapped_file(first), self.os.mapped_file(second))
            {
                if fa.id == fb.id {
                    return SameFile::Same;
                }
            }
        }
        SameFile::NotSame
    }

    /// MemoryMappedFilenameInformation: the path of the file mapped at `addr`.
    pub fn mapped_file_name(&self, addr: usize) -> Result<MappedName> {
        let info = self.query(addr)?;
        if info.state == State::Free || info.kind == RegionType::Private {
            return Ok(MappedName::NotMapped);
        }
        if info.managed {
            let file_backed = self
                .find(info.base_address)
                .is_some_and(|a| a.view.as_ref().is_some_and(|v| v.section.file_backed));
            if !file_backed {
                return Ok(MappedName::NoFile);
            }
        }
        Ok(match self.os.mapped_file(info.base_address) {
            Some(m) => MappedName::Path(m.path),
            None => MappedName::NoFile,
        })
    }

    /// The size of the section a handle refers to (`None`: not a section handle).
    pub fn section_size(&self, h: usize) -> Option<u64> {
        self.handles()
            .with(h, |e| e.section().map(|s| s.size).ok())
            .ok()
            .flatten()
    }
}
