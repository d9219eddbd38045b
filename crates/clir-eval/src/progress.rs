//! Progress bars (indicatif) for long evaluations; hidden when not requested.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar of `len` steps drawn on stderr, or a hidden one when `show` is false.
pub fn bar(len: u64, label: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{msg:>14} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(label.to_string());
    pb
}
