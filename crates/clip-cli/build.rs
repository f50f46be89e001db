//! Link settings for the `clip` binary (and this package's tests): see `link.rs`.

include!("link.rs");

fn main() {
    link_libtorch();
}
