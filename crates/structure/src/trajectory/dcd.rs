//! DCD trajectories (CHARMM/NAMD flavour), our own codec.
//!
//! A DCD file is a sequence of Fortran unformatted records, each framed by its byte length
//! as a 4-byte integer before and after:
//! 1. header (84 bytes): `"CORD"` and 20 int32 `ICNTRL` values: `[0]` number of frames,
//!    `[1]` first step (ISTART), `[2]` steps between frames (NSAVC), `[3]` total steps,
//!    `[8]` number of fixed atoms (must be 0 here), `[9]` time step as float32 in AKMA
//!    units, `[10]` 1 if frames carry a unit cell, `[11]` 1 for 4-D coordinates
//!    (unsupported), `[19]` CHARMM version (we write 24);
//! 2. title: int32 count, then count × 80-byte lines;
//! 3. int32 number of atoms;
//! 4. per frame: optional unit cell (6 float64: a, γ, b, β, α, c, Å and degrees or
//!    cosines), then three records of `n_atoms` float32: all X, all Y, all Z, in **Å**.
//!
//! We read little- and big-endian files (detected from the first record marker) and write
//! little-endian. Reference: CHARMM `dynio.src` format notes and the NAMD/VMD `dcdplugin`
//! documentation of the same layout.

use std::path::Path;

use crate::error::StructureError;
use crate::trajectory::xtc::RawFrames;

/// ps per AKMA time unit (CHARMM's internal time unit, 48.88821 fs).
pub const AKMA_PS: f64 = 0.048_888_21;

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    endian: Endian,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn i32_at(&self, at: usize) -> Option<i32> {
        let b = self.bytes.get(at..at + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(match self.endian {
            Endian::Little => i32::from_le_bytes(b),
            Endian::Big => i32::from_be_bytes(b),
        })
    }

    /// The next Fortran record's payload; `what` names it in errors.
    fn record(&mut self, what: &str) -> Result<&'a [u8], StructureError> {
        let truncated = || StructureError::Truncated { path: self.path.to_path_buf(), detail: format!("DCD ends inside the {what} record") };
        let len = self.i32_at(self.pos).ok_or_else(truncated)?;
        let len = usize::try_from(len).map_err(|_| self.corrupt(format!("negative length {len} of the {what} record")))?;
        let start = self.pos + 4;
        let end = start.checked_add(len).ok_or_else(truncated)?;
        let tail = self.i32_at(end).ok_or_else(truncated)?;
        if usize::try_from(tail).ok() != Some(len) {
            return Err(self.corrupt(format!("{what} record markers disagree ({len} vs {tail})")));
        }
        self.pos = end + 4;
        Ok(&self.bytes[start..end])
    }

    fn corrupt(&self, message: String) -> StructureError {
        StructureError::Parse { path: self.path.to_path_buf(), line: None, message: format!("DCD: {message}") }
    }

    fn i32_in(&self, rec: &[u8], i: usize) -> i32 {
        let b = [rec[4 * i], rec[4 * i + 1], rec[4 * i + 2], rec[4 * i + 3]];
        match self.endian {
            Endian::Little => i32::from_le_bytes(b),
            Endian::Big => i32::from_be_bytes(b),
        }
    }

    fn f32_in(&self, rec: &[u8], i: usize) -> f32 {
        f32::from_bits(self.i32_in(rec, i) as u32)
    }
}

