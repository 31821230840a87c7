//! Reading matrices and vectors from `.npy` or text (CSV / whitespace) files, and writing `.npy`.
//!
//! * `.npy` (detected by its magic bytes, whatever the extension): dtypes f32, f64, i32, i64 of
//!   either endianness, 1-D or 2-D, C or Fortran order. A 1-D array is read as one row.
//! * Text: one row per line, fields separated by commas (or semicolons) when the line has any,
//!   otherwise by whitespace (a line with both is refused: decimal commas). `#` starts a comment;
//!   blank lines are skipped; the first data line is taken as a header and skipped when every
//!   field is a word (starts with a letter: `t,gamma`; `0 0.5x` is a mistyped row, refused).
//! * Only regular files are read, up to a size stated in the message: a FIFO or `/dev/zero` is
//!   refused at once ([`read_bounded`]).
//!
//! Every error names the path and what is wrong (with line/column or row/column where it helps),
//! and NaN or infinite entries are rejected with their position.
//!
//! (Over 500 lines: 134 of its 536 are the unit tests of the code above them.)

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use nalgebra::{DMatrix, DVector};
use npyz::{AutoSerialize, WriterBuilder};

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Largest matrix file read (a training set of 10⁶ points in d = 128 as f64 is 1 GiB).
pub const MAX_MATRIX_BYTES: u64 = 1 << 30;

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// `bytes` in the largest binary unit that keeps it whole where it can (`1 GiB`, `16 MiB`).
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// Opens `path` for reading if it is a regular file: a FIFO, a device (`/dev/zero`), a socket
/// or a directory is refused without blocking (the open does not wait for a FIFO's writer).
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot read file {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read file {}", path.display()))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileTypeExt;
                let t = meta.file_type();
                if t.is_fifo() {
                    "a FIFO (named pipe)"
                } else if t.is_char_device() || t.is_block_device() {
                    "a device"
                } else if t.is_socket() {
                    "a socket"
                } else {
                    "not a regular file"
                }
            }
            #[cfg(not(unix))]
            {
                "not a regular file"
            }
        };
        bail!(
            "{} is {kind}; regimes reads only regular files (copy the data into one)",
            path.display()
        );
    }
    Ok(file)
}

/// The bytes of a regular file, refusing one larger than `limit` (stated in the message) before
/// reading it, and any other kind of file ([`open_regular`]).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let too_big = |size: u64| {
        anyhow::anyhow!(
            "{}: {} is larger than the {} this program reads from such a file",
            path.display(),
            size_text(size),
            size_text(limit)
        )
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read file {}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The text of a regular UTF-8 file of at most `limit` bytes ([`read_bounded`]).
pub fn read_text(path: &Path, limit: u64) -> Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))
}

/// Largest state, shard or checkpoint index file read (JSON).
pub const MAX_STATE_BYTES: u64 = 256 << 20;

/// Largest checkpoint blob read (the particles of one phase).
pub const MAX_BLOB_BYTES: u64 = 64 << 30;

/// Whether a header field is a word (`t`, `gamma`, `x_1`, `"mean"`): it starts with a letter, an
/// underscore or a quote. `0.5x` is a mistyped number, not a word.
pub fn is_word(field: &str) -> bool {
    field.parse::<f64>().is_err()
        && field
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '"' || c == '\'')
}

/// Read a 2-D matrix (a 1-D array becomes a single row).
pub fn read_matrix(path: &Path) -> Result<DMatrix<f64>> {
    parse_matrix(&read_bounded(path, MAX_MATRIX_BYTES)?, path)
}

/// A 2-D matrix from the bytes of a `.npy` or text file read from `path` (named in errors).
pub fn parse_matrix(bytes: &[u8], path: &Path) -> Result<DMatrix<f64>> {
    parse(bytes, path, false)
}

/// [`parse_matrix`], accepting a `.npy` array with no rows (`(0, d)` or `(0,)`): what a shard
/// without particles writes as its samples.
pub fn parse_rows(bytes: &[u8], path: &Path) -> Result<DMatrix<f64>> {
    parse(bytes, path, true)
}

