//! Motif-scaffolding problem files of the public benchmarks.
//!
//! - **Genie2** (`aqlaboratory/genie2`, `data/design25` and `data/multimotifs`): a PDB file
//!   whose `REMARK 999` lines hold the specification —
//!   `INPUT  min max` (scaffold segment), `INPUT  X start end [G]` (motif segment of chain `X`,
//!   optional motif group `G`), `MINIMUM TOTAL LENGTH n`, `MAXIMUM TOTAL LENGTH n`, `NAME s`.
//!   Segments of one group keep their relative placement; different groups are placed
//!   independently (multi-motif problems).
//! - **FrameFlow** (`microsoft/protein-frame-flow`, `motif_scaffolding/benchmark.csv`): CSV rows
//!   `index,target,contig,length,motif_path` with an RFdiffusion contig and an optional
//!   `min-max` total length; the motif PDB is given separately.

use crate::contig::{Contig, Segment};
use crate::ParError;

/// One motif-scaffolding problem: contig, total-length range and motif groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MotifProblem {
    /// Problem name (`5TPN`, `1PRW_two`, …).
    pub name: String,
    /// The contig.
    pub contig: Contig,
    /// Allowed total length, if the problem restricts it.
    pub length: Option<(usize, usize)>,
    /// Group label of each motif segment, in contig order (all `"A"` when ungrouped).
    pub groups: Vec<String>,
}

fn bad(source: &str, reason: impl Into<String>) -> ParError {
    ParError::BadProblem { file: source.to_string(), reason: reason.into() }
}

/// Parse `min-max` (or a single `n`) as an inclusive length range.
///
/// # Errors
/// [`ParError::BadProblem`] naming `source` for anything else.
pub fn parse_length_range(text: &str, source: &str) -> Result<(usize, usize), ParError> {
    let text = text.trim();
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| bad(source, format!("length '{text}' is not a number or a range like 50-75")));
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let n = parse(text)?;
            (n, n)
        }
    };
    if lo == 0 || hi < lo {
        return Err(bad(source, format!("length range '{text}' is empty")));
    }
    Ok((lo, hi))
}

impl MotifProblem {
    /// A problem from a contig (and optional total-length range), all motif segments in one group.
    #[must_use]
    pub fn from_contig(name: &str, contig: Contig, length: Option<(usize, usize)>) -> Self {
        let n = contig.segments().iter().filter(|s| matches!(s, Segment::Motif { .. })).count();
        Self { name: name.to_string(), contig, length, groups: vec!["A".to_string(); n] }
    }

    /// Whether `pdb_text` carries a Genie2 `REMARK 999` specification.
    #[must_use]
    pub fn has_genie2_spec(pdb_text: &str) -> bool {
        pdb_text.lines().any(|l| l.starts_with("REMARK 999") && l[10..].trim_start().starts_with("INPUT"))
    }

    /// Read the Genie2 `REMARK 999` specification of a motif PDB file; `source` names the
    /// file in errors.
    ///
    /// # Errors
    /// [`ParError::BadProblem`] for malformed or missing `INPUT` lines.
    pub fn from_genie2(pdb_text: &str, source: &str) -> Result<Self, ParError> {
        let mut name = None;
        let (mut min_len, mut max_len) = (None, None);
        let mut segments = Vec::new();
        let mut groups = Vec::new();
        for (lineno, line) in pdb_text.lines().enumerate() {
            let Some(rest) = line.strip_prefix("REMARK 999") else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let at = |why: &str| bad(source, format!("line {}: {why}: '{}'", lineno + 1, line.trim_end()));
            match fields.as_slice() {
                ["NAME", n, ..] => name = Some((*n).to_string()),
                ["MINIMUM", "TOTAL", "LENGTH", n] => min_len = Some(n.parse::<usize>().map_err(|_| at("bad length"))?),
                ["MAXIMUM", "TOTAL", "LENGTH", n] => max_len = Some(n.parse::<usize>().map_err(|_| at("bad length"))?),
                ["INPUT", a, b] => {
                    let (min, max) = (a.parse::<usize>().map_err(|_| at("bad scaffold range"))?, b.parse::<usize>().map_err(|_| at("bad scaffold range"))?);
                    if max < min {
                        return Err(at("scaffold range ends before it starts"));
                    }
                    segments.push(Segment::Scaffold { min, max });
                }
                ["INPUT", chain, s, e, group @ ..] if group.len() <= 1 => {
                    let (start, end) = (s.parse::<i32>().map_err(|_| at("bad residue number"))?, e.parse::<i32>().map_err(|_| at("bad residue number"))?);
                    if end < start || !chain.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Err(at("bad motif segment"));
                    }
                    segments.push(Segment::Motif { chain: (*chain).to_string(), start, end });
                    groups.push(group.first().map_or_else(|| "A".to_string(), |g| (*g).to_string()));
                }
                ["INPUT", ..] => return Err(at("expected 'INPUT min max' or 'INPUT chain start end [group]'")),
                _ => {}
            }
        }
        if groups.is_empty() {
            return Err(bad(source, "no REMARK 999 INPUT motif segment (not a Genie2 problem file)"));
        }
        let text = segments.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let contig = Contig::from_segments(&text, segments)?;
        let length = match (min_len, max_len) {
            (None, None) => None,
            (lo, hi) => Some((lo.unwrap_or(1), hi.unwrap_or(usize::MAX))),
        };
        let name = name.unwrap_or_else(|| source.to_string());
        Ok(Self { name, contig, length, groups })
    }

    /// Every problem of a FrameFlow benchmark CSV (`index,target,contig,length,motif_path`).
    ///
    /// # Errors
    /// [`ParError::BadProblem`] naming `source` and the row for malformed rows.
    pub fn from_frameflow_csv(csv: &str, source: &str) -> Result<Vec<Self>, ParError> {
        let mut lines = csv.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| bad(source, "empty CSV"))?;
        let cols = split_csv(header);
        let col = |name: &str| cols.iter().position(|c| c.trim() == name).ok_or_else(|| bad(source, format!("no '{name}' column")));
        let (c_target, c_contig, c_length) = (col("target")?, col("contig")?, col("length")?);
        let mut out = Vec::new();
        for (lineno, line) in lines {
            let f = split_csv(line);
            let row = format!("{source} line {}", lineno + 1);
            let get = |c: usize| f.get(c).map(|s| s.trim()).ok_or_else(|| bad(&row, "too few columns"));
            let target = get(c_target)?;
            let contig: Contig = get(c_contig)?.parse()?;
            let length = match get(c_length)? {
                "" => None,
                text => Some(parse_length_range(text, &row)?),
            };
            out.push(Self::from_contig(target, contig, length));
        }
        Ok(out)
    }
}

