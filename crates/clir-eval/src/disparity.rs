//! disparity (in progress)