fn parse(bytes: &[u8], path: &Path, allow_no_rows: bool) -> Result<DMatrix<f64>> {
    let npy = bytes.starts_with(NPY_MAGIC);
    let m = if npy {
        read_npy(bytes).with_context(|| format!("{}: invalid .npy file", path.display()))?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: neither a .npy file nor UTF-8 text ({e})",
                path.display()
            )
        })?;
        parse_text(text).with_context(|| format!("{}: invalid text matrix", path.display()))?
    };
    let no_rows = npy && allow_no_rows && (m.nrows() == 0 || m.ncols() == 0);
    ensure!(
        no_rows || (m.nrows() > 0 && m.ncols() > 0),
        "{}: empty matrix ({}×{})",
        path.display(),
        m.nrows(),
        m.ncols()
    );
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            let x = m[(i, j)];
            ensure!(
                x.is_finite(),
                "{}: entry at row {}, column {} is {x} (only finite numbers are allowed)",
                path.display(),
                i + 1,
                j + 1
            );
        }
    }
    Ok(m)
}

/// Read a vector stored as 1×d, d×1 or a 1-D array.
pub fn read_vector(path: &Path) -> Result<DVector<f64>> {
    let m = read_matrix(path)?;
    if m.nrows() == 1 {
        Ok(DVector::from_iterator(m.ncols(), m.row(0).iter().copied()))
    } else if m.ncols() == 1 {
        Ok(m.column(0).into_owned())
    } else {
        bail!(
            "{}: expected a vector (1×d, d×1 or 1-D), found a {}×{} matrix",
            path.display(),
            m.nrows(),
            m.ncols()
        )
    }
}

/// Checks an .npy header before npyz parses it, refusing what would make npyz misbehave (found by
/// `fuzz/`): a declared header length beyond the file (npyz allocates it first, up to 4 GiB), a
/// header that is not the flat `{'descr': …, 'fortran_order': …, 'shape': (…), }` dict (nested
/// brackets make its parser backtrack exponentially), and a shape whose product overflows (a
/// panic where overflow checks are on, a wrapped count where they are off).
fn check_header(bytes: &[u8]) -> Result<()> {
    let (len, start): (Option<usize>, usize) = match bytes.get(6) {
        Some(1) => (
            bytes
                .get(8..10)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
            10,
        ),
        _ => (
            bytes
                .get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            12,
        ),
    };
    let header = len
        .and_then(|len| bytes.get(start..start.checked_add(len)?))
        .map(String::from_utf8_lossy)
        .ok_or_else(|| anyhow::anyhow!("truncated header"))?;
    let count = |c: char| header.chars().filter(|&x| x == c).count();
    ensure!(
        count('{') == 1 && count('}') == 1 && count('(') <= 1 && count(')') <= 1 && count('[') == 0,
        "the header is not a flat dictionary of descr, fortran_order and shape"
    );
    let Some(shape) = header
        .split_once("shape")
        .and_then(|(_, rest)| rest.split_once('('))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside)
    else {
        return Ok(()); // npyz reports a malformed header
    };
    let mut product: u64 = 1;
    for dim in shape.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let n: u64 = dim.trim_end_matches('L').parse().unwrap_or(0);
        product = product
            .checked_mul(n)
            .ok_or_else(|| anyhow::anyhow!("shape ({shape}) is too large to address"))?;
    }
    Ok(())
}

fn read_npy(bytes: &[u8]) -> Result<DMatrix<f64>> {
    check_header(bytes)?;
    let npy = npyz::NpyFile::new(bytes)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let (rows, cols) = match shape.as_slice() {
        [n] => (1, *n),
        [r, c] => (*r, *c),
        _ => bail!("expected a 1-D or 2-D array, found shape {:?}", npy.shape()),
    };
    // The header's shape is untrusted: its product may overflow, or promise more data than the
    // file holds; check both before anything is allocated for it.
    let item = npy.dtype().num_bytes().unwrap_or(8);
    let values = rows
        .checked_mul(cols)
        .filter(|n| n.checked_mul(item).is_some());
    let Some(values) = values else {
        bail!("shape {:?} is too large to address", npy.shape());
    };
    ensure!(
        values * item <= bytes.len(),
        "shape {:?} needs {} bytes of data, the file holds {}",
        npy.shape(),
        values * item,
        bytes.len()
    );
    let order = npy.order();
    let dtype = npy.dtype();
    let npyz::DType::Plain(ts) = &dtype else {
        bail!(
            "unsupported dtype {} (need f4, f8, i4 or i8)",
            dtype.descr()
        );
    };
    use npyz::TypeChar;
    let data: Vec<f64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => npy.into_vec::<f64>()?,
        (TypeChar::Float, 4) => npy.into_vec::<f32>()?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 4) => npy.into_vec::<i32>()?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 8) => npy
            .into_vec::<i64>()?
            .into_iter()
            .map(|x| x as f64)
            .collect(),
        _ => bail!(
            "unsupported dtype {} (need f4, f8, i4 or i8)",
            dtype.descr()
        ),
    };
    ensure!(
        data.len() == rows * cols,
        "data holds {} values, shape {:?} needs {}",
        data.len(),
        shape,
        rows * cols
    );
    Ok(match order {
        npyz::Order::C => DMatrix::from_row_slice(rows, cols, &data),
        npyz::Order::Fortran => DMatrix::from_column_slice(rows, cols, &data),
    })
}

