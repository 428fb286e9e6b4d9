//! Gives back the page-table entries of LMDB's read-only map: the pages stay
//! in the page cache, the process stops holding them. It must never touch the
//! file's contents or a transaction's view of them.
//!
//! Why: LMDB reads through `mmap`, and the kernel maps more than it reads.
//! On a read fault it maps the neighbouring pages already in the page cache
//! (fault-around, 64 KiB) and, on file systems with large folios (ext4 on
//! recent kernels), the whole folio, up to the size of the `pwrite` that made
//! it (LMDB writes up to 256 KiB at once). `MDB_NORDAHEAD` (`MADV_RANDOM`)
//! stops neither. Measured on the project host (kernel 6.18, ext4): touching
//! one page in every 256 KiB of a 64 MiB file written in 256 KiB runs maps
//! all 64 MiB, and one in every 64 KiB of a file written a page at a time
//! maps all of it too. So the map's RSS grows to the whole file however
//! little the node reads; on x86 those prefaulted entries are marked
//! accessed, so reclaim takes never-read pages for used ones, and the OOM
//! killer counts them against the node.
//!
//! Zapping the entries (`MADV_DONTNEED`) is safe on this map: it is shared,
//! read-only and file-backed (the store never sets `MDB_WRITEMAP`; writes go
//! through `pwrite`), so a later read refaults the same page from the page
//! cache (a minor fault, no I/O) and no reader can see different bytes.
//!
//! LMDB does not say where its map is (`mdb_env_info` reports an address
//! only for `MDB_FIXEDMAP`), so the map is found in `/proc/self/maps` by the
//! data file's device and inode.

use std::io;
use std::path::Path;

/// Unmaps every resident page of `data_file`'s mappings from this process.
/// The caller holds off a map resize (the map moves in one).
#[cfg(target_os = "linux")]
pub(super) fn release(data_file: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(data_file)?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let device = format!("{major:02x}:{minor:02x}");
    let inode = meta.ino().to_string();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    for line in maps.lines() {
        // address perms offset device inode [path]
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, perms, _, dev, ino, ..] = fields[..] else {
            continue;
        };
        // Only a shared read-only mapping: what LMDB maps without MDB_WRITEMAP.
        if dev != device || ino != inode || perms != "r--s" {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let parse = |hex| usize::from_str_radix(hex, 16).map_err(io::Error::other);
        let (start, end) = (parse(start)?, parse(end)?);
        // SAFETY: the range is LMDB's own shared, read-only mapping of the
        // data file (module doc); MADV_DONTNEED drops page-table entries
        // only, and every later access refaults the same file page.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Elsewhere `MADV_DONTNEED` may discard or ignore, and there is no
/// `/proc`: keep the map as it is.
#[cfg(not(target_os = "linux"))]
pub(super) fn release(_data_file: &Path) -> io::Result<()> {
    Ok(())
}
