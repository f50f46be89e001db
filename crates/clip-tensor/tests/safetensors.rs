use clip_tensor::Error;
use clip_tensor::safetensors::{
    load_safetensors_ignoring, load_strict, load_strict_ignoring, read_safetensors, save_safetensors, save_var_store,
};
use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};

/// A store shaped like a tiny piece of a CLIP tower.
fn model() -> VarStore {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let _ = root.zeros("logit_scale", &[]);
    let ln = &root / "ln_final";
    let _ = ln.ones("weight", &[4]);
    let _ = ln.zeros("bias", &[4]);
    let _ = root.zeros("text_projection", &[4, 3]);
    let _ = root.zeros_no_train("running_mean", &[4]);
    vs
}

#[test]
fn round_trip_through_a_store_keeps_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let source = model();
    tch::no_grad(|| {
        for (_, mut var) in source.variables() {
            var.copy_(&Tensor::randn(var.size(), (Kind::Float, Device::Cpu)));
        }
    });
    save_var_store(&source, &path).unwrap();

    let target = model();
    load_strict(&target, &path).unwrap();
    let (a, b) = (source.variables(), target.variables());
    for (name, var) in &a {
        assert!(var.equal(&b[name]), "{name} differs after the round trip");
    }
}

#[test]
fn casts_fp16_and_bf16_to_the_model_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.safetensors");
    let scale = Tensor::from(2.5f32).to_kind(Kind::Half);
    let weight = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).to_kind(Kind::BFloat16);
    let bias = Tensor::zeros([4], (Kind::Half, Device::Cpu));
    let proj = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
    let mean = Tensor::full([4], 0.5, (Kind::Double, Device::Cpu));
    save_safetensors(
        &path,
        &[
            ("logit_scale", &scale),
            ("ln_final.weight", &weight),
            ("ln_final.bias", &bias),
            ("text_projection", &proj),
            ("running_mean", &mean),
        ],
    )
    .unwrap();
    let read = read_safetensors(&path).unwrap();
    let kinds: Vec<Kind> = read.iter().map(|(_, t)| t.kind()).collect();
    assert!(kinds.contains(&Kind::Half) && kinds.contains(&Kind::BFloat16));

    let vs = model();
    load_strict(&vs, &path).unwrap();
    let vars = vs.variables();
    assert_eq!(vars["logit_scale"].kind(), Kind::Float);
    assert_eq!(f64::try_from(&vars["logit_scale"]).unwrap(), 2.5);
    assert_eq!(Vec::<f32>::try_from(&vars["ln_final.weight"]).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(Vec::<f32>::try_from(&vars["running_mean"]).unwrap(), vec![0.5; 4]);
}

#[test]
fn reports_missing_unexpected_and_mismatched_keys_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.safetensors");
    let z = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let (scale, weight, proj, extra) = (z(&[]), z(&[4]), z(&[3, 4]), z(&[2]));
    // ln_final.bias and running_mean missing; text_projection transposed; visual.proj unexpected.
    save_safetensors(
        &path,
        &[("logit_scale", &scale), ("ln_final.weight", &weight), ("text_projection", &proj), ("visual.proj", &extra)],
    )
    .unwrap();

    let vs = model();
    let before: Vec<f32> = Vec::try_from(&vs.variables()["ln_final.weight"]).unwrap();
    let err = load_strict(&vs, &path).unwrap_err();
    let Error::Keys { path: reported, report } = &err else { panic!("unexpected error {err:?}") };
    assert_eq!(reported, &path);
    assert_eq!(report.missing, vec!["ln_final.bias".to_owned(), "running_mean".to_owned()]);
    assert_eq!(report.unexpected, vec!["visual.proj".to_owned()]);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.mismatched[0].name, "text_projection");
    assert_eq!((report.mismatched[0].expected.clone(), report.mismatched[0].found.clone()), (vec![4, 3], vec![3, 4]));

    let message = err.to_string();
    for needle in ["wrong.safetensors", "2 missing", "1 unexpected", "visual.proj", "1 with the wrong shape", "text_projection"] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
    // Nothing was copied: the load is all or nothing.
    let after: Vec<f32> = Vec::try_from(&vs.variables()["ln_final.weight"]).unwrap();
    assert_eq!(before, after);
}