/// Split one (comment-free, trimmed, non-empty) line into fields. A line with both commas and
/// semicolons is refused: `1,5;2;2` is decimal commas, not four numbers.
fn fields(line: &str, lineno: usize) -> Result<Vec<&str>> {
    ensure!(
        !(line.contains(',') && line.contains(';')),
        "line {lineno}: {line:?} mixes ',' and ';' (decimal commas such as 1,5 are not read: \
         write decimals with '.', and separate fields with one of ',', ';' or spaces)"
    );
    Ok(if line.contains([',', ';']) {
        line.split([',', ';']).map(str::trim).collect()
    } else {
        line.split_whitespace().collect()
    })
}

fn parse_text(text: &str) -> Result<DMatrix<f64>> {
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut first_data_line = true;
    for (lineno, raw) in text.lines().enumerate() {
        let lineno = lineno + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let toks = fields(line, lineno)?;
        if first_data_line {
            first_data_line = false;
            if toks.iter().all(|t| is_word(t)) {
                continue; // a header line: words only
            }
        }
        let mut row = Vec::with_capacity(toks.len());
        for (col, tok) in toks.iter().enumerate() {
            let x: f64 = tok.parse().map_err(|_| {
                anyhow::anyhow!(
                    "line {lineno}, column {}: {:?} is not a number",
                    col + 1,
                    tok
                )
            })?;
            ensure!(
                x.is_finite(),
                "line {lineno}, column {}: value {tok:?} is not finite (NaN/inf not allowed)",
                col + 1
            );
            row.push(x);
        }
        if let Some(first) = rows.first() {
            ensure!(
                row.len() == first.len(),
                "line {lineno}: ragged rows: {} fields, earlier rows have {}",
                row.len(),
                first.len()
            );
        }
        rows.push(row);
    }
    ensure!(!rows.is_empty(), "no numeric rows found");
    let (r, c) = (rows.len(), rows[0].len());
    Ok(DMatrix::from_row_iterator(r, c, rows.into_iter().flatten()))
}

/// `data` (C order) encoded as a `.npy` array of the given shape; `what` names it in errors.
pub fn encode_npy<T: AutoSerialize + Copy>(
    what: &str,
    shape: &[usize],
    data: &[T],
) -> Result<Vec<u8>> {
    let n: usize = shape.iter().product();
    ensure!(
        n == data.len(),
        "{what}: shape {shape:?} needs {n} values, got {}",
        data.len()
    );
    let shape64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut bytes = Vec::with_capacity(128 + std::mem::size_of_val(data));
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape64)
        .writer(&mut bytes)
        .begin_nd()
        .with_context(|| format!("cannot encode {what}"))?;
    w.extend(data.iter().copied())
        .and_then(|_| w.finish())
        .with_context(|| format!("cannot encode {what}"))?;
    Ok(bytes)
}

fn write_npy<T: AutoSerialize + Copy>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let bytes = encode_npy(&path.display().to_string(), shape, data)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Write `data` (C order, i.e. row-major) as an f32 `.npy` array of the given shape.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write_npy(path, shape, data)
}

/// Write `data` (C order, i.e. row-major) as an f64 `.npy` array of the given shape.
pub fn write_npy_f64(path: &Path, shape: &[usize], data: &[f64]) -> Result<()> {
    write_npy(path, shape, data)
}

