//! OpenMP's wait policy for `clip embed --source`, set before libgomp reads it.
//!
//! libgomp, libtorch's OpenMP, spins between parallel regions and at every barrier by default;
//! with decode threads on the same cores, a decode thread that preempts one OpenMP thread leaves
//! the others spinning at the barrier. Waiting passively saves a third of the CPU time there
//! (ViT-B-32 on 2 cores, 2 decode threads: 30 s of CPU down to 19 s for the same 160 photos).
//! libgomp reads `OMP_WAIT_POLICY` once, in its constructor, before `main`, and a variable set
//! before that is lost when libc's own constructor installs the environment again. So the
//! process starts itself again with the variable, from the executable's `.preinit_array`, which
//! the dynamic loader runs before any library's constructor: the first start costs the loader's
//! mapping of the libraries (milliseconds), not libtorch's initialisation (~0.3 s), which a
//! restart from `main` paid.

use std::ffi::{CStr, c_char, c_int};

/// Called by the dynamic loader with the process's arguments and environment, before any
/// library's constructor.
#[used]
#[unsafe(link_section = ".preinit_array")]
static SET_WAIT_POLICY: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = set_wait_policy;

/// The most environment variables the restart copies; a larger environment runs on with
/// OpenMP's default.
const MAX_ENV: usize = 4096;

/// For `clip embed --source` without `OMP_WAIT_POLICY` (an explicit setting is kept), executes
/// this binary again with `OMP_WAIT_POLICY=PASSIVE` added; if that fails, it runs on with
/// OpenMP's default. Runs before the Rust runtime and libc are set up: no allocation, no panics,
/// only the `execve` system call.
extern "C" fn set_wait_policy(argc: c_int, argv: *const *const c_char, env: *const *const c_char) {
    if argv.is_null() || env.is_null() {
        return;
    }
    // SAFETY: the loader passes argc valid, NUL-terminated strings in argv.
    let args = (1..argc.max(1) as usize).map(|i| unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes());
    if !embeds_a_source(args) {
        return;
    }
    let mut copy = [std::ptr::null::<c_char>(); MAX_ENV];
    let mut n = 0;
    loop {
        // SAFETY: env is the loader's NULL-terminated array of NUL-terminated strings.
        let var = unsafe { *env.add(n) };
        if var.is_null() {
            break;
        }
        if n + 2 >= MAX_ENV || unsafe { CStr::from_ptr(var) }.to_bytes().starts_with(b"OMP_WAIT_POLICY=") {
            return;
        }
        copy[n] = var;
        n += 1;
    }
    copy[n] = c"OMP_WAIT_POLICY=PASSIVE".as_ptr();
    // SAFETY: argv and copy are NULL-terminated arrays of valid strings; execve returns only on
    // failure, and then nothing has changed.
    unsafe { libc::execve(c"/proc/self/exe".as_ptr(), argv, copy.as_ptr()) };
}

/// Whether the arguments (without the program's name) are `embed … --source …`; the global
/// `--quiet` may come first.
fn embeds_a_source<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> bool {
    let command = args.find(|a| !matches!(*a, b"-q" | b"--quiet"));
    command == Some(b"embed") && args.any(|a| a == b"--source" || a.starts_with(b"--source="))
}

#[cfg(test)]
mod tests {
    use super::embeds_a_source;

    fn of(line: &str) -> bool {
        embeds_a_source(line.split_whitespace().map(str::as_bytes))
    }

    #[test]
    fn only_embed_with_a_source() {
        assert!(of("embed --model ViT-B-32 --source wds:a.tar --out o"));
        assert!(of("--quiet embed --source=folder:x --out o"));
        assert!(of("-q embed --out o --source csv:a.csv"));
        assert!(!of("embed --images photos --out a.npy"));
        assert!(!of("train --source wds:a.tar"));
        assert!(!of("embed"));
        assert!(!of(""));
    }
}
