//! Training throughput.
