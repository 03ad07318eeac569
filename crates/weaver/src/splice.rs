//! The spliced CA distance map that conditions ProteinWeaver's assembly (Ma et al. 2024 §3):
//! entries between two residues of the same domain are their real CA–CA distance (Å); every
//! other entry — between domains, and any pair involving a linker residue — is −1 ("unknown").

use crate::WeaverError;
use protforge_se3::Vec3;
use serde::Serialize;

/// Marker of an unknown (inter-domain or linker) entry.
pub const UNKNOWN: f32 = -1.0;

/// A spliced distance map over a chain of `len` residues.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplicedMap {
    /// Chain length.
    pub len: usize,
    /// `[len × len]` row-major distances (Å), [`UNKNOWN`] off the intra-domain blocks.
    pub dist: Vec<f32>,
    /// Domain of each residue; `None` for linker residues.
    pub domain_of: Vec<Option<usize>>,
}

impl SplicedMap {
    /// Entry `(i, j)`.
    #[must_use]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.dist[i * self.len + j]
    }

    /// Residue ranges `(start, end_exclusive)` of each domain, in chain order (a domain that
    /// is not contiguous contributes several ranges).
    #[must_use]
    pub fn domain_ranges(&self) -> Vec<(usize, usize, usize)> {
        let mut out: Vec<(usize, usize, usize)> = Vec::new();
        for (i, d) in self.domain_of.iter().enumerate() {
            let Some(d) = *d else { continue };
            match out.last_mut() {
                Some(last) if last.0 == d && last.2 == i => last.2 = i + 1,
                _ => out.push((d, i, i + 1)),
            }
        }
        out
    }
}

/// The spliced map of a chain `ca` (Å) whose residues belong to the domains in `domain_of`
/// (`None` = linker/free residue). Used for training examples (native chains).
///
/// # Errors
/// [`WeaverError::BadLayout`] if the lengths differ; [`WeaverError::NonFinite`].
pub fn spliced_distance_map(ca: &[Vec3], domain_of: &[Option<usize>]) -> Result<SplicedMap, WeaverError> {
    if ca.len() != domain_of.len() {
        return Err(WeaverError::BadLayout(format!("{} coordinates but {} domain labels", ca.len(), domain_of.len())));
    }
    if let Some(index) = ca.iter().position(|p| !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite())) {
        return Err(WeaverError::NonFinite { context: "spliced_distance_map", index });
    }
    let n = ca.len();
    let mut dist = vec![UNKNOWN; n * n];
    for i in 0..n {
        for j in 0..n {
            if let (Some(a), Some(b)) = (domain_of[i], domain_of[j])
                && a == b
            {
                dist[i * n + j] = (ca[i] - ca[j]).norm() as f32;
            }
        }
    }
    Ok(SplicedMap { len: n, dist, domain_of: domain_of.to_vec() })
}

/// Domain labels of an assembly layout: domain 0, linker 0, domain 1, linker 1, …
/// (`linkers.len() == domain_lengths.len() − 1`).
///
/// # Errors
/// [`WeaverError::BadLayout`] for fewer than two domains, an empty domain or a wrong number
/// of linkers.
pub fn layout(domain_lengths: &[usize], linkers: &[usize]) -> Result<Vec<Option<usize>>, WeaverError> {
    if domain_lengths.len() < 2 {
        return Err(WeaverError::BadLayout(format!("assembly needs at least 2 domains, got {}", domain_lengths.len())));
    }
    if linkers.len() + 1 != domain_lengths.len() {
        return Err(WeaverError::BadLayout(format!("{} domains need {} linkers, got {}", domain_lengths.len(), domain_lengths.len() - 1, linkers.len())));
    }
    if let Some(k) = domain_lengths.iter().position(|&l| l == 0) {
        return Err(WeaverError::BadLayout(format!("domain {} is empty", k + 1)));
    }
    let mut out = Vec::new();
    for (k, &l) in domain_lengths.iter().enumerate() {
        out.extend(std::iter::repeat_n(Some(k), l));
        if let Some(&gap) = linkers.get(k) {
            out.extend(std::iter::repeat_n(None, gap));
        }
    }
    Ok(out)
}

/// The spliced map for assembling `domains` (each a CA trace in Å, any frame) joined by
/// linkers of the given lengths.
///
/// # Errors
/// As [`layout`]; [`WeaverError::NonFinite`].
pub fn assemble_map(domains: &[Vec<Vec3>], linkers: &[usize]) -> Result<SplicedMap, WeaverError> {
    let lengths: Vec<usize> = domains.iter().map(Vec::len).collect();
    let labels = layout(&lengths, linkers)?;
    // Place the domains' own coordinates at their chain positions (linkers at the origin:
    // their entries are unknown anyway).
    let mut ca = Vec::with_capacity(labels.len());
    let mut next = vec![0usize; domains.len()];
    for l in &labels {
        match l {
            Some(d) => {
                ca.push(domains[*d][next[*d]]);
                next[*d] += 1;
            }
            None => ca.push(Vec3::zeros()),
        }
    }
    spliced_distance_map(&ca, &labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, offset: f64) -> Vec<Vec3> {
        (0..n).map(|i| Vec3::new(3.8 * i as f64 + offset, 0.0, 0.0)).collect()
    }

    #[test]
    fn intra_blocks_are_real_and_everything_else_unknown() {
        let m = assemble_map(&[line(3, 0.0), line(2, 100.0)], &[2]).unwrap();
        assert_eq!(m.len, 7);
        assert_eq!(m.domain_of, vec![Some(0), Some(0), Some(0), None, None, Some(1), Some(1)]);
        assert!((m.get(0, 2) - 7.6).abs() < 1e-5);
        assert!((m.get(6, 5) - 3.8).abs() < 1e-5);
        assert_eq!(m.get(0, 0), 0.0);
        // Inter-domain and linker entries.
        assert_eq!(m.get(0, 5), UNKNOWN);
        assert_eq!(m.get(3, 3), UNKNOWN);
        assert_eq!(m.get(2, 3), UNKNOWN);
        // Symmetric.
        for i in 0..7 {
            for j in 0..7 {
                assert_eq!(m.get(i, j), m.get(j, i));
            }
        }
        assert_eq!(m.domain_ranges(), vec![(0, 0, 3), (1, 5, 7)]);
    }

    #[test]
    fn native_chain_with_a_discontinuous_domain() {
        let ca = line(6, 0.0);
        let labels = [Some(0), Some(0), Some(1), Some(1), Some(0), None];
        let m = spliced_distance_map(&ca, &labels).unwrap();
        assert!((m.get(0, 4) - 15.2).abs() < 1e-4);
        assert_eq!(m.get(1, 2), UNKNOWN);
        assert_eq!(m.get(5, 5), UNKNOWN);
        assert_eq!(m.domain_ranges(), vec![(0, 0, 2), (1, 2, 4), (0, 4, 5)]);
    }

    #[test]
    fn bad_layouts() {
        assert!(layout(&[10], &[]).is_err());
        assert!(layout(&[10, 20], &[]).is_err());
        assert!(layout(&[10, 0], &[5]).is_err());
        assert!(spliced_distance_map(&line(3, 0.0), &[Some(0)]).is_err());
        let err = layout(&[10, 20, 30], &[5]).unwrap_err().to_string();
        assert!(err.contains("3 domains need 2 linkers"), "{err}");
    }
}
