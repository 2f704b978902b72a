//! How an export (or a simulated training loop) mixes the original human rows with generated ones.
