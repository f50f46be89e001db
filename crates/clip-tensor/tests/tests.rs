//! Integration tests of clip-tensor, one binary (each test binary links libtorch).

mod atomic; // a failed write never damages the file it would replace
mod checkpoint; // checkpointed blocks: the plain loss, gradients and random stream; plain without a gradient; panics contained
mod device; // device strings and loud CUDA failures
mod precision; // autocast regions switch dtype and restore state
mod safetensors; // strict loading reports every key problem; round trips
mod seed; // one call makes random ops repeat
mod torch_save; // torch.save files: views rebuilt, payloads refused by name, bad files clear errors

/// libtorch's CPU generator is the process's: the tests that seed it and draw from it take this
/// lock, so that tests running in parallel do not draw from each other's streams.
fn generator() -> std::sync::MutexGuard<'static, ()> {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GENERATOR.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
