//! Integration tests of clip-loss, one binary (each test binary links libtorch).

mod gathered; // per-rank losses over gathered features add up to the single-process loss
mod parity; // values and gradients equal open_clip's ClipLoss and SigLipLoss
