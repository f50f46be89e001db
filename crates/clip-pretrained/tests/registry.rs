//! The pretrained registry against its JSON and clip-model's presets.

use clip_model::ClipConfig;
use clip_pretrained::registry::{self, NotFound};

fn json() -> serde_json::Value {
    serde_json::from_str(include_str!("../data/pretrained.json")).unwrap()
}

#[test]
fn registry_parses_with_the_json_counts() {
    let json = json();
    assert_eq!(registry::open_clip_version(), "3.3.0");
    assert_eq!(registry::all().len(), json["pretrained"].as_array().unwrap().len());
    assert_eq!(registry::left_out().len(), json["left_out"].as_array().unwrap().len());
    // open_clip 3.3.0 lists 196 pairs (`len(open_clip.list_pretrained())`).
    assert_eq!((registry::all().len(), registry::left_out().len()), (96, 100));
    let mut pairs: Vec<(&str, &str)> = registry::all().iter().map(|p| (p.model.as_str(), p.tag.as_str())).collect();
    pairs.extend(registry::left_out().iter().map(|l| (l.model.as_str(), l.tag.as_str())));
    let n = pairs.len();
    pairs.sort_unstable();
    pairs.dedup();
    assert_eq!(pairs.len(), n, "a (model, tag) pair listed twice");
}

#[test]
fn every_architecture_is_a_preset_with_the_entry_image_size() {
    for p in registry::all() {
        let what = format!("{}:{}", p.model, p.tag);
        let config = ClipConfig::named(&p.architecture).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(config.vision.image_size(), i64::from(p.image_size), "{what}");
        assert_eq!(p.quick_gelu_overrides_name, p.quick_gelu && !config.quick_gelu, "{what}");
        assert_eq!(p.architecture, p.model, "{what}");
        assert_eq!(p.tag, registry::clean_tag(&p.tag), "{what}");
        assert!(p.hf_hub.is_some() || p.url.is_some(), "{what}: nowhere to fetch from");
        if let Some(hub) = &p.hf_hub {
            assert_eq!(hub.matches('/').count(), 1, "{what}: {hub}");
            assert!(!p.files.is_empty(), "{what}");
        }
        assert_eq!(p.sha256.is_some(), p.url.as_deref().is_some_and(|u| u.contains("openaipublic")), "{what}");
        assert!(p.params > 100_000_000, "{what}: {}", p.params);
    }
}

#[test]
fn openai_vit_b_32_has_its_url_hash_and_quick_gelu() {
    let p = registry::find("ViT-B-32", "openai").unwrap();
    let sha = p.sha256.as_deref().unwrap();
    assert!(sha.starts_with("40d36571") && sha.ends_with("50af") && sha.len() == 64, "{sha}");
    assert_eq!(p.url.as_deref().unwrap(), format!("https://openaipublic.azureedge.net/clip/models/{sha}/ViT-B-32.pt"));
    assert!(p.quick_gelu && p.quick_gelu_overrides_name);
    assert_eq!(p.hf_hub.as_deref(), Some("timm/vit_base_patch32_clip_224.openai"));
    assert_eq!(p.hf_file, None);
    assert_eq!(p.files, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]);
    assert_eq!((p.interpolation.as_str(), p.resize_mode.as_str(), p.image_size), ("bicubic", "shortest", 224));
    assert_eq!(p.mean, [0.481_454_66, 0.457_827_5, 0.408_210_73]);
    assert_eq!(p.params, 151_277_313);
    // The same weights under the `-quickgelu` name: QuickGELU without an override.
    let q = registry::find("ViT-B-32-quickgelu", "openai").unwrap();
    assert!(q.quick_gelu && !q.quick_gelu_overrides_name);
    assert_eq!(q.sha256, p.sha256);
}

#[test]
fn quick_gelu_comes_from_the_tag() {
    for (model, tag, quick, overrides) in [
        ("ViT-H-14", "dfn5b", true, true),
        ("ViT-H-14-quickgelu", "dfn5b", true, false),
        ("ViT-L-14", "metaclip_fullcc", true, true),
        ("ViT-B-32", "laion2b_s34b_b79k", false, false),
        ("ViT-bigG-14", "laion2b_s39b_b160k", false, false),
    ] {
        let p = registry::find(model, tag).unwrap();
        assert_eq!((p.quick_gelu, p.quick_gelu_overrides_name), (quick, overrides), "{model}:{tag}");
    }
    let flagged = registry::all().iter().filter(|p| p.quick_gelu_overrides_name).count();
    assert_eq!(flagged, 26);
}

#[test]
fn preprocessing_follows_the_tag() {
    let dfn = registry::find("ViT-H-14-378", "dfn5b").unwrap();
    assert_eq!((dfn.resize_mode.as_str(), dfn.image_size), ("squash", 378));
    let laion = registry::find("ViT-L-14", "laion2b_s32b_b82k").unwrap();
    assert_eq!((laion.mean, laion.std), ([0.5; 3], [0.5; 3]));
}

#[test]
fn lookups_clean_tags_as_open_clip_does() {
    let p = registry::find("ViT-B-32", "LAION2B-S34B-B79K").unwrap();
    assert_eq!(p.tag, "laion2b_s34b_b79k");
    assert_eq!(registry::find("ViT-B/32", "OpenAI").unwrap().model, "ViT-B-32");
    assert!(registry::find("vit-b-32", "openai").is_none(), "model names are case-sensitive");
    let tags = registry::tags("ViT-B-32");
    assert_eq!(tags.len(), 22);
    assert_eq!(&tags[..3], ["openai", "laion400m_e31", "laion400m_e32"]);
    assert!(registry::tags("ViT-B-16-SigLIP").is_empty());
}

#[test]
fn unknown_pairs_list_what_was_meant() {
    let NotFound::UnknownTag { close, tags, other_models, .. } = registry::lookup("ViT-B-32", "laion2b").unwrap_err() else {
        panic!("unknown tag expected")
    };
    assert_eq!(close, ["laion2b_e16", "laion2b_s34b_b79k"]);
    assert_eq!(tags, registry::tags("ViT-B-32"));
    assert!(other_models.is_empty());
    let err = registry::lookup("ViT-B-32", "opanai").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("did you mean openai?") && message.contains("datacomp_xl_s13b_b90k"), "{message}");
    // A tag of the plain name asked under `-quickgelu` (only QuickGELU tags are copied there).
    let NotFound::UnknownTag { other_models, .. } = registry::lookup("ViT-B-32-quickgelu", "laion2b_s34b_b79k").unwrap_err() else {
        panic!("unknown tag expected")
    };
    assert_eq!(other_models, ["ViT-B-32"]);
    let err = registry::lookup("ViT-B-16-SigLIP", "webli").unwrap_err();
    assert_eq!(err, NotFound::LeftOut { model: "ViT-B-16-SigLIP".into(), tag: "webli".into(), reason: "timm image tower (timm_model_name)" });
    let NotFound::UnknownModel { close, .. } = registry::lookup("vit-b-32", "openai").unwrap_err() else {
        panic!("unknown model expected")
    };
    assert_eq!(close[0], "ViT-B-32");
    assert!(registry::lookup("no-such-model", "openai").unwrap_err().to_string().contains("no-such-model"));
}

#[test]
fn left_out_pairs_have_reasons_and_no_preset() {
    for l in registry::left_out() {
        assert!(!l.reason.is_empty(), "{}:{}", l.model, l.tag);
        assert!(registry::tags(&l.model).is_empty(), "{} is both in and out", l.model);
        assert!(ClipConfig::named(&l.model).is_err(), "{} has a preset but is left out", l.model);
    }
}