#[test]
fn named_prefixes_are_set_aside_and_everything_else_stays_strict() {
    let source = model();
    let full = |extra: &[(&str, &[i64])]| -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> = source.variables().into_iter().map(|(k, v)| (k, Tensor::full(v.size(), 0.25, (Kind::Float, Device::Cpu)))).collect();
        tensors.extend(extra.iter().map(|(k, shape)| ((*k).to_owned(), Tensor::zeros(*shape, (Kind::Float, Device::Cpu)))));
        tensors
    };
    let decoder: &[(&str, &[i64])] = &[("text_decoder.ln_final.weight", &[4]), ("text_decoder.text_projection", &[4, 9])];
    let path = std::path::Path::new("coca.safetensors");

    let vs = model();
    let report = load_strict_ignoring(&vs, full(decoder), &["text_decoder."], path).unwrap();
    assert_eq!(report.ignored, ["text_decoder.ln_final.weight", "text_decoder.text_projection"]);
    assert!(report.is_empty() && report.missing.is_empty() && report.unexpected.is_empty());
    assert_eq!(Vec::<f32>::try_from(&vs.variables()["ln_final.weight"]).unwrap(), vec![0.25; 4]);
    // Without the prefix the same keys are unexpected; a key outside it still is with it.
    let err = load_strict_ignoring(&model(), full(decoder), &[], path).unwrap_err().to_string();
    assert!(err.contains("2 unexpected [text_decoder.ln_final.weight, text_decoder.text_projection]"), "{err}");
    let stray: &[(&str, &[i64])] = &[("text_decoder.ln_final.weight", &[4]), ("visual.extra", &[1])];
    let err = load_strict_ignoring(&model(), full(stray), &["text_decoder."], path).unwrap_err();
    let Error::Keys { report, .. } = &err else { panic!("unexpected error {err:?}") };
    assert_eq!((report.unexpected.as_slice(), report.ignored.len()), (["visual.extra".to_owned()].as_slice(), 1));
    assert!(err.to_string().contains("1 unexpected [visual.extra]; 1 set aside as not built"), "{err}");
    // A model variable under an ignored prefix is still missing when the file lacks it.
    let mut tensors = full(&[]);
    tensors.retain(|(k, _)| k != "ln_final.bias");
    let err = load_strict_ignoring(&model(), tensors, &["ln_final."], path).unwrap_err().to_string();
    assert!(err.contains("2 missing [ln_final.bias, ln_final.weight]"), "{err}");
}

#[test]
fn truncated_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    let t = Tensor::ones([64, 64], (Kind::Float, Device::Cpu));
    save_safetensors(&good, &[("w", &t)]).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_safetensors(&truncated).unwrap_err();
    assert!(matches!(err, Error::Safetensors { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated.safetensors"), "{err}");

    let pickle = dir.path().join("pytorch_model.bin");
    std::fs::write(&pickle, b"\x80\x02}q\x00(X\x05\x00\x00\x00torchq\x01").unwrap();
    let err = read_safetensors(&pickle).unwrap_err();
    assert!(matches!(err, Error::Safetensors { .. }), "{err:?}");

    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(read_safetensors(&empty).unwrap_err(), Error::Safetensors { .. }));

    let missing = dir.path().join("absent.safetensors");
    assert!(matches!(read_safetensors(&missing).unwrap_err(), Error::Io { .. }));
}

#[test]
fn non_contiguous_tensors_are_saved_by_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let base = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([3, 4]);
    let transposed = base.tr();
    save_safetensors(&path, &[("t", &transposed)]).unwrap();
    let read = read_safetensors(&path).unwrap();
    assert!(read[0].1.equal(&transposed));
    let _ = nn::VarStore::new(Device::Cpu);
}

/// A file laid out by hand with its float32 tensors at offsets that are not multiples of 4 (the
/// format allows it): they load by value, as the aligned ones do, and prefixes are set aside as
/// in `load_strict_ignoring`; a truncated file is the same clear error as for `read_safetensors`.
#[test]
fn misaligned_tensors_load_and_the_file_form_keeps_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.safetensors");
    let values = |n: usize, from: f32| (0..n).map(|i| from + i as f32).collect::<Vec<f32>>();
    // An F16 scalar first (2.5 is 0x4100), so everything after it starts at 2 mod 4.
    let mut data = vec![0x00u8, 0x41];
    let mut entries = vec![r#""logit_scale": {"dtype": "F16", "shape": [], "data_offsets": [0, 2]}"#.to_owned()];
    let tensors: [(&str, &[usize], f32); 5] = [
        ("ln_final.weight", &[4], 1.0),
        ("ln_final.bias", &[4], 10.0),
        ("text_projection", &[4, 3], 20.0),
        ("running_mean", &[4], 40.0),
        ("text_decoder.x", &[2], 0.0),
    ];
    for (name, shape, from) in tensors {
        let start = data.len();
        data.extend(values(shape.iter().product(), from).iter().flat_map(|v| v.to_le_bytes()));
        entries.push(format!(r#""{name}": {{"dtype": "F32", "shape": {shape:?}, "data_offsets": [{start}, {}]}}"#, data.len()));
    }
    let mut header = format!("{{{}}}", entries.join(", ")).into_bytes();
    // Padded with spaces, as the format allows, so that the data starts at a multiple of 8.
    header.resize(header.len().next_multiple_of(8), b' ');
    assert_eq!((8 + header.len() + 2) % 4, 2, "the float32 tensors must be misaligned");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(&header);
    bytes.extend(&data);
    std::fs::write(&path, &bytes).unwrap();

    let vs = model();
    let report = load_safetensors_ignoring(&vs, &path, &["text_decoder."]).unwrap();
    assert_eq!(report.ignored, ["text_decoder.x"]);
    let vars = vs.variables();
    assert_eq!(f64::try_from(&vars["logit_scale"]).unwrap(), 2.5);
    assert_eq!(Vec::<f32>::try_from(&vars["ln_final.bias"]).unwrap(), values(4, 10.0));
    assert_eq!(Vec::<f32>::try_from(&vars["text_projection"].flatten(0, -1)).unwrap(), values(12, 20.0));
    // The same as reading the file whole and loading what was read.
    let read = model();
    load_strict_ignoring(&read, read_safetensors(&path).unwrap(), &["text_decoder."], &path).unwrap();
    for (name, var) in read.variables() {
        assert!(var.equal(&vars[&name]), "{name}");
    }
    let err = load_strict(&model(), &path).unwrap_err().to_string();
    assert!(err.contains("1 unexpected [text_decoder.x]"), "{err}");
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(load_strict(&model(), &path).unwrap_err(), Error::Safetensors { .. }));
}
