//! XTC (GROMACS compressed trajectory) through molly 0.7, with our own frame framing so that
//! malformed input can neither panic through nor allocate unbounded memory.
//!
//! XTC stores positions in **nm** quantised to `1/precision` nm; this module converts to and
//! from **Å** at its boundary. Time is in ps.

use std::path::Path;

use crate::error::StructureError;
use crate::io::catch_panic;

/// Default XTC precision (1/nm): coordinates are stored to 0.001 nm = 0.01 Å, as GROMACS does.
pub const DEFAULT_PRECISION: f32 = 1000.0;

/// Å per nm.
const ANG_PER_NM: f32 = 10.0;

/// Size of an XTC frame header: magic, natoms, step, time, 9 box floats, natoms again.
const HEADER_BYTES: usize = 4 * (5 + 9);

/// Decoded frames of a coordinate trajectory (XTC or DCD), atoms in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawFrames {
    /// Atoms per frame.
    pub n_atoms: usize,
    /// `[n_frames][n_atoms][3]` positions in Å.
    pub coords: Vec<Vec<[f32; 3]>>,
    /// `[n_frames]` time of each frame in ps.
    pub time_ps: Vec<f64>,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
}

/// Byte length of the frame starting at `start`, from its header, after checking the header
/// for consistency and the sizes against the bytes that remain.
fn frame_len(bytes: &[u8], start: usize, index: usize, path: &Path) -> Result<(usize, usize), StructureError> {
    let truncated = |what: &str| StructureError::Truncated {
        path: path.to_path_buf(),
        detail: format!("XTC frame {index} ends inside its {what}"),
    };
    let corrupt = |what: String| StructureError::Parse { path: path.to_path_buf(), line: None, message: format!("XTC frame {index}: {what}") };
    let magic = be_u32(bytes, start).ok_or_else(|| truncated("header"))?;
    let wide = match magic {
        1995 => false,
        2023 => true,
        m => return Err(corrupt(format!("bad magic number {m} (expected 1995 or 2023)"))),
    };
    if bytes.len() < start + HEADER_BYTES {
        return Err(truncated("header"));
    }
    let natoms = be_u32(bytes, start + 4).unwrap_or(0) as usize;
    let natoms2 = be_u32(bytes, start + HEADER_BYTES - 4).unwrap_or(0) as usize;
    if natoms != natoms2 {
        return Err(corrupt(format!("atom counts disagree ({natoms} vs {natoms2})")));
    }
    let remaining = bytes.len() - start;
    if natoms <= 9 {
        let len = HEADER_BYTES + natoms * 12;
        if remaining < len {
            return Err(truncated("coordinates"));
        }
        return Ok((len, natoms));
    }
    // precision, minint[3], maxint[3], smallidx, then the byte count (u32, or u64 for 2023).
    let prelude = HEADER_BYTES + 4 + 28;
    let count_len = if wide { 8 } else { 4 };
    if remaining < prelude + count_len {
        return Err(truncated("coordinate prelude"));
    }
    let nbytes = if wide { be_u64(bytes, start + prelude).unwrap_or(u64::MAX) } else { u64::from(be_u32(bytes, start + prelude).unwrap_or(u32::MAX)) };
    let nbytes = usize::try_from(nbytes).unwrap_or(usize::MAX);
    let padded = nbytes.checked_add((4 - nbytes % 4) % 4).ok_or_else(|| corrupt("byte count overflows".into()))?;
    let len = (prelude + count_len).checked_add(padded).ok_or_else(|| corrupt("byte count overflows".into()))?;
    if remaining < len {
        return Err(truncated("compressed coordinates"));
    }
    // The XTC coder spends at least a few bits per atom; a header claiming far more atoms
    // than the payload can hold is corrupt (and would make the decoder allocate for nothing).
    if natoms > 64 * (nbytes + 16) {
        return Err(corrupt(format!("{natoms} atoms cannot fit in {nbytes} compressed bytes")));
    }
    Ok((len, natoms))
}

