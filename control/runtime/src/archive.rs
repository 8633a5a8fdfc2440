//! Tar archives, the engine's format for an image's file system and for files put
//! into containers.
//!
//! Written here rather than with a tar crate because meshlab needs only directories,
//! regular files and symlinks with root ownership, and because writing the 512-byte
//! ustar headers directly lets the 60–200 MB binary travel as its own chunk of the
//! request body, never copied into an archive buffer.

use bytes::Bytes;

/// Size of a tar block: headers are one block, contents are padded to whole blocks.
const BLOCK: usize = 512;

/// Contents at least this large become chunks of their own instead of being copied.
const OWN_CHUNK: usize = 64 * 1024;

/// The largest regular file a ustar header can describe (11 octal digits).
const MAX_SIZE: u64 = 0o77_777_777_777;

/// An archive being written, as a list of chunks to send one after the other.
#[derive(Debug)]
pub(crate) struct Tar {
    chunks: Vec<Bytes>,
    pending: Vec<u8>,
    mtime: u64,
}

/// The entry types meshlab writes.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Dir,
    File(u64),
    Symlink(&'a str),
}

impl Tar {
    /// An empty archive whose entries carry `mtime` (seconds since the epoch).
    pub(crate) fn new(mtime: u64) -> Self {
        Self {
            chunks: Vec::new(),
            pending: Vec::new(),
            mtime,
        }
    }

    /// Adds a directory; `path` is absolute or relative to the archive's root.
    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> Result<(), &'static str> {
        self.header(&format!("{}/", relative(path)?), mode, Kind::Dir)
    }

    /// Adds a regular file with `contents`.
    pub(crate) fn file(
        &mut self,
        path: &str,
        mode: u32,
        contents: Bytes,
    ) -> Result<(), &'static str> {
        let size = u64::try_from(contents.len()).unwrap_or(u64::MAX);
        if size > MAX_SIZE {
            return Err("a file in a tar archive may hold at most 8 GiB");
        }
        self.header(relative(path)?, mode, Kind::File(size))?;
        let padding = contents.len().next_multiple_of(BLOCK) - contents.len();
        if contents.len() >= OWN_CHUNK {
            self.flush();
            self.chunks.push(contents);
        } else {
            self.pending.extend_from_slice(&contents);
        }
        self.pending.resize(self.pending.len() + padding, 0);
        Ok(())
    }

    /// Adds a symbolic link to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> Result<(), &'static str> {
        self.header(relative(path)?, 0o777, Kind::Symlink(target))
    }

    /// Ends the archive (two zero blocks) and returns its chunks.
    pub(crate) fn finish(mut self) -> Vec<Bytes> {
        self.pending.resize(self.pending.len() + 2 * BLOCK, 0);
        self.flush();
        self.chunks
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.chunks
                .push(Bytes::from(std::mem::take(&mut self.pending)));
        }
    }

    fn header(&mut self, path: &str, mode: u32, kind: Kind<'_>) -> Result<(), &'static str> {
        let mut block = [0u8; BLOCK];
        let (prefix, name) = split_path(path)?;
        block[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut block[100..108], u64::from(mode & 0o7777));
        octal(&mut block[108..116], 0); // uid
        octal(&mut block[116..124], 0); // gid
        let (size, typeflag) = match kind {
            Kind::Dir => (0, b'5'),
            Kind::File(size) => (size, b'0'),
            Kind::Symlink(target) => {
                if target.len() > 100 || target.contains('\0') {
                    return Err("a symlink target in a tar archive may have at most 100 bytes");
                }
                block[157..157 + target.len()].copy_from_slice(target.as_bytes());
                (0, b'2')
            }
        };
        octal(&mut block[124..136], size);
        octal(&mut block[136..148], self.mtime);
        block[156] = typeflag;
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[265..269].copy_from_slice(b"root");
        block[297..301].copy_from_slice(b"root");
        block[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        // The checksum is computed with its own field read as eight spaces.
        block[148..156].fill(b' ');
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
        octal(&mut block[148..155], sum);
        self.pending.extend_from_slice(&block);
        Ok(())
    }
}

/// `path` without its leading `/`, checked for what an archive entry may be.
fn relative(path: &str) -> Result<&str, &'static str> {
    let relative = path.trim_start_matches('/').trim_end_matches('/');
    if relative.is_empty() {
        return Err("the path names the root directory");
    }
    if relative.contains('\0') {
        return Err("the path contains a NUL byte");
    }
    if relative
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err("the path must be normalised (no '.', '..' or '//')");
    }
    Ok(relative)
}

/// Splits `path` into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes) fields.
fn split_path(path: &str) -> Result<(&str, &str), &'static str> {
    if path.len() <= 100 {
        return Ok(("", path));
    }
    // A trailing '/' (directories) belongs to the name, so never split there.
    path[..path.len() - 1]
        .match_indices('/')
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && name.len() <= 100)
        .ok_or("the path is too long for a tar archive (at most 255 bytes, 100 after the last '/')")
}

/// Writes `value` as zero-padded octal digits filling `field` but its last byte (NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests;
