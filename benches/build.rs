//! Link settings for the timing binaries, as for `clip` (they run on GPU machines too).

include!("../crates/clip-cli/link.rs");

fn main() {
    link_libtorch();
}
