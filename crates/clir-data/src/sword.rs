//! Reader (and a small writer, for tests and tools) of SWORD compressed lexicon modules
//! (`ModDrv=zLD`), the format of Nave's Topical Bible in `sword-dict-naves`.
//!
//! A module `STEM` is four files, all integers 32-bit little-endian:
//! - `STEM.idx`: one 8-byte record per entry, `(offset, size)` into `STEM.dat`, sorted by key.
//! - `STEM.dat`: per entry the key, `\r\n`, then `(block, index)`: which compressed block holds
//!   the entry text and its position inside the block. Records are separated by `\r\n` (not
//!   counted in `size`).
//! - `STEM.zdx`: one 8-byte record per block, `(offset, size)` into `STEM.zdt`.
//! - `STEM.zdt`: zlib streams. A decompressed block starts with a count `n`, then `n` pairs
//!   `(offset, size)` relative to the block start, then the entry texts (NUL-terminated; the
//!   terminator is counted in `size`).
//!
//! Every offset and size is bounds-checked: corrupt modules give an error naming the file and
//! the entry or block, never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Largest decompressed block accepted (guards against corrupt sizes).
const MAX_BLOCK: u64 = 64 << 20;

/// One lexicon entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexEntry {
    /// The key (topic name).
    pub key: String,
    /// The entry text (markup as stored, without the trailing NUL).
    pub text: String,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn pair_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    Some((
        u32_at(b, at)? as usize,
        u32_at(b, at.checked_add(4)?)? as usize,
    ))
}

fn slice(b: &[u8], off: usize, size: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(size)?)
}

/// Paths of the four files of module `stem` in `dir`.
pub fn module_files(dir: &Path, stem: &str) -> [PathBuf; 4] {
    ["idx", "dat", "zdx", "zdt"].map(|e| dir.join(format!("{stem}.{e}")))
}

/// Reads every entry of the zLD module `dir/stem.*`, in index order.
pub fn read_zld(dir: &Path, stem: &str) -> Result<Vec<LexEntry>> {
    let files = module_files(dir, stem);
    let read = |p: &PathBuf| fs::read(p).map_err(|e| DataError::io(p, e));
    let (idx, dat, zdx, zdt) = (
        read(&files[0])?,
        read(&files[1])?,
        read(&files[2])?,
        read(&files[3])?,
    );
    let [idx_p, dat_p, zdx_p, zdt_p] = &files;
    parse_zld([&idx, &dat, &zdx, &zdt], [idx_p, dat_p, zdx_p, zdt_p])
}

/// Parses a zLD module from its four files' bytes; `paths` name them in errors.
pub fn parse_zld(bytes: [&[u8]; 4], paths: [&Path; 4]) -> Result<Vec<LexEntry>> {
    let [idx, dat, zdx, zdt] = bytes;
    let [idx_p, dat_p, zdx_p, zdt_p] = paths;
    if idx.len() % 8 != 0 {
        return Err(DataError::invalid(
            idx_p,
            format!("size {} is not a multiple of 8", idx.len()),
        ));
    }
    if zdx.len() % 8 != 0 {
        return Err(DataError::invalid(
            zdx_p,
            format!("size {} is not a multiple of 8", zdx.len()),
        ));
    }
    let n_blocks = zdx.len() / 8;
    let mut cache: Option<(usize, Vec<u8>)> = None;
    let mut out = Vec::with_capacity(idx.len() / 8);
    for i in 0..idx.len() / 8 {
        let entry = i + 1;
        let (off, size) = pair_at(idx, i * 8).expect("in bounds");
        let rec = slice(dat, off, size).ok_or_else(|| {
            DataError::invalid(
                dat_p,
                format!(
                    "entry {entry}: record {off}+{size} is past the end ({} bytes)",
                    dat.len()
                ),
            )
        })?;
        let Some(nl) = rec.windows(2).position(|w| w == b"\r\n") else {
            return Err(DataError::invalid(
                dat_p,
                format!("entry {entry}: no \\r\\n after the key"),
            ));
        };
        let key = std::str::from_utf8(&rec[..nl])
            .map_err(|_| DataError::invalid(dat_p, format!("entry {entry}: key is not UTF-8")))?
            .to_string();
        let (block, index) = pair_at(rec, nl + 2).ok_or_else(|| {
            DataError::invalid(dat_p, format!("entry {entry} ({key}): record too short"))
        })?;
        if block >= n_blocks {
            return Err(DataError::invalid(
                zdx_p,
                format!("entry {entry} ({key}): block {block} of {n_blocks}"),
            ));
        }
        if cache.as_ref().is_none_or(|(b, _)| *b != block) {
            cache = Some((block, decompress_block(zdx, zdt, block, zdt_p)?));
        }
        let data = &cache.as_ref().expect("just set").1;
        let count = u32_at(data, 0)
            .ok_or_else(|| DataError::invalid(zdt_p, format!("block {block}: empty")))?
            as usize;
        if index >= count {
            return Err(DataError::invalid(
                zdt_p,
                format!("entry {entry} ({key}): index {index} of {count} in block {block}"),
            ));
        }
        let text = index
            .checked_mul(8)
            .and_then(|x| pair_at(data, 4 + x))
            .and_then(|(o, s)| slice(data, o, s))
            .ok_or_else(|| {
                DataError::invalid(
                    zdt_p,
                    format!("entry {entry} ({key}): bad offset in block {block}"),
                )
            })?;
        let end = text.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
        let text = std::str::from_utf8(&text[..end])
            .map_err(|_| {
                DataError::invalid(zdt_p, format!("entry {entry} ({key}): text is not UTF-8"))
            })?
            .to_string();
        out.push(LexEntry { key, text });
    }
    Ok(out)
}

