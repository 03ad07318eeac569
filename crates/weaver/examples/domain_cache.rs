//! Build (or load and check) the domain cache of a dataset file and print its statistics.
//! `protforge train weaver` does the same on first use; this example makes the cache alone.
//!
//! ```sh
//! cargo run --release -p protforge-weaver --example domain_cache -- \
//!     data/protforge_v1.safetensors training/weaver/domains.json
//! ```

#![allow(clippy::print_stdout)] // a command-line example prints its results

use protforge_data::{Dataset, Split};
use protforge_weaver::DomainParams;
use protforge_weaver::dataset::DomainCache;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, cache] = args.as_slice() else {
        return Err("usage: domain_cache DATASET.safetensors CACHE.json".into());
    };
    let ds = Dataset::open(data)?;
    let started = Instant::now();
    let (cache, built) = DomainCache::load_or_build(&PathBuf::from(cache), &ds, &DomainParams::default())?;
    println!("{} {} chains in {:.1} s", if built { "parsed" } else { "loaded" }, cache.chains.len(), started.elapsed().as_secs_f64());
    for split in [Split::Train, Split::Val] {
        let all = cache.chains.iter().filter(|c| c.split == split).count();
        let mut hist = [0usize; 9];
        let mut sizes = Vec::new();
        for c in cache.chains.iter().filter(|c| c.split == split) {
            hist[c.n_domains.min(8)] += 1;
            if c.n_domains >= 2 {
                let labels = c.labels();
                sizes.extend((0..c.n_domains).map(|d| labels.iter().filter(|&&l| l == d).count()));
            }
        }
        sizes.sort_unstable();
        let median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
        println!(
            "{split}: {all} chains, {} with ≥ 2 domains; domains per chain {:?}; median domain size {median}",
            cache.count(split, 2),
            &hist[1..]
        );
    }
    Ok(())
}
