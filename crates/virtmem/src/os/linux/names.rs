//! Named section objects shared between processes (placeholder: replaced by the real module).

use crate::error::{Error, Result};

/// Which object namespace a name lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Namespace {
    /// `Local\` (the default).
    Local,
    /// `Global\`.
    Global,
}

/// A parsed section name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ObjectName {
    /// The namespace.
    pub ns: Namespace,
    /// The name after the prefix.
    pub name: String,
}

fn parse(s: String) -> Result<Option<ObjectName>> {
    if s.is_empty() {
        return Ok(None);
    }
    let (ns, rest) = if let Some(r) = s.strip_prefix("Global\\") {
        (Namespace::Global, r)
    } else if let Some(r) = s.strip_prefix("Local\\") {
        (Namespace::Local, r)
    } else {
        (Namespace::Local, s.as_str())
    };
    if rest.contains('\\') {
        return Err(Error::PathNotFound("a '\\' in an object name"));
    }
    Ok(Some(ObjectName {
        ns,
        name: rest.to_string(),
    }))
}

/// CF8 for a W name.
pub(crate) fn parse_name_w(name: &[u16]) -> Result<Option<ObjectName>> {
    parse(String::from_utf16_lossy(name))
}

/// CF8 for an A name.
pub(crate) fn parse_name_a(name: &[u8]) -> Result<Option<ObjectName>> {
    if name.len() > 259 {
        return Err(Error::FilenameTooLong);
    }
    parse(String::from_utf8_lossy(name).into_owned())
}

/// What the creator records for openers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedHeader {
    /// Size in bytes.
    pub size: u64,
    /// Page protection.
    pub protect: u32,
    /// SEC_* attributes.
    pub attributes: u32,
    /// The file of a file-backed section.
    pub file: Option<FileIdentity>,
}

/// A file's path and identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    /// Absolute path.
    pub path: std::path::PathBuf,
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
}

/// One process's hold on a named object.
pub(crate) struct NamedObject {
    header: SharedHeader,
}

impl NamedObject {
    /// Creates or opens.
    pub(crate) fn create_or_open(
        _name: &ObjectName,
        _header: &SharedHeader,
    ) -> Result<(NamedObject, bool)> {
        Err(Error::NotSupported("named sections across processes"))
    }

    /// Opens.
    pub(crate) fn open(_name: &ObjectName) -> Result<NamedObject> {
        Err(Error::FileNotFound("no section of that name"))
    }

    /// The header.
    pub(crate) fn header(&self) -> &SharedHeader {
        &self.header
    }

    /// A descriptor of the data.
    pub(crate) fn data_fd(&self) -> Result<std::os::fd::OwnedFd> {
        Err(Error::NotSupported("named sections across processes"))
    }

    /// Where the data starts.
    pub(crate) fn data_offset(&self) -> u64 {
        4096
    }
}

/// Removes stale names.
pub(crate) fn sweep_stale() {}
