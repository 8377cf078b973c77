//! The engine's operations as a Rust API over one address space, with typed errors: the
//! simulated [`SimSpace`](crate::sim::SimSpace), whose methods are safe because it maps
//! nothing, and [`NativeSpace`](crate::NativeSpace), this process's real address space, whose
//! state-changing methods are `unsafe`. One list of methods serves both, so they cannot drift.

/// The `# Safety` section of a forwarded `unsafe` method.
macro_rules! safety_doc {
    (unsafe) => {
        "\n\n# Safety\n\nThe range (or the frames' windows) must hold no memory that a live Rust \
         reference, or code that relies on it staying as it is, can see: see \
         [`NativeSpace`](crate::NativeSpace)."
    };
}
pub(crate) use safety_doc;

/// The `# Safety` section of the forwarded `unsafe` view methods.
macro_rules! view_safety_doc {
    (unsafe, map) => {
        "\n\n# Safety\n\nA view placed anywhere (`base` `None`) or at a free fixed address \
         maps only free address space; but with `replace_placeholder` the placeholder at `base` \
         is replaced, so it must be the caller's own, and no code may rely on it staying a \
         placeholder: see [`NativeSpace`](crate::NativeSpace)."
    };
    (unsafe, unmap) => {
        "\n\n# Safety\n\nThe whole view containing `addr` is unmapped (or becomes a placeholder \
         again): it must be a view the caller mapped and no live Rust reference, or code that \
         relies on it staying mapped, may see its memory: see \
         [`NativeSpace`](crate::NativeSpace)."
    };
}
pub(crate) use view_safety_doc;

/// A section name for the engine: `None` (unnamed) or the name, parsed as an A name (UTF-8
/// bytes, `Local\` / `Global\` prefixes, CF8).
pub(crate) fn section_name(
    name: Option<&str>,
) -> crate::Result<Option<crate::os::linux::names::ObjectName>> {
    match name {
        None => Ok(None),
        Some(n) => crate::os::linux::names::parse_name_a(n.as_bytes()).map_err(Into::into),
    }
}

