//! Zero-shot motif conditioning for PAR sampling (PAR §"conditional generation"): the motif is
//! downsampled to every scale and, after the decoder has generated that scale, Kabsch-
//! superimposed onto the generated motif points and written over them, so the next scale is
//! conditioned on the true motif shape.
//!
//! Which coarse points are "motif": a point of scale size `s` is the weighted mean of the fine
//! residues in its window (the model's downsampling kernel, [`crate::scales::down_weights`]).
//! It is teacher-forced only when its whole window lies on motif residues of one group, so
//! its target value is known exactly. Short motifs therefore vanish at the coarsest scales.
//!
//! Groups: residues of one group keep their relative placement (one rigid superposition per
//! group and scale); different groups are superimposed independently (multi-motif problems).

use crate::ParError;
use crate::contig::Placement;
use crate::model::ANG_PER_NM;
use crate::scales::{Downsample, down_weights};
use protforge_se3::{Vec3, kabsch};
use protforge_structure::Backbone;

/// Motif residues placed in a chain of `len` residues.
#[derive(Debug, Clone, PartialEq)]
pub struct MotifGuide {
    len: usize,
    /// Chain index of each motif residue.
    positions: Vec<usize>,
    /// Motif CA coordinates (nm, motif centroid at the origin), one per position.
    coords: Vec<[f32; 3]>,
    /// Group id of each motif residue.
    groups: Vec<usize>,
    kind: Downsample,
}

/// The teacher-forcing targets of one scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleTarget {
    /// Indices of the forced points within the scale.
    pub index: Vec<usize>,
    /// Their known coordinates (nm, motif frame).
    pub coords: Vec<[f32; 3]>,
    /// Group id of each forced point.
    pub group: Vec<usize>,
}

impl ScaleTarget {
    /// The known points superimposed onto `x` (the scale's current points, nm), one per
    /// [`Self::index`] entry: one rigid superposition per group (Kabsch with ≥ 3 points,
    /// centroid match with 1–2), fitted on that group's points of `x`.
    ///
    /// # Errors
    /// [`protforge_se3::Se3Error`] if the superposition fails (non-finite coordinates).
    pub fn place(&self, x: &[[f32; 3]]) -> Result<Vec<[f32; 3]>, protforge_se3::Se3Error> {
        let mut out = self.coords.clone();
        let n_groups = self.group.iter().max().map_or(0, |g| g + 1);
        for g in 0..n_groups {
            let idx: Vec<usize> = (0..self.index.len()).filter(|&k| self.group[k] == g).collect();
            if idx.is_empty() {
                continue;
            }
            let known: Vec<Vec3> = idx.iter().map(|&k| vec3(self.coords[k])).collect();
            let current: Vec<Vec3> = idx.iter().map(|&k| vec3(x[self.index[k]])).collect();
            let placed: Vec<Vec3> = if idx.len() >= 3 {
                let sup = kabsch::superpose(&known, &current)?;
                known.iter().map(|&p| sup.rigid.apply(p)).collect()
            } else {
                let shift = current.iter().sum::<Vec3>() / current.len() as f64 - known.iter().sum::<Vec3>() / known.len() as f64;
                known.iter().map(|&p| p + shift).collect()
            };
            for (&k, p) in idx.iter().zip(&placed) {
                out[k] = [p.x as f32, p.y as f32, p.z as f32];
            }
        }
        Ok(out)
    }
}

fn vec3(p: [f32; 3]) -> Vec3 {
    Vec3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}