fn decompress_block(zdx: &[u8], zdt: &[u8], block: usize, zdt_p: &Path) -> Result<Vec<u8>> {
    let (off, size) = pair_at(zdx, block * 8).expect("block < n_blocks");
    let raw = slice(zdt, off, size).ok_or_else(|| {
        DataError::invalid(
            zdt_p,
            format!(
                "block {block}: {off}+{size} is past the end ({} bytes)",
                zdt.len()
            ),
        )
    })?;
    inflate_block(raw, block, zdt_p)
}

/// Inflates one block's zlib stream, which must reach its end: a stream cut short is an error
/// naming the block, as is one that inflates past [`MAX_BLOCK`] (never a silent cut). Bytes
/// after the end of the stream are ignored: SWORD's own blocks carry 1,024 of them.
fn inflate_block(raw: &[u8], block: usize, zdt_p: &Path) -> Result<Vec<u8>> {
    use flate2::{Decompress, FlushDecompress, Status};
    let bad = |m: String| DataError::invalid(zdt_p, format!("block {block}: {m}"));
    let mut z = Decompress::new(true);
    let mut data: Vec<u8> = Vec::with_capacity(raw.len().saturating_mul(4).max(64));
    loop {
        if data.len() == data.capacity() {
            data.reserve(data.capacity());
        }
        let (read, written) = (z.total_in(), z.total_out());
        let status = z
            .decompress_vec(&raw[read as usize..], &mut data, FlushDecompress::None)
            .map_err(|e| bad(format!("bad zlib stream ({e})")))?;
        if data.len() as u64 > MAX_BLOCK {
            return Err(bad(format!(
                "inflates past {} MiB (a corrupt block?)",
                MAX_BLOCK >> 20
            )));
        }
        match status {
            Status::StreamEnd => return Ok(data),
            _ if z.total_in() == read
                && z.total_out() == written
                && data.len() < data.capacity() =>
            {
                return Err(bad(format!(
                    "the zlib stream is cut short after {} of {} bytes",
                    z.total_in(),
                    raw.len()
                )));
            }
            _ => {}
        }
    }
}

