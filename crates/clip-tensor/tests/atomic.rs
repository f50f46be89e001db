use std::io;

use clip_tensor::atomic::atomic_write;
use clip_tensor::Error;

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

#[test]
fn replaces_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.bin");
    std::fs::write(&path, b"old").unwrap();
    atomic_write(&path, |w| w.write_all(b"new content")).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new content");
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn failing_writer_leaves_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    std::fs::write(&path, b"the previous good checkpoint").unwrap();
    // Half the data goes out, then the "disk" fails, as a full disk would.
    let err = atomic_write(&path, |w| {
        w.write_all(&[7u8; 1 << 20])?;
        Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"))
    })
    .unwrap_err();
    match &err {
        Error::Io { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("checkpoint.safetensors"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"the previous good checkpoint");
    assert!(leftovers(dir.path()).is_empty(), "temporary file left behind");
}

#[test]
fn missing_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/file.bin");
    let err = atomic_write(&path, |w| w.write_all(b"x")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn a_panicking_writer_leaves_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, b"{}").unwrap();
    let result = std::panic::catch_unwind(|| {
        let _ = atomic_write(&path, |w| {
            w.write_all(b"{\"half\":")?;
            panic!("serializer bug");
        });
    });
    assert!(result.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"{}");
}