/// Split one CSV line on commas outside double quotes; quotes are removed.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPN: &str = "REMARK 999 NAME   5TPN\nREMARK 999 PDB    5TPN\nREMARK 999 INPUT     10  40\n\
REMARK 999 INPUT  A 163 181\nREMARK 999 INPUT     10  40\nREMARK 999 MINIMUM TOTAL LENGTH      50\n\
REMARK 999 MAXIMUM TOTAL LENGTH      75\n\nATOM    817  CA  GLU A 163       4.923 -52.976 -50.032  1.00 75.19           C\n";

    #[test]
    fn genie2_single_motif() {
        assert!(MotifProblem::has_genie2_spec(TPN));
        let p = MotifProblem::from_genie2(TPN, "5tpn.pdb").unwrap();
        assert_eq!(p.name, "5TPN");
        assert_eq!(p.contig.text(), "10-40,A163-181,10-40");
        assert_eq!(p.length, Some((50, 75)));
        assert_eq!(p.groups, vec!["A"]);
    }

    #[test]
    fn genie2_multi_motif_groups() {
        let text = "REMARK 999 NAME   1PRW_two\nREMARK 999 INPUT      5  20\nREMARK 999 INPUT  A  16  35 A\n\
REMARK 999 INPUT     10  25\nREMARK 999 INPUT  A  89 108 B\nREMARK 999 INPUT      5  20\n";
        let p = MotifProblem::from_genie2(text, "x.pdb").unwrap();
        assert_eq!(p.contig.text(), "5-20,A16-35,10-25,A89-108,5-20");
        assert_eq!(p.groups, vec!["A", "B"]);
        assert_eq!(p.length, None);
    }

    #[test]
    fn genie2_errors_name_the_line() {
        let err = MotifProblem::from_genie2("REMARK 999 INPUT  A 20 10\n", "m.pdb").unwrap_err().to_string();
        assert!(err.contains("m.pdb") && err.contains("line 1"), "{err}");
        let err = MotifProblem::from_genie2("REMARK 999 INPUT  x\n", "m.pdb").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = MotifProblem::from_genie2("ATOM\n", "m.pdb").unwrap_err().to_string();
        assert!(err.contains("no REMARK 999"), "{err}");
        assert!(!MotifProblem::has_genie2_spec("REMARK 999 NAME x\n"));
    }

    #[test]
    fn frameflow_csv() {
        let csv = ",target,contig,length,motif_path\n0,1PRW,\"5-20,A16-35,10-25,A52-71,5-20\",,./t/1PRW.pdb\n\
2,5TPN,\"10-40,A163-181,10-40\",50-75,./t/5TPN.pdb\n";
        let ps = MotifProblem::from_frameflow_csv(csv, "b.csv").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].name, "1PRW");
        assert_eq!(ps[0].length, None);
        assert_eq!(ps[0].groups.len(), 2);
        assert_eq!(ps[1].length, Some((50, 75)));
        let err = MotifProblem::from_frameflow_csv(",target,contig,length\n0,X,\"10,A1-5\",ab\n", "b.csv").unwrap_err().to_string();
        assert!(err.contains("b.csv line 2"), "{err}");
    }

    #[test]
    fn length_ranges() {
        assert_eq!(parse_length_range("50-75", "x").unwrap(), (50, 75));
        assert_eq!(parse_length_range("60", "x").unwrap(), (60, 60));
        assert!(parse_length_range("75-50", "x").is_err());
        assert!(parse_length_range("0", "x").is_err());
        assert!(parse_length_range("a-b", "x").is_err());
    }
}
