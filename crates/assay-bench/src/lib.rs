//! Benchmarks for assay. `cargo bench -p assay-bench` runs the micro-benchmarks (criterion); the
//! `label-throughput` program (run by `bench/label-throughput.sh`) measures labeling end to end with the real
//! model: naive per-option evaluation against the cached/batched path, next to llama.cpp's raw token rate.