impl MotifGuide {
    /// The guide for one placement of a contig. `motif` is the motif structure (Å); `groups`
    /// labels each motif segment of the contig in order (see [`crate::problem::MotifProblem`]).
    ///
    /// # Errors
    /// [`ParError::BadCondition`] if the placement references residues the motif lacks or the
    /// group labels do not match the motif segments.
    pub fn new(placement: &Placement, motif: &Backbone, groups: &[String], kind: Downsample) -> Result<Self, ParError> {
        let motif_segments: Vec<_> = placement.segments.iter().filter_map(|s| s.motif_indices.as_ref().map(|m| (s.start, m))).collect();
        if motif_segments.len() != groups.len() {
            return Err(ParError::BadCondition(format!("{} motif segments but {} group labels", motif_segments.len(), groups.len())));
        }
        let mut labels: Vec<&String> = Vec::new();
        let (mut positions, mut raw, mut group_ids) = (Vec::new(), Vec::new(), Vec::new());
        for ((start, src), label) in motif_segments.into_iter().zip(groups) {
            let gid = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                labels.push(label);
                labels.len() - 1
            });
            for (k, &i) in src.iter().enumerate() {
                if i >= motif.len() || !motif.atom_mask[i][1] {
                    return Err(ParError::BadCondition(format!("motif residue {i} has no CA atom")));
                }
                positions.push(start + k);
                raw.push(motif.coords[i][1]);
                group_ids.push(gid);
            }
        }
        if positions.iter().any(|&p| p >= placement.length) {
            return Err(ParError::BadCondition("motif placed beyond the chain end".into()));
        }
        let n = raw.len().max(1) as f32;
        let mut mean = [0.0f32; 3];
        for p in &raw {
            for k in 0..3 {
                mean[k] += p[k] / n;
            }
        }
        let coords = raw.iter().map(|p| [0, 1, 2].map(|k| (p[k] - mean[k]) / ANG_PER_NM as f32)).collect();
        Ok(Self { len: placement.length, positions, coords, groups: group_ids, kind })
    }

    /// Chain length the guide was placed in.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the guide holds no motif residue.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Chain indices of the motif residues.
    #[must_use]
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// The known points at scale `size` (`size == len` is the full chain).
    #[must_use]
    pub fn at_scale(&self, size: usize) -> ScaleTarget {
        let mut fine: Vec<Option<(usize, [f32; 3])>> = vec![None; self.len];
        for ((&p, &c), &g) in self.positions.iter().zip(&self.coords).zip(&self.groups) {
            fine[p] = Some((g, c));
        }
        let mut out = ScaleTarget { index: Vec::new(), coords: Vec::new(), group: Vec::new() };
        if size == self.len {
            for (i, f) in fine.iter().enumerate() {
                if let Some((g, c)) = f {
                    out.index.push(i);
                    out.coords.push(*c);
                    out.group.push(*g);
                }
            }
            return out;
        }
        let w = down_weights(self.kind, self.len, size);
        for j in 0..size {
            let row = &w[j * self.len..(j + 1) * self.len];
            let (mut covered, mut acc, mut group, mut mixed) = (0.0f32, [0.0f32; 3], None, false);
            for (i, &wij) in row.iter().enumerate() {
                if wij <= 1e-6 {
                    continue;
                }
                let Some((g, c)) = fine[i] else { continue };
                covered += wij;
                mixed |= group.is_some_and(|h| h != g);
                group = Some(g);
                for k in 0..3 {
                    acc[k] += wij * c[k];
                }
            }
            if let (Some(g), false) = (group, mixed)
                && covered >= 1.0 - 1e-4
            {
                out.index.push(j);
                out.coords.push(acc);
                out.group.push(g);
            }
        }
        out
    }

    /// Teacher-force one sample's scale: `x` holds the `size` generated points (nm). For each
    /// group, the known points are superimposed onto the generated ones (Kabsch with ≥ 3
    /// points, centroid match with 1–2) and written over them.
    ///
    /// # Errors
    /// [`ParError::BadCondition`] for non-finite coordinates.
    pub fn force(&self, x: &mut [[f32; 3]]) -> Result<(), ParError> {
        let target = self.at_scale(x.len());
        let placed = target.place(x).map_err(|e| ParError::BadCondition(format!("motif superposition: {e}")))?;
        for (&i, p) in target.index.iter().zip(placed) {
            x[i] = p;
        }
        Ok(())
    }

    /// Motif CA-RMSD (Å) of a generated full chain (CA in Å): each group superimposed on its
    /// own, the worst group reported (for a single group this is the usual motif RMSD).
    ///
    /// # Errors
    /// [`ParError::BadCondition`] if `ca` has the wrong length or superposition fails.
    pub fn rmsd(&self, ca: &[[f32; 3]]) -> Result<f64, ParError> {
        if ca.len() != self.len {
            return Err(ParError::BadCondition(format!("chain has {} residues, the motif was placed in {}", ca.len(), self.len)));
        }
        let n_groups = self.groups.iter().max().map_or(0, |g| g + 1);
        let mut worst = 0.0f64;
        for g in 0..n_groups {
            let idx: Vec<usize> = (0..self.positions.len()).filter(|&k| self.groups[k] == g).collect();
            let known: Vec<Vec3> = idx.iter().map(|&k| vec3(self.coords[k]) * ANG_PER_NM).collect();
            let generated: Vec<Vec3> = idx.iter().map(|&k| vec3(ca[self.positions[k]])).collect();
            let sup = kabsch::superpose(&known, &generated).map_err(|e| ParError::BadCondition(format!("motif superposition: {e}")))?;
            worst = worst.max(sup.rmsd);
        }
        Ok(worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contig::Contig;
    use protforge_se3::{Rigid, Rotation};
    use rand::SeedableRng;

    /// A motif structure: chain A residues 10..=29 on a helix-like spiral (Å).
    fn motif() -> Backbone {
        let ca: Vec<[f32; 3]> = (0..20)
            .map(|i| {
                let a = i as f32 * 100f32.to_radians();
                [2.3 * a.cos(), 2.3 * a.sin(), 1.5 * i as f32]
            })
            .collect();
        let mut bb = Backbone::from_ca(&ca, None);
        for (i, r) in bb.residue_ids.iter_mut().enumerate() {
            r.number = 10 + i as i32;
        }
        bb
    }

    fn guide(contig: &str, seed: u64) -> (MotifGuide, Backbone) {
        let bb = motif();
        let c: Contig = contig.parse().unwrap();
        let idx = c.resolve(&bb).unwrap();
        let placement = c.sample(&idx, None, &mut rand::rngs::StdRng::seed_from_u64(seed)).unwrap();
        let groups = vec!["A".to_string(); idx.len()];
        (MotifGuide::new(&placement, &bb, &groups, Downsample::Area).unwrap(), bb)
    }

    #[test]
    fn full_scale_targets_are_the_motif_residues() {
        let (g, _) = guide("7,A10-29,13", 0);
        assert_eq!(g.len(), 40);
        let t = g.at_scale(40);
        assert_eq!(t.index, (7..27).collect::<Vec<_>>());
        // Coarse scales only keep points whose window lies entirely on the motif.
        let t16 = g.at_scale(16);
        assert!(!t16.index.is_empty());
        for &j in &t16.index {
            let (lo, hi) = (j as f32 * 40.0 / 16.0, (j + 1) as f32 * 40.0 / 16.0);
            assert!(lo >= 7.0 - 1e-4 && hi <= 27.0 + 1e-4, "point {j} covers [{lo}, {hi})");
        }
        assert!(g.at_scale(4).index.len() <= 2);
    }

    #[test]
    fn forcing_places_the_motif_rigidly_on_the_generated_segment() {
        let (g, bb) = guide("5,A10-29,5", 1);
        // A "generated" chain whose motif segment is the true motif under a rigid motion plus noise.
        let motion = Rigid::new(Rotation::from_axis_angle(&Vec3::new(0.3, -1.0, 0.5), 1.1).unwrap(), Vec3::new(0.4, -0.2, 0.9));
        let mut x = vec![[0.0f32; 3]; 30];
        for (k, &p) in g.positions().iter().enumerate() {
            let q = motion.apply(vec3(bb.coords[k][1]) / ANG_PER_NM);
            x[p] = [q.x as f32 + 0.01 * (k % 3) as f32, q.y as f32, q.z as f32];
        }
        let before = x.clone();
        g.force(&mut x).unwrap();
        let moved: f32 = g.positions().iter().map(|&p| (0..3).map(|k| (x[p][k] - before[p][k]).abs()).fold(0.0, f32::max)).fold(0.0, f32::max);
        assert!(moved < 0.03, "forced motif should sit on the generated one (moved {moved} nm)");
        assert_eq!(x[0], before[0], "scaffold points are left alone");
        // The forced chain has motif RMSD ≈ 0 (rigid copy of the motif).
        let ang: Vec<[f32; 3]> = x.iter().map(|p| p.map(|v| v * ANG_PER_NM as f32)).collect();
        assert!(g.rmsd(&ang).unwrap() < 1e-3);
        // An unrelated chain has a large motif RMSD.
        let line: Vec<[f32; 3]> = (0..30).map(|i| [3.8 * i as f32, 0.0, 0.0]).collect();
        assert!(g.rmsd(&line).unwrap() > 2.0);
        assert!(g.rmsd(&line[..10]).is_err());
    }

    #[test]
    fn groups_are_superimposed_independently() {
        let bb = motif();
        let c: Contig = "3,A10-17,6,A22-29,3".parse().unwrap();
        let idx = c.resolve(&bb).unwrap();
        let placement = c.sample(&idx, None, &mut rand::rngs::StdRng::seed_from_u64(0)).unwrap();
        let groups = vec!["A".to_string(), "B".to_string()];
        let g = MotifGuide::new(&placement, &bb, &groups, Downsample::Area).unwrap();
        // Move the second segment rigidly away: per-group RMSD stays ~0.
        let shift = Vec3::new(2.0, 0.0, 0.0);
        let ca: Vec<[f32; 3]> = (0..placement.length)
            .map(|i| match g.positions().iter().position(|&p| p == i) {
                Some(k) => {
                    let p = vec3(bb.coords[if k < 8 { k } else { k + 4 }][1]) + if k < 8 { Vec3::zeros() } else { shift };
                    [p.x as f32, p.y as f32, p.z as f32]
                }
                None => [0.0; 3],
            })
            .collect();
        assert!(g.rmsd(&ca).unwrap() < 1e-3);
        assert!(MotifGuide::new(&placement, &bb, &groups[..1], Downsample::Area).is_err());
    }
}