/// Defines forwarding methods on a wrapper whose field `$f` is a `Space`. `$q` is nothing for
/// safe methods or `unsafe` for methods with the contract documented on the wrapper type.
macro_rules! forward_ops {
    ($f:ident, $($q:ident)?) => {
        /// VirtualAlloc (`from_app`: VirtualAllocFromApp) with raw Win32 arguments; the base of
        /// the reserved or committed range.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn virtual_alloc(
            &self,
            addr: usize,
            size: usize,
            alloc_type: u32,
            protect: u32,
            from_app: bool,
        ) -> $crate::Result<usize> {
            self.$f
                .virtual_alloc(addr, size, alloc_type, protect, $crate::rules::requests::AllocFlavor { from_app })
        }

        /// VirtualAlloc2 (`from_app`: VirtualAlloc2FromApp) with decoded extended parameters.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn virtual_alloc2(
            &self,
            addr: usize,
            size: usize,
            alloc_type: u32,
            protect: u32,
            params: &[$crate::ExtendedParameter],
            from_app: bool,
        ) -> $crate::Result<usize> {
            self.$f.virtual_alloc2(
                addr,
                size,
                alloc_type,
                protect,
                params,
                $crate::rules::requests::AllocFlavor { from_app },
            )
        }

        /// VirtualFree with raw Win32 arguments.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn virtual_free(&self, addr: usize, size: usize, free_type: u32) -> $crate::Result<()> {
            self.$f.virtual_free(addr, size, free_type)
        }

        /// VirtualProtect: the first page's old protection.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn virtual_protect(&self, addr: usize, size: usize, protect: u32) -> $crate::Result<u32> {
            self.$f.virtual_protect(addr, size, protect)
        }

        /// VirtualLock.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn virtual_lock(&self, addr: usize, size: usize) -> $crate::Result<()> {
            self.$f.virtual_lock(addr, size)
        }

        /// VirtualUnlock.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn virtual_unlock(&self, addr: usize, size: usize) -> $crate::Result<()> {
            self.$f.virtual_unlock(addr, size)
        }

        /// GetWriteWatch: the written pages of the range (at most `max`), optionally reset.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn get_write_watch(
            &self,
            base: usize,
            size: usize,
            reset: bool,
            max: usize,
        ) -> $crate::Result<Vec<usize>> {
            self.$f.get_write_watch(base, size, reset, max)
        }

        /// ResetWriteWatch.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn reset_write_watch(&self, base: usize, size: usize) -> $crate::Result<()> {
            self.$f.reset_write_watch(base, size)
        }

        /// AllocateUserPhysicalPages: the frame numbers of `n` zero-filled pages.
        pub fn allocate_physical_pages(&self, n: usize) -> $crate::Result<Vec<usize>> {
            self.$f.allocate_physical_pages(n)
        }

        /// MapUserPhysicalPages: maps `frames` (or unmaps `n` pages with `None`) at `addr`.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn map_physical_pages(
            &self,
            addr: usize,
            n: usize,
            frames: Option<&[usize]>,
        ) -> $crate::Result<()> {
            self.$f.map_physical_pages(addr, n, frames)
        }

        /// MapUserPhysicalPagesScatter.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn map_physical_pages_scatter(
            &self,
            addrs: &[usize],
            frames: Option<&[usize]>,
        ) -> $crate::Result<()> {
            self.$f.map_physical_pages_scatter(addrs, frames)
        }

        /// FreeUserPhysicalPages: how many were freed, and the error that stopped it.
        $(#[doc = $crate::spaces::safety_doc!($q)])?
        pub $($q)? fn free_physical_pages(&self, frames: &[usize]) -> (usize, $crate::Result<()>) {
            self.$f.free_physical_pages(frames)
        }

        /// VirtualQuery: the region containing `addr`.
        pub fn query(&self, addr: usize) -> $crate::Result<$crate::MemoryInfo> {
            self.$f.query(addr)
        }

        /// Every region from `start` up to the top of the address space.
        pub fn regions(&self, start: usize) -> impl Iterator<Item = $crate::MemoryInfo> + '_ {
            self.$f.regions(start)
        }

        /// Page size, granularity and limits.
        pub fn layout(&self) -> $crate::Layout {
            *self.$f.layout()
        }

        /// Every allocation's `(base, size, id)`, ascending, at one instant.
        pub fn allocations(&self) -> Vec<(usize, usize, u64)> {
            self.$f.allocations()
        }

        /// The number of page runs of the allocation containing `addr` (its metadata size).
        pub fn run_count(&self, addr: usize) -> Option<usize> {
            self.$f.run_count(addr)
        }

        /// MapViewOfFile* with a typed request (the desired access already turned into the
        /// view's protection, e.g. by [`view_protection`](crate::sim::view_protection)):
        /// the view's base.
        $(#[doc = $crate::spaces::view_safety_doc!($q, map)])?
        pub $($q)? fn map_view(&self, req: $crate::MapRequest) -> $crate::Result<usize> {
            self.$f.map_view(req)
        }

        /// UnmapViewOfFile (`preserve`: UnmapViewOfFileEx with MEM_PRESERVE_PLACEHOLDER):
        /// unmaps the whole view containing `addr`.
        $(#[doc = $crate::spaces::view_safety_doc!($q, unmap)])?
        pub $($q)? fn unmap_view(&self, addr: usize, preserve: bool) -> $crate::Result<()> {
            self.$f.unmap_view(addr, preserve)
        }

        /// FlushViewOfFile: writes the modified pages of a file view's range to its file
        /// (size 0: to the view's end); succeeds and does nothing on a pagefile view.
        pub fn flush_view(&self, addr: usize, size: usize) -> $crate::Result<()> {
            self.$f.flush_view(addr, size)
        }

        /// What the address-space map calls the view containing `addr`: its file's path, or
        /// the name its section was created or opened with (`Local\\…`); `None` for other
        /// memory and for views of unnamed pagefile-backed sections.
        pub fn view_label(&self, addr: usize) -> Option<String> {
            self.$f.view_label(addr)
        }
    };
}
pub(crate) use forward_ops;
