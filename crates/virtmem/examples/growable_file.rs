//! A file that grows as records are appended to it, read back through its mapping — the
//! reserve / commit split that Windows offers for memory (VirtualAlloc) applied to a file,
//! through virtmem's safe face.
//!
//! 1. A growable shared buffer: a SEC_RESERVE section, 1 GiB of address space reserved, pages
//!    committed as the buffer grows; a second view of the same section sees it grow.
//! 2. A growable file: a log file mapped at a fixed address with 1 GiB reserved, extended in
//!    steps as records are appended, read back through the mapping, and truncated to its
//!    contents when closed.
//!
//! Run with `cargo run -p virtmem --example growable_file`.

use virtmem::{Error, GrowableFile, GrowableView, ViewAccess};

fn growable_buffer() -> virtmem::Result<()> {
    let writer = GrowableView::new(1 << 30)?;
    let reader = GrowableView::from_section(writer.section(), ViewAccess::Read)?;
    let mut at = 0;
    for i in 0..1000u32 {
        let rec = format!("buffer record {i}\n");
        writer.commit(at + rec.len())?; // commits whole pages, only when needed
        writer.write(at, rec.as_bytes())?;
        at += rec.len();
    }
    // The commit belongs to the section: the reader's view has grown too.
    assert_eq!(reader.committed_len(), writer.committed_len());
    let mut last = vec![0; "buffer record 999\n".len()];
    reader.read(at - last.len(), &mut last)?;
    assert_eq!(last, b"buffer record 999\n");
    // Past the committed part there is nothing to read.
    assert!(matches!(
        reader.read(reader.committed_len(), &mut [0]),
        Err(Error::NoAccess(_))
    ));
    println!(
        "growable buffer: {at} bytes written, {} committed of {} reserved",
        writer.committed_len(),
        writer.capacity()
    );
    Ok(())
}

fn growable_file(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut log = GrowableFile::open(&file, 1 << 30)?;
    let base = log.as_ptr();
    let mut offsets = Vec::new();
    for i in 0..50_000u32 {
        offsets.push(log.append(format!("record {i}\n").as_bytes())?);
    }
    assert_eq!(log.as_ptr(), base, "the mapping never moves");
    // Read some records back through the mapping.
    for i in [0usize, 1, 4_999, 49_999] {
        let want = format!("record {i}\n");
        let mut got = vec![0; want.len()];
        log.read(offsets[i], &mut got)?;
        assert_eq!(got, want.as_bytes());
    }
    log.flush()?;
    println!(
        "growable file: {} bytes in {} views, {} mapped, {} reserved",
        log.len(),
        log.views(),
        log.capacity(),
        log.max_len()
    );
    let len = log.len();
    log.close()?;
    // Closed: the file holds exactly the records.
    let contents = std::fs::read(path)?;
    assert_eq!(contents.len(), len);
    assert!(contents.starts_with(b"record 0\nrecord 1\n"));
    assert!(contents.ends_with(b"record 49999\n"));
    println!(
        "growable file: {} has {} bytes",
        path.display(),
        contents.len()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    growable_buffer()?;
    let path = std::env::temp_dir().join(format!("virtmem-growable-{}.log", std::process::id()));
    let r = growable_file(&path);
    let _ = std::fs::remove_file(&path);
    match r {
        Err(e) if matches!(e.downcast_ref::<Error>(), Some(Error::NotSupported(_))) => {
            println!("growable file: this build has no file-backed sections ({e})");
            Ok(())
        }
        r => r,
    }
}
