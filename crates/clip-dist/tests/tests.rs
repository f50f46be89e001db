//! In-process tests of clip-dist (the multi-process ones are in `multiprocess.rs`).

mod single; // one process: collectives are the identity; bad rendezvous fails fast
