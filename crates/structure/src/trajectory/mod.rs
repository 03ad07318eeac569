//! [`Trajectory`]: frames of one [`Backbone`], read from and written to multi-model PDB,
//! XTC (molly) and DCD (our codec).
//!
//! Atom selection: an XTC/DCD file holds bare coordinates, so reading one needs a topology
//! (PDB/mmCIF) file. Its atoms, counted in file order including hydrogens, waters and
//! ligands as MD engines count them, give the index of every backbone atom
//! ([`crate::io::Topology`]). A trajectory whose atom count equals the number of present
//! backbone atoms of the topology (what we write) is mapped in residue order N, CA, C, O.
//!
//! Our XTC/DCD output holds only the present backbone atoms in residue order;
//! [`Trajectory::write_with_topology`] writes the matching topology PDB beside it.

pub mod dcd;
pub mod xtc;

use std::path::Path;

use crate::backbone::Backbone;
use crate::error::{MAX_ABS_COORD, StructureError};
use crate::io::{self, Format, ReadOptions, Topology};
pub use xtc::RawFrames;

/// Trajectory file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrajFormat {
    /// Multi-model PDB (`MODEL`/`ENDMDL` per frame), `.pdb`/`.ent`, optionally `.gz`.
    Pdb,
    /// GROMACS XTC (`.xtc`), nm on disk, Å in memory.
    Xtc,
    /// CHARMM/NAMD DCD (`.dcd`), Å.
    Dcd,
}

impl TrajFormat {
    /// Format implied by the file extension (case-insensitive); `None` otherwise.
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "xtc" => Some(Self::Xtc),
            "dcd" => Some(Self::Dcd),
            _ => match Format::from_path(path) {
                Some(Format::Pdb) => Some(Self::Pdb),
                _ => None,
            },
        }
    }
}

/// Frames of one backbone.
///
/// `frames[f][i]` holds N, CA, C, O of residue `i` of `topology` in frame `f`, in Å;
/// atoms masked in `topology.atom_mask` are zero. `time_ps[f]` is the time of frame `f`
/// in ps (for PDB input, which has no time, the frame index).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectory {
    /// Residues, sequence, chains and atom mask shared by all frames (coordinates: frame 0).
    pub topology: Backbone,
    /// `[n_frames][n_res][4][3]` coordinates in Å.
    pub frames: Vec<Vec<[[f32; 3]; 4]>>,
    /// `[n_frames]` time in ps.
    pub time_ps: Vec<f64>,
}

impl Trajectory {
    /// A trajectory from its parts, checking that every frame has `topology.len()` residues
    /// and that there is one time per frame.
    ///
    /// # Errors
    /// [`StructureError::Mismatch`] (path `<memory>`) when sizes disagree.
    pub fn new(topology: Backbone, frames: Vec<Vec<[[f32; 3]; 4]>>, time_ps: Vec<f64>) -> Result<Self, StructureError> {
        let t = Self { topology, frames, time_ps };
        t.check_shape(Path::new(io::MEMORY_LABEL))?;
        Ok(t)
    }

    /// Number of frames.
    #[must_use]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `f` as a [`Backbone`] (the topology with that frame's coordinates).
    #[must_use]
    pub fn frame(&self, f: usize) -> Option<Backbone> {
        let coords = self.frames.get(f)?;
        Some(Backbone { coords: coords.clone(), ..self.topology.clone() })
    }

    fn check_shape(&self, path: &Path) -> Result<(), StructureError> {
        let mismatch = |detail: String| StructureError::Mismatch { path: path.to_path_buf(), detail };
        if self.time_ps.len() != self.frames.len() {
            return Err(mismatch(format!("{} frames but {} times", self.frames.len(), self.time_ps.len())));
        }
        let n = self.topology.len();
        if let Some((f, fr)) = self.frames.iter().enumerate().find(|(_, fr)| fr.len() != n) {
            return Err(mismatch(format!("frame {f} has {} residues, the topology has {n}", fr.len())));
        }
        Ok(())
    }

