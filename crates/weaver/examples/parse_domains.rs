//! Print the domains our parser finds in PDB/mmCIF files (one line per chain).
//!
//! ```sh
//! cargo run --release -p protforge-weaver --example parse_domains -- [--max-ncut X] FILE...
//! ```

#![allow(clippy::print_stdout)] // a command-line example prints its results

use protforge_se3::Vec3;
use protforge_structure::io::{ReadOptions, read_backbone};
use protforge_weaver::{DomainParams, parse_domains};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut params = DomainParams::default();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(k) = args.iter().position(|a| a == "--max-ncut") {
        params.max_ncut = args.get(k + 1).ok_or("--max-ncut needs a value")?.parse()?;
        args.drain(k..k + 2);
    }
    for path in args {
        let bb = read_backbone(std::path::Path::new(&path), &ReadOptions::default())?.backbone;
        for chain in bb.chains() {
            let Some(c) = bb.chain(&chain) else { continue };
            let idx: Vec<usize> = (0..c.len()).filter(|&i| c.atom_mask[i][1]).collect();
            let ca: Vec<Vec3> = idx.iter().map(|&i| Vec3::new(f64::from(c.coords[i][1][0]), f64::from(c.coords[i][1][1]), f64::from(c.coords[i][1][2]))).collect();
            let d = parse_domains(&ca, &params)?;
            let segs: Vec<String> = d
                .segments()
                .iter()
                .map(|&(dom, s, e)| format!("D{}:{}-{}", dom + 1, c.residue_ids[idx[s]], c.residue_ids[idx[e - 1]]))
                .collect();
            println!("{path} {chain} L={} domains={} {}", ca.len(), d.n_domains, segs.join(" "));
        }
    }
    Ok(())
}
