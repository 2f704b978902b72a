//! Benchmarks for assay. `cargo bench -p assay-bench` runs the micro-benchmarks (criterion); the
//! `label-throughput` program (run by `bench/label-throughput.sh`) measures labeling end to end with the real
//! model: naive per-option evaluation against the cached/batched path, next to llama.cpp's raw token rate.
//!
//! [`collapse`]: model collapse reproduced (issue 15): a Gaussian and a word bigram model refitted on their own
//! samples under the collapse guard's mixing policies (`bench/collapse.sh`).

pub mod collapse;