    /// Read a trajectory; the format comes from the extension of `path` ([`TrajFormat`]).
    ///
    /// A multi-model PDB is its own topology (`topology` is ignored; all models must hold
    /// the same backbone atoms). XTC and DCD need `topology`, a PDB/mmCIF file whose atoms
    /// define the order in the trajectory (see the module docs).
    ///
    /// # Errors
    /// [`StructureError`] naming the trajectory or topology file: I/O, format, parse,
    /// truncation, and [`StructureError::Mismatch`] when atom counts or models disagree or
    /// the topology is missing.
    pub fn read(path: &Path, topology: Option<&Path>) -> Result<Self, StructureError> {
        let format = TrajFormat::from_path(path).ok_or_else(|| StructureError::UnsupportedFormat {
            path: path.to_path_buf(),
            detail: "expected a trajectory .pdb (multi-model), .xtc or .dcd".into(),
        })?;
        if format == TrajFormat::Pdb {
            return Self::read_multi_model_pdb(path);
        }
        let top_path = topology.ok_or_else(|| StructureError::Mismatch {
            path: path.to_path_buf(),
            detail: "an XTC/DCD trajectory needs a topology file (PDB or mmCIF)".into(),
        })?;
        let top = io::read_topology(top_path, &ReadOptions::default())?;
        let bytes = std::fs::read(path).map_err(|e| StructureError::io(path, e))?;
        let raw = match format {
            TrajFormat::Xtc => xtc::read_xtc_bytes(&bytes, path)?,
            _ => dcd::read_dcd_bytes(&bytes, path)?,
        };
        Self::from_raw(raw, &top, path)
    }

    /// Map raw coordinate frames onto a topology.
    ///
    /// If the frames have `topology.n_atoms` atoms, backbone atoms are taken by
    /// `topology.atom_index`; if they have exactly as many atoms as the topology has present
    /// backbone atoms, those are taken in residue order N, CA, C, O.
    ///
    /// # Errors
    /// [`StructureError::Mismatch`] naming `path` when the atom counts fit neither rule.
    pub fn from_raw(raw: RawFrames, topology: &Topology, path: &Path) -> Result<Self, StructureError> {
        let bb = &topology.backbone;
        let n_present: usize = bb.atom_mask.iter().map(|m| m.iter().filter(|&&b| b).count()).sum();
        let index: Vec<[Option<usize>; 4]> = if raw.n_atoms == topology.n_atoms {
            topology.atom_index.clone()
        } else if raw.n_atoms == n_present {
            let mut next = 0usize;
            bb.atom_mask
                .iter()
                .map(|m| {
                    m.map(|present| {
                        present.then(|| {
                            next += 1;
                            next - 1
                        })
                    })
                })
                .collect()
        } else {
            return Err(StructureError::Mismatch {
                path: path.to_path_buf(),
                detail: format!(
                    "trajectory has {} atoms per frame, topology has {} atoms ({n_present} backbone atoms)",
                    raw.n_atoms, topology.n_atoms
                ),
            });
        };
        let frames = raw
            .coords
            .iter()
            .map(|xs| {
                index
                    .iter()
                    .map(|idx| idx.map(|a| a.and_then(|a| xs.get(a).copied()).unwrap_or([0.0; 3])))
                    .collect()
            })
            .collect();
        let mut topo = bb.clone();
        for (r, idx) in topo.atom_mask.iter_mut().zip(&index) {
            for k in 0..4 {
                r[k] = r[k] && idx[k].is_some();
            }
        }
        let t = Self { topology: topo, frames, time_ps: raw.time_ps };
        t.check_coordinates(path)?;
        Ok(t)
    }

    fn read_multi_model_pdb(path: &Path) -> Result<Self, StructureError> {
        let bytes = std::fs::read(path).map_err(|e| StructureError::io(path, e))?;
        Self::read_multi_model_pdb_bytes(&bytes, path)
    }