/// Decode an XTC file held in memory. `path` only labels errors.
///
/// # Errors
/// [`StructureError::Empty`] for no bytes, [`StructureError::Truncated`] when the data stop
/// inside a frame, [`StructureError::Parse`] for a bad header or frames with different atom
/// counts, [`StructureError::ParserPanic`] if molly panics on the payload.
pub fn read_xtc_bytes(bytes: &[u8], path: &Path) -> Result<RawFrames, StructureError> {
    if bytes.is_empty() {
        return Err(StructureError::Empty { path: path.to_path_buf() });
    }
    let mut out = RawFrames::default();
    let mut start = 0usize;
    while start < bytes.len() {
        let index = out.coords.len();
        let (len, natoms) = frame_len(bytes, start, index, path)?;
        if index > 0 && natoms != out.n_atoms {
            return Err(StructureError::Parse {
                path: path.to_path_buf(),
                line: None,
                message: format!("XTC frame {index} has {natoms} atoms, frame 0 has {}", out.n_atoms),
            });
        }
        out.n_atoms = natoms;
        let slice = &bytes[start..start + len];
        let mut frame = molly::Frame::default();
        let result = catch_panic(path, || molly::XTCReader::new(std::io::Cursor::new(slice)).read_frame(&mut frame))?;
        result.map_err(|e| StructureError::Parse {
            path: path.to_path_buf(),
            line: None,
            message: format!("XTC frame {index}: {e}"),
        })?;
        if frame.positions.len() != natoms * 3 {
            return Err(StructureError::Parse {
                path: path.to_path_buf(),
                line: None,
                message: format!("XTC frame {index}: decoded {} values for {natoms} atoms", frame.positions.len()),
            });
        }
        out.coords.push(frame.positions.chunks_exact(3).map(|p| [p[0] * ANG_PER_NM, p[1] * ANG_PER_NM, p[2] * ANG_PER_NM]).collect());
        out.time_ps.push(f64::from(frame.time));
        start += len;
    }
    Ok(out)
}

/// Encode frames (`[n_frames][n_atoms][3]`, Å) as XTC bytes with the given precision
/// (1/nm, e.g. [`DEFAULT_PRECISION`]). Step numbers count frames from 0; the box is zero.
///
/// # Errors
/// [`StructureError::Unwritable`] when frames have different atom counts or `time_ps` has
/// a different length; [`StructureError::Io`] if molly fails.
pub fn write_xtc_bytes(coords: &[Vec<[f32; 3]>], time_ps: &[f64], precision: f32, path: &Path) -> Result<Vec<u8>, StructureError> {
    if coords.len() != time_ps.len() {
        return Err(StructureError::Unwritable {
            path: path.to_path_buf(),
            detail: format!("{} frames but {} times", coords.len(), time_ps.len()),
        });
    }
    let n = coords.first().map_or(0, Vec::len);
    let mut writer = molly::XTCWriter::new(Vec::new());
    for (i, (frame, &t)) in coords.iter().zip(time_ps).enumerate() {
        if frame.len() != n {
            return Err(StructureError::Unwritable {
                path: path.to_path_buf(),
                detail: format!("frame {i} has {} atoms, frame 0 has {n}", frame.len()),
            });
        }
        let nm: Vec<f32> = frame.iter().flat_map(|p| p.map(|v| v / ANG_PER_NM)).collect();
        let f = molly::Frame {
            step: u32::try_from(i).unwrap_or(u32::MAX),
            time: t as f32,
            boxvec: [0.0; 9],
            precision,
            positions: nm,
        };
        catch_panic(path, || writer.write_frame(&f))?.map_err(|e| StructureError::io(path, e))?;
    }
    Ok(writer.file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n_frames: usize, n_atoms: usize) -> Vec<Vec<[f32; 3]>> {
        (0..n_frames)
            .map(|f| (0..n_atoms).map(|a| [a as f32 * 1.53 + f as f32, (a as f32 * 0.7).sin() * 12.0, -3.0 + f as f32 * 0.25]).collect())
            .collect()
    }

    #[test]
    fn round_trip_within_precision() {
        for n_atoms in [4, 9, 10, 57] {
            let xs = frames(3, n_atoms);
            let t = vec![0.0, 10.0, 20.0];
            let bytes = write_xtc_bytes(&xs, &t, DEFAULT_PRECISION, Path::new("t.xtc")).unwrap();
            let back = read_xtc_bytes(&bytes, Path::new("t.xtc")).unwrap();
            assert_eq!(back.n_atoms, n_atoms);
            assert_eq!(back.time_ps, t);
            for (a, b) in xs.iter().flatten().zip(back.coords.iter().flatten()) {
                for d in 0..3 {
                    assert!((a[d] - b[d]).abs() <= 0.0051, "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn truncated_and_garbage() {
        let bytes = write_xtc_bytes(&frames(2, 30), &[0.0, 1.0], DEFAULT_PRECISION, Path::new("t.xtc")).unwrap();
        for cut in [3, 40, 60, 100, bytes.len() - 1] {
            let e = read_xtc_bytes(&bytes[..cut], Path::new("t.xtc")).unwrap_err();
            assert!(matches!(e, StructureError::Truncated { .. }), "cut {cut}: {e}");
        }
        let e = read_xtc_bytes(b"not an xtc file at all, just text", Path::new("g.xtc")).unwrap_err();
        assert!(matches!(e, StructureError::Parse { .. }), "{e}");
        // A header claiming 2^31 atoms with a tiny payload is rejected before decoding.
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        huge[52..56].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        assert!(read_xtc_bytes(&huge, Path::new("h.xtc")).is_err());
    }
}
