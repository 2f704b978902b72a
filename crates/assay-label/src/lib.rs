//! The label pipeline as a library: a row flows task → rows → scorer → judgment → calibration → store → output.
