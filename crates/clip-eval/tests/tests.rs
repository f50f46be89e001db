//! Integration tests of clip-eval.

mod metrics; // every metric against scikit-learn or a value worked by hand
mod multilabel; // the one-vs-rest probe against scikit-learn: per-class fits, ignored targets, the searched model's test mAP
mod probe; // the L-BFGS probe finds scikit-learn's solution; the λ search follows the paper's plan
mod registry; // 27 datasets with the paper's class counts, prompts and numbers; hub repos against CLIP_benchmark's list
mod report; // CLIP_benchmark's result files: names, JSON, and `clip_benchmark build` on them
mod robustness; // the shifted sets: CLIP_benchmark's ImageNet-R/-A masks and ObjectNet classes and mapping, the run summary
mod support;
mod video; // video sets as shipped: Kinetics' csv and clip names, UCF101's lists, middle frames with bad clips counted
