//! Fixed-radius neighbour search with a cell list (Allen & Tildesley, *Computer Simulation of
//! Liquids*, 1987, §5.3.2): points are binned into cubic cells whose edge equals the cutoff, so
//! every neighbour of a point lies in its own cell or one of the 26 around it. Building is
//! O(n); a query costs the number of points in those 27 cells.
//!
//! Used for the CA pairs of DSSP's H-bond search (9 Å), the CA clash search (3 Å) and the
//! CA-only strand bridges.

use std::collections::HashMap;

use protforge_se3::Vec3;

/// Integer cell coordinates.
type Cell = (i64, i64, i64);

/// Points binned into cubic cells of edge `cutoff` (Å), for finding all pairs closer than the
/// cutoff. Points with non-finite coordinates are never anyone's neighbour.
#[derive(Debug)]
pub(crate) struct CellList<'a> {
    points: &'a [Vec3],
    cutoff: f64,
    cells: HashMap<Cell, Vec<usize>>,
}

impl<'a> CellList<'a> {
    /// Bin `points` (Å) for neighbours closer than `cutoff` (Å). A cutoff that is not a
    /// positive finite number gives a list without neighbours.
    pub(crate) fn new(points: &'a [Vec3], cutoff: f64) -> Self {
        let usable = cutoff.is_finite() && cutoff > 0.0;
        let mut cells: HashMap<Cell, Vec<usize>> = HashMap::new();
        if usable {
            for (i, p) in points.iter().enumerate() {
                if p.iter().all(|x| x.is_finite()) {
                    cells.entry(cell_of(p, cutoff)).or_default().push(i);
                }
            }
        }
        Self {
            points,
            cutoff: if usable { cutoff } else { 0.0 },
            cells,
        }
    }

    /// Calls `f(j)` for every `j ≠ i` with |points[j] − points[i]| < cutoff, in no particular
    /// order.
    pub(crate) fn for_each_neighbour(&self, i: usize, mut f: impl FnMut(usize)) {
        let Some(p) = self.points.get(i) else { return };
        if self.cells.is_empty() || !p.iter().all(|x| x.is_finite()) {
            return;
        }
        let cut2 = self.cutoff * self.cutoff;
        let (x, y, z) = cell_of(p, self.cutoff);
        for dx in -1..=1i64 {
            for dy in -1..=1i64 {
                for dz in -1..=1i64 {
                    let key = (
                        x.saturating_add(dx),
                        y.saturating_add(dy),
                        z.saturating_add(dz),
                    );
                    let Some(members) = self.cells.get(&key) else {
                        continue;
                    };
                    for &j in members {
                        if j != i && (self.points[j] - p).norm_squared() < cut2 {
                            f(j);
                        }
                    }
                }
            }
        }
    }

    /// All pairs `(i, j)`, `i < j`, closer than the cutoff, sorted by `i` then `j`.
    pub(crate) fn pairs(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut row = Vec::new();
        for i in 0..self.points.len() {
            row.clear();
            self.for_each_neighbour(i, |j| {
                if j > i {
                    row.push(j);
                }
            });
            row.sort_unstable();
            out.extend(row.iter().map(|&j| (i, j)));
        }
        out
    }
}

/// Cell of a finite point; `as` saturates, so far-away points cannot overflow.
fn cell_of(p: &Vec3, edge: f64) -> Cell {
    (
        (p.x / edge).floor() as i64,
        (p.y / edge).floor() as i64,
        (p.z / edge).floor() as i64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All pairs closer than `cutoff` by brute force.
    fn brute(points: &[Vec3], cutoff: f64) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for i in 0..points.len() {
            for j in i + 1..points.len() {
                if (points[i] - points[j]).norm() < cutoff {
                    out.push((i, j));
                }
            }
        }
        out
    }

    #[test]
    fn pairs_match_brute_force_on_a_scattered_set() {
        // Deterministic pseudo-random points in a 30 Å box, including negative coordinates
        // (cells below zero) and exact duplicates.
        let mut s = 12345u64;
        let mut next = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 30.0 - 15.0
        };
        let mut pts: Vec<Vec3> = (0..300)
            .map(|_| Vec3::new(next(), next(), next()))
            .collect();
        pts.push(pts[7]);
        for cutoff in [0.7, 3.0, 9.0, 40.0] {
            assert_eq!(
                CellList::new(&pts, cutoff).pairs(),
                brute(&pts, cutoff),
                "cutoff {cutoff}"
            );
        }
    }

    #[test]
    fn neighbours_are_symmetric_and_exclude_self() {
        let pts = [
            Vec3::zeros(),
            Vec3::new(2.9, 0.0, 0.0),
            Vec3::new(3.1, 0.0, 0.0),
        ];
        let list = CellList::new(&pts, 3.0);
        let mut of0 = Vec::new();
        list.for_each_neighbour(0, |j| of0.push(j));
        assert_eq!(of0, [1]);
        let mut of1 = Vec::new();
        list.for_each_neighbour(1, |j| of1.push(j));
        of1.sort_unstable();
        assert_eq!(of1, [0, 2]);
    }

    #[test]
    fn odd_input_gives_no_neighbours() {
        let pts = [
            Vec3::zeros(),
            Vec3::new(f64::NAN, 0.0, 0.0),
            Vec3::new(1e300, -1e300, f64::INFINITY),
            Vec3::new(0.5, 0.0, 0.0),
        ];
        assert_eq!(CellList::new(&pts, 3.0).pairs(), [(0, 3)]);
        assert!(CellList::new(&pts, 0.0).pairs().is_empty());
        assert!(CellList::new(&pts, -3.0).pairs().is_empty());
        assert!(CellList::new(&pts, f64::NAN).pairs().is_empty());
        assert!(CellList::new(&[], 3.0).pairs().is_empty());
        let mut none = true;
        CellList::new(&pts, 3.0).for_each_neighbour(99, |_| none = false);
        assert!(none);
    }
}