/// Decode a DCD file held in memory (positions in Å). `path` only labels errors.
///
/// Time of frame `i` is `(ISTART + i·NSAVC) · DELTA` converted from AKMA units to ps.
///
/// # Errors
/// [`StructureError::Empty`], [`StructureError::Truncated`] (data stop inside a record),
/// [`StructureError::Parse`] (not a DCD, inconsistent markers or sizes) and
/// [`StructureError::UnsupportedFormat`] (fixed atoms, 4-D, 8-byte record markers).
pub fn read_dcd_bytes(bytes: &[u8], path: &Path) -> Result<RawFrames, StructureError> {
    if bytes.is_empty() {
        return Err(StructureError::Empty { path: path.to_path_buf() });
    }
    let endian = match bytes.get(..4) {
        Some([84, 0, 0, 0]) => Endian::Little,
        Some([0, 0, 0, 84]) => Endian::Big,
        Some(_) if bytes.get(..8) == Some(&[84, 0, 0, 0, 0, 0, 0, 0]) => {
            return Err(StructureError::UnsupportedFormat { path: path.to_path_buf(), detail: "DCD with 8-byte record markers".into() });
        }
        _ => {
            return Err(StructureError::Parse { path: path.to_path_buf(), line: None, message: "not a DCD file (first record is not the 84-byte header)".into() });
        }
    };
    let mut c = Cursor { bytes, pos: 0, endian, path };
    let header = c.record("header")?;
    if header.len() != 84 || &header[..4] != b"CORD" {
        return Err(c.corrupt("header does not start with CORD".into()));
    }
    let icntrl = |i: usize| c.i32_in(&header[4..], i);
    let nset = icntrl(0);
    let istart = icntrl(1);
    let nsavc = icntrl(2).max(1);
    let namnf = icntrl(8);
    let delta = f64::from(c.f32_in(&header[4..], 9));
    let has_cell = icntrl(10) == 1;
    let four_d = icntrl(11) == 1;
    if namnf != 0 || four_d {
        return Err(StructureError::UnsupportedFormat {
            path: path.to_path_buf(),
            detail: format!("DCD with {namnf} fixed atoms / 4-D coordinates is not supported"),
        });
    }
    let title = c.record("title")?;
    if title.len() < 4 {
        return Err(c.corrupt("title record too short".into()));
    }
    let natoms_rec = c.record("atom count")?;
    if natoms_rec.len() != 4 {
        return Err(c.corrupt(format!("atom count record has {} bytes", natoms_rec.len())));
    }
    let natoms = usize::try_from(c.i32_in(natoms_rec, 0)).map_err(|_| c.corrupt("negative atom count".into()))?;
    let mut out = RawFrames { n_atoms: natoms, ..RawFrames::default() };
    while c.pos < bytes.len() {
        let f = out.coords.len();
        if has_cell {
            let cell = c.record("unit cell")?;
            if cell.len() != 48 {
                return Err(c.corrupt(format!("frame {f}: unit cell record has {} bytes, expected 48", cell.len())));
            }
        }
        let mut xyz = [&[][..]; 3];
        for (d, axis) in ["X", "Y", "Z"].iter().enumerate() {
            xyz[d] = c.record(&format!("frame {f} {axis}"))?;
            if xyz[d].len() != 4 * natoms {
                return Err(c.corrupt(format!("frame {f}: {axis} record has {} bytes for {natoms} atoms", xyz[d].len())));
            }
        }
        out.coords.push((0..natoms).map(|a| [c.f32_in(xyz[0], a), c.f32_in(xyz[1], a), c.f32_in(xyz[2], a)]).collect());
        out.time_ps.push((f64::from(istart) + f as f64 * f64::from(nsavc)) * delta * AKMA_PS);
    }
    if usize::try_from(nset).is_ok_and(|n| n > out.coords.len()) {
        return Err(StructureError::Truncated {
            path: path.to_path_buf(),
            detail: format!("DCD header announces {nset} frames, the file holds {}", out.coords.len()),
        });
    }
    Ok(out)
}

fn record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = payload.len() as i32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&len.to_le_bytes());
}

