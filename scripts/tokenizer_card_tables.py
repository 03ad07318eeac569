#!/usr/bin/env python3
"""Markdown tables of a tokenizer report (the JSON of the `tokenizer_reconstruction` example),
for weights/tokenizer/CARD.md and docs/BENCHMARKS.md:

    cargo run --release -p protforge-tokenizer --example tokenizer_reconstruction -- \\
        weights/tokenizer data/protforge_v1.safetensors val > docs/bench/tokenizer_val.json
    python3 scripts/tokenizer_card_tables.py docs/bench/tokenizer_val.json
"""
import json
import sys


def f(x, d=3):
    return "%.*f" % (d, x)


def main():
    r = json.load(open(sys.argv[1]))
    print("| set | chains | CA RMSD mean / median (Å) | TM-score mean / median | lDDT-CA mean / median |")
    print("|---|---|---|---|---|")
    row = lambda label, n, v: print("| %s | %s | %s / %s | %s / %s | %s / %s |" % (
        label, n, f(v["ca_rmsd_ang"]["mean"], 2), f(v["ca_rmsd_ang"]["median"], 2), f(v["tm_score"]["mean"]),
        f(v["tm_score"]["median"]), f(v["lddt_ca"]["mean"]), f(v["lddt_ca"]["median"])))
    row("all %s (%d residues)" % (r["split"], r["residues"]), r["chains"], r)
    for b in r["per_length_bin"]:
        if b["tm_score"]["n"]:
            row("L %s" % b["lengths"], b["tm_score"]["n"], b)
    print()
    cb = r["codebook"]
    print("| codes used (of %d) | perplexity | identical tokens after a random rigid motion |" % cb["codes"])
    print("|---|---|---|")
    print("| %.4f (%d) | %.1f | %.4f |" % (cb["used_fraction"], round(cb["used_fraction"] * cb["codes"]), cb["perplexity"],
                                          r["invariance_identical_token_fraction"]))
    print()
    print("| length | encode (structures/s) | decode (structures/s) |")
    print("|---|---|---|")
    for k, v in sorted(r["speed_batch_8"].items(), key=lambda kv: int(kv[0].split("_")[1])):
        print("| %s | %.1f | %.1f |" % (k.split("_")[1], v["encode_structures_per_s"], v["decode_structures_per_s"]))
    print()
    print("Peak RSS %.0f MB, %d thread(s); whole split: encode %.1f, decode %.1f structures/s." % (
        r["peak_rss_mb"], r["threads"], r["throughput_split"]["encode_structures_per_s"], r["throughput_split"]["decode_structures_per_s"]))


if __name__ == "__main__":
    main()
