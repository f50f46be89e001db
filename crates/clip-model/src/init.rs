//! Initial values: open_clip's random draws, or zeros while a model is built for weights that a
//! strict load overwrites next ([`ClipModel::for_weights`](crate::ClipModel::for_weights)).
//!
//! Drawing values only to overwrite them costs time: ViT-B-32's 151 M normal draws (with tch's
//! scaling passes) took ~0.4 s of a 1.6 s `clip embed` of one text. Every random initial value
//! of this crate goes through [`random`], so none is missed.

use std::cell::Cell;

use tch::nn::Init;

thread_local! {
    static DRAW: Cell<bool> = const { Cell::new(true) };
}

/// `Randn(0, std)`, as [`random`].
pub(crate) fn normal(std: f64) -> Init {
    random(Init::Randn { mean: 0.0, stdev: std })
}

/// `init`, or zeros inside [`without_draws`].
pub(crate) fn random(init: Init) -> Init {
    if DRAW.get() { init } else { Init::Const(0.0) }
}

/// Runs `build` with every random initial value of this crate replaced by zeros (this thread
/// only; restored on return or unwind).
pub(crate) fn without_draws<T>(build: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DRAW.set(self.0);
        }
    }
    let _restore = Restore(DRAW.replace(false));
    build()
}