/// A fresh scratch directory per test (removed at the end of the test).
#[cfg(test)]
pub(crate) struct Scratch(pub std::path::PathBuf);
#[cfg(test)]
impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("regimes-test-{}-{}", name, std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub(crate) fn file(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}
#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::BufWriter;

    #[test]
    fn npy_round_trip_f64_f32() {
        let s = Scratch::new("io-npy");
        let p = s.0.join("a.npy");
        let data: Vec<f64> = (0..6).map(|i| i as f64 * 0.5 - 1.0).collect();
        write_npy_f64(&p, &[2, 3], &data).unwrap();
        let m = read_matrix(&p).unwrap();
        assert_eq!((m.nrows(), m.ncols()), (2, 3));
        assert_eq!(m[(0, 1)], data[1]);
        assert_eq!(m[(1, 0)], data[3]); // C order
        let p32 = s.0.join("b.npy");
        let d32: Vec<f32> = vec![1.5, -2.25, 3.0];
        write_npy_f32(&p32, &[3], &d32).unwrap();
        let m = read_matrix(&p32).unwrap();
        assert_eq!((m.nrows(), m.ncols()), (1, 3));
        assert_eq!(m[(0, 1)], -2.25);
        let v = read_vector(&p32).unwrap();
        assert_eq!(v.len(), 3);
        write_npy_f32(&p32, &[3, 1], &d32).unwrap();
        assert_eq!(read_vector(&p32).unwrap()[2], 3.0);
        assert!(write_npy_f64(&p, &[2, 2], &data).is_err());
    }

    #[test]
    fn npy_fortran_and_integer() {
        let s = Scratch::new("io-npy-f");
        let p = s.0.join("f.npy");
        let file = BufWriter::new(File::create(&p).unwrap());
        let mut w = npyz::WriteOptions::<i64>::new()
            .default_dtype()
            .shape(&[2, 3])
            .order(npyz::Order::Fortran)
            .writer(file)
            .begin_nd()
            .unwrap();
        // Column-major data of [[1,2,3],[4,5,6]].
        w.extend([1i64, 4, 2, 5, 3, 6]).unwrap();
        w.finish().unwrap();
        let m = read_matrix(&p).unwrap();
        assert_eq!(m, DMatrix::from_row_slice(2, 3, &[1., 2., 3., 4., 5., 6.]));

        let p = s.0.join("i32.npy");
        let file = BufWriter::new(File::create(&p).unwrap());
        let mut w = npyz::WriteOptions::<i32>::new()
            .default_dtype()
            .shape(&[1, 2])
            .writer(file)
            .begin_nd()
            .unwrap();
        w.extend([7i32, -8]).unwrap();
        w.finish().unwrap();
        assert_eq!(read_matrix(&p).unwrap()[(0, 1)], -8.0);

        let p = s.0.join("nan.npy");
        write_npy_f64(&p, &[2, 2], &[1.0, 2.0, f64::NAN, 4.0]).unwrap();
        let err = read_matrix(&p).unwrap_err().to_string();
        assert!(
            err.contains("row 2, column 1") && err.contains("NaN"),
            "{err}"
        );
    }

    #[test]
    fn text_formats_and_errors() {
        let s = Scratch::new("io-text");
        let p = s.file("a.csv", "# a comment\nx,y,z\n1, 2, 3\n\n4,5,6 # trailing\n");
        let m = read_matrix(&p).unwrap();
        assert_eq!(m, DMatrix::from_row_slice(2, 3, &[1., 2., 3., 4., 5., 6.]));
        let p = s.file("b.txt", "1 2\n3\t4e-1\n");
        let m = read_matrix(&p).unwrap();
        assert_eq!(m[(1, 1)], 0.4);

        let p = s.file("ragged.csv", "1,2\n3,4,5\n");
        let err = format!("{:#}", read_matrix(&p).unwrap_err());
        assert!(err.contains("ragged") && err.contains("line 2"), "{err}");
        assert!(err.contains("ragged.csv"), "{err}");

        let p = s.file("bad.csv", "1,2\n3,abc\n");
        let err = format!("{:#}", read_matrix(&p).unwrap_err());
        assert!(
            err.contains("line 2, column 2") && err.contains("abc"),
            "{err}"
        );

        let p = s.file("nan.csv", "1,2\n3,NaN\n");
        let err = format!("{:#}", read_matrix(&p).unwrap_err());
        assert!(
            err.contains("line 2, column 2") && err.contains("not finite"),
            "{err}"
        );

        let p = s.0.join("missing.csv");
        let err = format!("{:#}", read_matrix(&p).unwrap_err());
        assert!(
            err.contains("missing.csv") && err.contains("cannot read"),
            "{err}"
        );

        let p = s.file("m.csv", "1,2\n3,4\n");
        let err = format!("{:#}", read_vector(&p).unwrap_err());
        assert!(err.contains("expected a vector"), "{err}");
        let p = s.file("empty.csv", "# nothing\n");
        assert!(read_matrix(&p).is_err());
    }
}
