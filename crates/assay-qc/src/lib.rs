//! Quality-control results for `assay qc` and `assay project qc`, assembled for tables and HTML reports.
