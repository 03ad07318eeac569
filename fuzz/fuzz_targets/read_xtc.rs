//! Fuzz the trajectory decoders from memory: XTC (framing + molly) and our DCD codec.
//! Arbitrary bytes must give `Ok` or a `StructureError`, never a panic or an abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protforge_structure::trajectory::{dcd, xtc};

fuzz_target!(|data: &[u8]| {
    let _ = xtc::read_xtc_bytes(data, "fuzz.xtc".as_ref());
    let _ = dcd::read_dcd_bytes(data, "fuzz.dcd".as_ref());
});