/// Writes entries as a zLD module `dir/stem.*`, `per_block` entries per compressed block.
/// Entries are written in the given order (SWORD expects them sorted by key).
pub fn write_zld(dir: &Path, stem: &str, entries: &[LexEntry], per_block: usize) -> Result<()> {
    use flate2::{Compression, write::ZlibEncoder};
    use std::io::Write;
    let per_block = per_block.max(1);
    let (mut idx, mut dat, mut zdx, mut zdt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let u32le = |x: usize| (x as u32).to_le_bytes();
    for (b, chunk) in entries.chunks(per_block).enumerate() {
        let mut block = Vec::new();
        block.extend(u32le(chunk.len()));
        let mut pos = 4 + 8 * chunk.len();
        let mut body = Vec::new();
        for e in chunk {
            block.extend(u32le(pos));
            block.extend(u32le(e.text.len() + 1));
            body.extend(e.text.as_bytes());
            body.push(0);
            pos += e.text.len() + 1;
        }
        block.extend(body);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&block).map_err(|e| DataError::io(dir, e))?;
        let z = z.finish().map_err(|e| DataError::io(dir, e))?;
        zdx.extend(u32le(zdt.len()));
        zdx.extend(u32le(z.len()));
        zdt.extend(z);
        for (i, e) in chunk.iter().enumerate() {
            let mut rec = Vec::new();
            rec.extend(e.key.as_bytes());
            rec.extend(b"\r\n");
            rec.extend(u32le(b));
            rec.extend(u32le(i));
            idx.extend(u32le(dat.len()));
            idx.extend(u32le(rec.len()));
            dat.extend(rec);
            dat.extend(b"\r\n");
        }
    }
    fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    for (p, bytes) in module_files(dir, stem).iter().zip([idx, dat, zdx, zdt]) {
        fs::write(p, bytes).map_err(|e| DataError::io(p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> Vec<LexEntry> {
        ["APPLE", "BREAD", "CEDAR", "DOVE", "EAGLE"]
            .iter()
            .map(|k| LexEntry {
                key: k.to_string(),
                text: format!("<entryFree n=\"{k}\">\n<def>\n<lb/>→ About {k}</def>\n</entryFree>"),
            })
            .collect()
    }

    #[test]
    fn round_trip_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_zld(d, "nave", &entries(), 2).unwrap();
        assert_eq!(fs::metadata(d.join("nave.zdx")).unwrap().len(), 3 * 8);
        assert_eq!(read_zld(d, "nave").unwrap(), entries());
    }

    #[test]
    fn a_truncated_block_is_an_error_naming_the_block() {
        use flate2::{Compression, write::ZlibEncoder};
        use std::io::Write;
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&[7u8; 5000]).unwrap();
        let full = z.finish().unwrap();
        let p = Path::new("m.zdt");
        assert_eq!(inflate_block(&full, 3, p).unwrap(), vec![7u8; 5000]);
        // Trailing bytes after the stream (as in SWORD's blocks) are fine.
        let mut padded = full.clone();
        padded.extend([0u8; 1024]);
        assert_eq!(inflate_block(&padded, 3, p).unwrap(), vec![7u8; 5000]);
        for cut in [1, full.len() / 2, full.len() - 1] {
            let e = inflate_block(&full[..cut], 3, p).unwrap_err().to_string();
            assert!(e.contains("m.zdt") && e.contains("block 3"), "{cut}: {e}");
        }
    }

    #[test]
    fn corruption_is_reported_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_zld(d, "m", &entries(), 2).unwrap();
        let mut zdt = fs::read(d.join("m.zdt")).unwrap();
        zdt[5] ^= 0xff;
        zdt.truncate(zdt.len() - 3);
        fs::write(d.join("m.zdt"), &zdt).unwrap();
        let e = read_zld(d, "m").unwrap_err().to_string();
        assert!(e.contains("m.zdt") && e.contains("block"), "{e}");
        fs::write(d.join("m.idx"), [0u8; 7]).unwrap();
        let e = read_zld(d, "m").unwrap_err().to_string();
        assert!(e.contains("m.idx") && e.contains("multiple of 8"), "{e}");
        let _ = fs::remove_dir_all(d);
        let e = read_zld(d, "m").unwrap_err().to_string();
        assert!(e.contains("m.idx"), "{e}");
    }

    proptest! {
        #[test]
        fn parser_never_panics(
            idx in proptest::collection::vec(any::<u8>(), 0..64),
            dat in proptest::collection::vec(any::<u8>(), 0..128),
            zdx in proptest::collection::vec(any::<u8>(), 0..32),
            zdt in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let p = Path::new("x");
            let _ = parse_zld([&idx, &dat, &zdx, &zdt], [p, p, p, p]);
        }

        #[test]
        fn mutated_modules_never_panic(flip in 0usize..4, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            // Start from a valid module and corrupt one byte of one file.
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            write_zld(d, "m", &entries(), 2).unwrap();
            let mut files: Vec<Vec<u8>> = module_files(d, "m").iter().map(|p| fs::read(p).unwrap()).collect();
            let f = &mut files[flip];
            let i = at.index(f.len());
            f[i] = byte;
            let p = Path::new("x");
            let _ = parse_zld([&files[0], &files[1], &files[2], &files[3]], [p, p, p, p]);
        }
    }
}
