//! Integration tests of clip-model, one binary (each test binary links libtorch).

mod parity; // tiny models of both families give open_clip's features from the same weights
mod shapes; // every preset builds with the checkpoint's key layout and output shapes
mod formats; // TorchScript, Hugging Face and torch.save files load to the same features; pickled payloads and bad files are clear errors
mod families; // SigLIP, SigLIP2, CLIPA, CoCa (contrastive) and MetaCLIP 2 towers give open_clip's (and timm's) features; SigLIP's gradients too
mod patch_dropout; // given the same kept patches, open_clip's (and timm's) training-mode features; none dropped in inference
mod grad_checkpointing; // checkpointed blocks and stages: the plain gradients (ViT, SigLIP, ResNet), BatchNorm statistics moved once, no block activations kept, evaluation unchanged