/// Encode frames (`[n_frames][n_atoms][3]`, Å) as little-endian CHARMM DCD without unit cell.
///
/// DCD has a uniform time grid: the spacing is taken from the first two entries of
/// `time_ps` (1 AKMA unit if there is one frame), and ISTART/NSAVC/DELTA are chosen so the
/// first time is reproduced; non-uniform spacings are not preserved.
///
/// # Errors
/// [`StructureError::Unwritable`] when frames have different atom counts, `time_ps` has a
/// different length, or the sizes exceed the format's 32-bit fields.
pub fn write_dcd_bytes(coords: &[Vec<[f32; 3]>], time_ps: &[f64], path: &Path) -> Result<Vec<u8>, StructureError> {
    let unwritable = |detail: String| StructureError::Unwritable { path: path.to_path_buf(), detail };
    if coords.len() != time_ps.len() {
        return Err(unwritable(format!("{} frames but {} times", coords.len(), time_ps.len())));
    }
    let natoms = coords.first().map_or(0, Vec::len);
    if let Some((i, f)) = coords.iter().enumerate().find(|(_, f)| f.len() != natoms) {
        return Err(unwritable(format!("frame {i} has {} atoms, frame 0 has {natoms}", f.len())));
    }
    let nframes = i32::try_from(coords.len()).map_err(|_| unwritable("too many frames for DCD".into()))?;
    let natoms_i32 = i32::try_from(natoms).ok().filter(|n| n.checked_mul(4).is_some()).ok_or_else(|| unwritable("too many atoms for DCD".into()))?;
    let dt_ps = match time_ps {
        [t0, t1, ..] if t1 > t0 => t1 - t0,
        _ => AKMA_PS,
    };
    // Time of frame i is (ISTART + i·NSAVC)·DELTA: find the smallest NSAVC that makes the
    // first time a whole number of DELTA = dt / NSAVC steps.
    let t0 = time_ps.first().copied().unwrap_or(0.0);
    let nsavc = (1..=1000)
        .find(|&k| {
            let steps = t0 / (dt_ps / f64::from(k));
            (steps - steps.round()).abs() < 1e-6
        })
        .unwrap_or(1);
    let delta_ps = dt_ps / f64::from(nsavc);
    let istart = (t0 / delta_ps).round();
    let istart = if istart.abs() < f64::from(i32::MAX) { istart as i32 } else { 0 };
    let mut icntrl = [0i32; 20];
    icntrl[0] = nframes;
    icntrl[1] = istart;
    icntrl[2] = nsavc;
    icntrl[3] = nframes.saturating_mul(nsavc);
    icntrl[9] = ((delta_ps / AKMA_PS) as f32).to_bits() as i32;
    icntrl[19] = 24;
    let mut out = Vec::with_capacity(300 + coords.len() * (natoms * 12 + 24));
    let mut header = b"CORD".to_vec();
    for v in icntrl {
        header.extend_from_slice(&v.to_le_bytes());
    }
    record(&mut out, &header);
    let mut title = 2i32.to_le_bytes().to_vec();
    for line in ["REMARKS Created by protforge (backbone N, CA, C, O per residue)", "REMARKS Coordinates in Angstrom"] {
        title.extend_from_slice(format!("{line:<80}").as_bytes());
    }
    record(&mut out, &title);
    record(&mut out, &natoms_i32.to_le_bytes());
    let mut buf = Vec::with_capacity(natoms * 4);
    for frame in coords {
        for d in 0..3 {
            buf.clear();
            for p in frame {
                buf.extend_from_slice(&p[d].to_le_bytes());
            }
            record(&mut out, &buf);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let xs: Vec<Vec<[f32; 3]>> = (0..4).map(|f| (0..7).map(|a| [a as f32 + 0.123, f as f32 * -2.5, 1e3 + a as f32]).collect()).collect();
        let t = [5.0, 7.0, 9.0, 11.0];
        let bytes = write_dcd_bytes(&xs, &t, Path::new("t.dcd")).unwrap();
        assert_eq!(bytes.len(), (84 + 8) + (4 + 160 + 8) + 12 + 4 * 3 * (7 * 4 + 8));
        let back = read_dcd_bytes(&bytes, Path::new("t.dcd")).unwrap();
        assert_eq!(back.coords, xs);
        for (a, b) in back.time_ps.iter().zip(t) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// A 2-atom, 1-frame big-endian file with a unit cell, built byte by byte.
    #[test]
    fn hand_built_big_endian_with_cell() {
        fn rec(out: &mut Vec<u8>, payload: &[u8]) {
            out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            out.extend_from_slice(payload);
            out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        }
        let mut header = b"CORD".to_vec();
        let mut icntrl = [0i32; 20];
        icntrl[0] = 1;
        icntrl[1] = 10;
        icntrl[2] = 10;
        icntrl[9] = 2.0f32.to_bits() as i32;
        icntrl[10] = 1;
        icntrl[19] = 24;
        for v in icntrl {
            header.extend_from_slice(&v.to_be_bytes());
        }
        let mut bytes = Vec::new();
        rec(&mut bytes, &header);
        let mut title = 1i32.to_be_bytes().to_vec();
        title.extend_from_slice(&[b' '; 80]);
        rec(&mut bytes, &title);
        rec(&mut bytes, &2i32.to_be_bytes());
        let cell: Vec<u8> = [50.0f64, 90.0, 50.0, 90.0, 90.0, 50.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        rec(&mut bytes, &cell);
        for axis in [[1.5f32, -2.0], [3.25, 4.0], [0.0, 1e4]] {
            let payload: Vec<u8> = axis.iter().flat_map(|v| v.to_be_bytes()).collect();
            rec(&mut bytes, &payload);
        }
        let raw = read_dcd_bytes(&bytes, Path::new("hand.dcd")).unwrap();
        assert_eq!(raw.n_atoms, 2);
        assert_eq!(raw.coords, vec![vec![[1.5, 3.25, 0.0], [-2.0, 4.0, 1e4]]]);
        assert!((raw.time_ps[0] - 10.0 * 2.0 * AKMA_PS).abs() < 1e-12);
        // Cut anywhere inside: a clear truncation error, never a panic.
        for cut in 1..bytes.len() {
            let e = read_dcd_bytes(&bytes[..cut], Path::new("hand.dcd")).unwrap_err();
            assert!(matches!(e, StructureError::Truncated { .. } | StructureError::Parse { .. }), "cut {cut}: {e}");
        }
    }

    #[test]
    fn garbage_is_rejected() {
        let e = read_dcd_bytes(b"\x54\x00\x00\x00garbage", Path::new("g.dcd")).unwrap_err();
        assert!(matches!(e, StructureError::Truncated { .. }), "{e}");
        let e = read_dcd_bytes(b"hello", Path::new("g.dcd")).unwrap_err();
        assert!(matches!(e, StructureError::Parse { .. }), "{e}");
    }
}
