//! Reading CSV files from spreadsheets and vendor portals: one reader setup, one header
//! normalization and one way of describing a bad line, for every importer.

use std::io::Read;

/// A file read through once, whole, with its SHA-256, which the import log keeps.
pub struct HashedFile {
    inner: std::io::BufReader<std::fs::File>,
    hash: sha2::Sha256,
}

impl HashedFile {
    pub fn open(path: &std::path::Path) -> Result<HashedFile, String> {
        use sha2::Digest;
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
        Ok(HashedFile {
            inner: std::io::BufReader::with_capacity(1 << 20, file),
            hash: sha2::Sha256::new(),
        })
    }

    /// Reads whatever a parser left unread (it still belongs to the file) and returns the
    /// SHA-256 of every byte, in hex.
    pub fn finish(mut self) -> Result<String, String> {
        use sha2::Digest;
        std::io::copy(&mut self, &mut std::io::sink()).map_err(|e| e.to_string())?;
        Ok(hex::encode(self.hash.finalize()))
    }
}

impl Read for HashedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A 64-bit digest of `value`, the same in every run: imports keep one per row, not the row.
pub fn hash64<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A map from each row's key (hashed) to what an import must remember of it, sized for the
/// file's line count up front. Grown row by row instead, its last doubling holds the old and the
/// new table at once: at a million rows, 78 MB at the peak instead of 52 MB. The count is a raw
/// scan for line breaks (a few tens of milliseconds per 100 MB), an upper bound on the rows of a
/// CSV file; for JSON it is only a start, and the map grows from there.
pub fn seen_map<V>(path: &std::path::Path) -> std::collections::HashMap<u64, V> {
    let mut lines = 0usize;
    if let Ok(mut file) = std::fs::File::open(path) {
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        }
    }
    std::collections::HashMap::with_capacity(lines)
}

/// A CSV reader over `input` that counts lines right (see [`CrlfToLf`]).
pub fn reader<R: Read>(input: R) -> csv::Reader<CrlfToLf<R>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(CrlfToLf::new(input))
}

/// The header line, each name trimmed, lowercased, without a byte-order mark.
pub fn headers<R: Read>(csv: &mut csv::Reader<R>) -> Result<Vec<String>, String> {
    Ok(csv
        .headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .iter()
        .map(normalize_header)
        .collect())
}

/// How header names are compared: case and surrounding spaces (and a BOM) do not matter.
pub fn normalize_header(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
}

/// A bad line in words, and whether reading can go on after it.
pub fn describe_error(e: &csv::Error) -> (String, bool) {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => (
            format!("has {len} fields but the header has {expected_len}"),
            true,
        ),
        csv::ErrorKind::Utf8 { .. } => ("is not valid UTF-8".into(), true),
        _ => (e.to_string(), false),
    }
}

/// Turns CRLF line ends into LF as bytes stream through. The csv crate miscounts lines in CRLF
/// files (every line number comes out one short); users fix rows by the numbers we report.
pub struct CrlfToLf<R> {
    inner: R,
    pending_cr: bool,
}

impl<R: Read> CrlfToLf<R> {
    pub fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            pending_cr: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Leave room to emit a held-back '\r' that turns out not to precede '\n'.
            let n = self.inner.read(&mut buf[usize::from(self.pending_cr)..])?;
            let start = usize::from(self.pending_cr);
            if n == 0 {
                if self.pending_cr {
                    self.pending_cr = false;
                    buf[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            let mut out = 0;
            if self.pending_cr {
                self.pending_cr = false;
                if buf[start] != b'\n' {
                    buf[out] = b'\r';
                    out += 1;
                }
            }
            for i in start..start + n {
                let byte = buf[i];
                if byte == b'\r' {
                    match buf.get(i + 1).filter(|_| i + 1 < start + n) {
                        Some(b'\n') => continue,
                        Some(_) => {}
                        None => {
                            self.pending_cr = true;
                            continue;
                        }
                    }
                }
                buf[out] = byte;
                out += 1;
            }
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_becomes_lf_across_read_boundaries() {
        /// Hands out one byte per read, the worst case for a held-back '\r'.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.split_first() {
                    Some((b, rest)) if !buf.is_empty() => {
                        buf[0] = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        for input in ["a\r\nb\r\n", "a\rb\r", "\r\r\n\n", "plain"] {
            let expected = input.replace("\r\n", "\n");
            let mut whole = String::new();
            CrlfToLf::new(input.as_bytes())
                .read_to_string(&mut whole)
                .unwrap();
            assert_eq!(whole, expected, "{input:?}");
            let mut trickled = String::new();
            CrlfToLf::new(Trickle(input.as_bytes()))
                .read_to_string(&mut trickled)
                .unwrap();
            assert_eq!(trickled, expected, "{input:?} one byte at a time");
        }
    }
}
