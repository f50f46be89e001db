use clip_train::TrainConfig;

fn write(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn defaults_are_the_built_in_cpu_run() {
    let config = TrainConfig::load(None, &[]).unwrap();
    assert_eq!((config.model.preset.as_str(), config.data.source.as_str(), config.device.as_str()), ("tiny", "builtin", "cpu"));
    // The resolved config written to a run folder reads back the same.
    let again = write(&config.to_toml());
    assert_eq!(TrainConfig::load(Some(again.path()), &[]).unwrap(), config);
}

#[test]
fn file_values_and_set_overrides() {
    let file = write("seed = 3\n[optim]\nlr = 5e-4\nschedule = \"const\"\n");
    let config = TrainConfig::load(Some(file.path()), &["optim.lr=2e-3".into(), "eval.tasks=[\"shape\"]".into(), "output=runs/x".into(), "data.scaled_decode=false".into()]).unwrap();
    assert!(!config.data.scaled_decode && TrainConfig::default().data.scaled_decode);
    assert_eq!(config.seed, 3);
    assert_eq!(config.optim.lr, 2e-3);
    assert_eq!(config.optim.schedule, "const");
    assert_eq!(config.eval.tasks, ["shape"]);
    assert_eq!(config.output, std::path::PathBuf::from("runs/x"));
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_line() {
    let file = write("seed = 1\n[optim]\nlr = 1e-3\nlearning_rate = 2\n");
    let error = TrainConfig::load(Some(file.path()), &[]).unwrap_err().to_string();
    assert!(error.contains("learning_rate") && error.contains("line 4"), "{error}");
    let file = write("[data]\nbatch_size = \"big\"\n");
    let error = TrainConfig::load(Some(file.path()), &[]).unwrap_err().to_string();
    assert!(error.contains("batch_size") && error.contains("line 2"), "{error}");
    for (set, needle) in [
        ("optim.lr=-1", "optim.lr"),
        ("optim.schedule=linear", "optim.schedule"),
        ("optim.nope=1", "nope"),
        ("loss.kind=hinge", "loss.kind"),
        ("precision=fp8", "precision"),
        ("eval.tasks=[\"texture\"]", "eval.tasks"),
        ("seed", "key=value"),
    ] {
        let error = TrainConfig::load(None, &[set.into()]).unwrap_err().to_string();
        assert!(error.contains(needle), "{set}: {error}");
    }
}
