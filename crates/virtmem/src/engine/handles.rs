//! The handle table: kernel32-style handles for sections, files and processes, one table per space
//! (`sections.md` O5). Handle values are multiples of 4, never 0 and never -1 (the current
//! process's pseudo-handle); a closed value may be given out again, as on Windows.
//!
//! Section calls are not on a `malloc` path, so the table lives on the process heap. `fork`
//! takes its lock in the prepare handler (`engine/fork.rs`).

use super::section::Section;
use crate::error::{Error, Result};
use crate::os::linux::files::HostFile;
use crate::os::linux::process::HostProcess;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a handle refers to.
#[derive(Clone)]
pub(crate) enum Object {
    /// A section (file mapping object).
    Section(Arc<Section>),
    /// An open file.
    File(Arc<HostFile>),
    /// A memory resource notification (CreateMemoryResourceNotification): the condition it
    /// watches; its state is read from the kernel when queried.
    MemoryNotification(super::process_status::MemoryCondition),
    // ---- Other processes ----
    /// A process (OpenProcess): held by its pidfd, so a recycled pid is never taken for it.
    Process(Arc<HostProcess>),
}

/// One open handle: its object and its access mask.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The object.
    pub object: Object,
    /// The access mask the handle was opened (or duplicated) with.
    pub access: u32,
}

/// The table's slots (free list of closed values).
#[derive(Default)]
pub(crate) struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
}

/// The handle table of one space.
#[derive(Default)]
pub(crate) struct Handles {
    slots: Mutex<Slots>,
}

fn slot_of(h: usize) -> Option<usize> {
    (h != 0 && h % 4 == 0).then(|| h / 4 - 1)
}

impl Handles {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a handle to `entry`'s object; returns its value.
    pub(crate) fn insert(&self, entry: Entry) -> usize {
        let mut s = self.lock();
        let i = match s.free.pop() {
            Some(i) => {
                s.entries[i] = Some(entry);
                i
            }
            None => {
                s.entries.push(Some(entry));
                s.entries.len() - 1
            }
        };
        (i + 1) * 4
    }

    /// The entry of an open handle, or ERROR_INVALID_HANDLE.
    pub(crate) fn get(&self, h: usize) -> Result<Entry> {
        let s = self.lock();
        slot_of(h)
            .and_then(|i| s.entries.get(i))
            .and_then(|e| e.clone())
            .ok_or(Error::InvalidHandle)
    }

    /// Runs `f` on the entry of an open handle while the table is locked (so the handle
    /// cannot be closed meanwhile), or returns ERROR_INVALID_HANDLE.
    pub(crate) fn with<R>(&self, h: usize, f: impl FnOnce(&Entry) -> R) -> Result<R> {
        let s = self.lock();
        slot_of(h)
            .and_then(|i| s.entries.get(i))
            .and_then(Option::as_ref)
            .map(f)
            .ok_or(Error::InvalidHandle)
    }

    /// DUPLICATE_CLOSE_SOURCE: moves the entry of `h` (changed by `f`) to a new handle value
    /// and closes `h`, atomically; returns the new value.
    pub(crate) fn move_to_new(&self, h: usize, f: impl FnOnce(&mut Entry)) -> Result<usize> {
        let mut s = self.lock();
        let i = slot_of(h)
            .filter(|&i| s.entries.get(i).is_some_and(Option::is_some))
            .ok_or(Error::InvalidHandle)?;
        let mut e = s.entries[i].take().expect("checked above");
        f(&mut e);
        let new = match s.free.pop() {
            Some(j) => {
                s.entries[j] = Some(e);
                j
            }
            None => {
                s.entries.push(Some(e));
                s.entries.len() - 1
            }
        };
        s.free.push(i);
        Ok((new + 1) * 4)
    }

    /// Closes an open handle and returns what it held, or ERROR_INVALID_HANDLE.
    pub(crate) fn remove(&self, h: usize) -> Result<Entry> {
        let mut s = self.lock();
        let i = slot_of(h).ok_or(Error::InvalidHandle)?;
        let e = s
            .entries
            .get_mut(i)
            .and_then(Option::take)
            .ok_or(Error::InvalidHandle)?;
        s.free.push(i);
        Ok(e)
    }

    /// Fork: holds the table's lock until the guard is dropped (the prepare handler).
    pub(crate) fn hold(&self) -> MutexGuard<'_, Slots> {
        self.lock()
    }
}

/// A file object of an entry, or ERROR_INVALID_HANDLE for another kind.
impl Entry {
    /// The file this handle refers to, or ERROR_INVALID_HANDLE.
    pub(crate) fn file(&self) -> Result<&Arc<HostFile>> {
        match &self.object {
            Object::File(f) => Ok(f),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// The condition of a memory resource notification handle, or ERROR_INVALID_HANDLE.
    pub(crate) fn memory_notification(&self) -> Result<super::process_status::MemoryCondition> {
        match &self.object {
            Object::MemoryNotification(c) => Ok(*c),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// The process this handle refers to, or ERROR_INVALID_HANDLE.
    pub(crate) fn process(&self) -> Result<&Arc<HostProcess>> {
        match &self.object {
            Object::Process(p) => Ok(p),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// The section this handle refers to, or ERROR_INVALID_HANDLE.
    pub(crate) fn section(&self) -> Result<&Arc<Section>> {
        match &self.object {
            Object::Section(s) => Ok(s),
            _ => Err(Error::InvalidHandle),
        }
    }
}