    /// Read a multi-model PDB (or mmCIF) held in memory; `path` labels errors.
    ///
    /// # Errors
    /// As [`crate::io::read_backbone`], plus [`StructureError::Mismatch`] when a model's
    /// residues or present atoms differ from the first model's.
    pub fn read_multi_model_pdb_bytes(bytes: &[u8], path: &Path) -> Result<Self, StructureError> {
        let parsed = io::parse_bytes(bytes, Format::from_path(path).or(Some(Format::Pdb)), path, false)?;
        let mut models = parsed.pdb.models();
        let first = models.next().ok_or_else(|| StructureError::NoProtein { path: path.to_path_buf() })?;
        let topology = io::extract_model(first, path)?.backbone;
        if topology.is_empty() {
            return Err(StructureError::NoProtein { path: path.to_path_buf() });
        }
        let mut frames = vec![topology.coords.clone()];
        for (m, model) in models.enumerate() {
            let bb = io::extract_model(model, path)?.backbone;
            if bb.chain_ids != topology.chain_ids || bb.residue_ids != topology.residue_ids || bb.atom_mask != topology.atom_mask {
                return Err(StructureError::Mismatch {
                    path: path.to_path_buf(),
                    detail: format!("model {} has different residues or backbone atoms than model 1", m + 2),
                });
            }
            frames.push(bb.coords);
        }
        let time_ps = (0..frames.len()).map(|f| f as f64).collect();
        Ok(Self { topology, frames, time_ps })
    }

    /// Reject non-finite or huge (> [`MAX_ABS_COORD`] Å) coordinates of present atoms.
    fn check_coordinates(&self, path: &Path) -> Result<(), StructureError> {
        for (f, coords) in self.frames.iter().enumerate() {
            io::check_coords(&self.topology, coords, path, -MAX_ABS_COORD, MAX_ABS_COORD).map_err(|e| match e {
                StructureError::BadCoordinates { path, residue, detail } => {
                    StructureError::BadCoordinates { path, residue, detail: format!("frame {f}: {detail}") }
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// `[n_frames][n_present_atoms][3]` positions of the present backbone atoms in residue
    /// order N, CA, C, O (Å): the atom layout of our XTC/DCD output.
    #[must_use]
    pub fn present_atom_coords(&self) -> Vec<Vec<[f32; 3]>> {
        self.frames
            .iter()
            .map(|fr| {
                fr.iter()
                    .zip(&self.topology.atom_mask)
                    .flat_map(|(r, m)| (0..4).filter(|&k| m[k]).map(|k| r[k]))
                    .collect()
            })
            .collect()
    }

    /// Write the trajectory atomically; the format comes from the extension of `path`.
    /// PDB gets one `MODEL` per frame; XTC (precision 1000/nm) and DCD hold the present
    /// backbone atoms in residue order N, CA, C, O.
    ///
    /// # Errors
    /// [`StructureError::UnsupportedFormat`] for other extensions,
    /// [`StructureError::Mismatch`] for inconsistent sizes, [`StructureError::BadCoordinates`]
    /// for non-finite or out-of-range values, [`StructureError::Unwritable`] for data the
    /// format cannot hold, [`StructureError::Io`] naming `path`.
    pub fn write(&self, path: &Path) -> Result<(), StructureError> {
        let format = TrajFormat::from_path(path).ok_or_else(|| StructureError::UnsupportedFormat {
            path: path.to_path_buf(),
            detail: "expected a trajectory .pdb, .xtc or .dcd".into(),
        })?;
        self.check_shape(path)?;
        io::check_lengths(&self.topology, path)?;
        self.check_coordinates(path)?;
        let bytes = match format {
            TrajFormat::Pdb => {
                io::check_pdb_ids(&self.topology, path)?;
                for coords in &self.frames {
                    io::check_coords(&self.topology, coords, path, io::PDB_COORD_MIN, io::PDB_COORD_MAX)?;
                }
                io::pdb_models_string(&self.topology, &self.frames).into_bytes()
            }
            TrajFormat::Xtc => xtc::write_xtc_bytes(&self.present_atom_coords(), &self.time_ps, xtc::DEFAULT_PRECISION, path)?,
            TrajFormat::Dcd => dcd::write_dcd_bytes(&self.present_atom_coords(), &self.time_ps, path)?,
        };
        io::write_atomic(path, &bytes)
    }

    /// [`Trajectory::write`] plus a single-model topology PDB (frame 0, or the topology
    /// coordinates if there are no frames) whose atoms match the trajectory's atom order.
    ///
    /// # Errors
    /// As [`Trajectory::write`] and [`crate::io::write_pdb`].
    pub fn write_with_topology(&self, path: &Path, topology_pdb: &Path) -> Result<(), StructureError> {
        self.write(path)?;
        let top = self.frame(0).unwrap_or_else(|| self.topology.clone());
        io::write_pdb(topology_pdb, &top)
    }
}
