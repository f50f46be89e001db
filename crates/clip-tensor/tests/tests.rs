//! Integration tests of clip-tensor, one binary (each test binary links libtorch).

mod atomic; // a failed write never damages the file it would replace
mod checkpoint; // checkpointed blocks: the plain loss, gradients and random stream; plain without a gradient; panics contained
mod device; // device strings and loud CUDA failures
mod precision; // autocast regions switch dtype and restore state
mod safetensors; // strict loading reports every key problem; round trips
mod seed; // one call makes random ops repeat
mod torch_save; // torch.save files: views rebuilt, payloads refused by name, bad files clear errors
