//! The pretrained registry against its JSON and clip-model's presets.

use clip_model::{ClipConfig, TimmVitConfig};
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
    assert_eq!((registry::all().len(), registry::left_out().len()), (138, 58));
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
        ("ViT-H-14-worldwide", "metaclip2_worldwide", true, true),
        ("ViT-H-14-worldwide-quickgelu", "metaclip2_worldwide", true, false),
        ("ViT-bigG-14-worldwide", "metaclip2_worldwide", false, false),
    ] {
        let p = registry::find(model, tag).unwrap();
        assert_eq!((p.quick_gelu, p.quick_gelu_overrides_name), (quick, overrides), "{model}:{tag}");
    }
    let flagged = registry::all().iter().filter(|p| p.quick_gelu_overrides_name).count();
    assert_eq!(flagged, 27);
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
    assert_eq!(registry::tags("ViT-B-16-SigLIP"), ["webli"]);
    assert_eq!(registry::tags("coca_ViT-B-32"), ["laion2b_s13b_b90k", "mscoco_finetuned_laion2b_s13b_b90k"]);
    assert!(registry::tags("EVA02-B-16").is_empty());
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
    let err = registry::lookup("EVA02-B-16", "merged2b_s8b_b131k").unwrap_err();
    let reason = "vision_cfg.timm_model_name: timm's eva02_base_patch16_clip_224 is not built (of timm's towers, clip-model builds the SigLIP ViTs)";
    assert_eq!(err, NotFound::LeftOut { model: "EVA02-B-16".into(), tag: "merged2b_s8b_b131k".into(), reason });
    let NotFound::UnknownModel { close, .. } = registry::lookup("vit-b-32", "openai").unwrap_err() else {
        panic!("unknown model expected")
    };
    assert_eq!(close[0], "ViT-B-32");
    assert!(registry::lookup("no-such-model", "openai").unwrap_err().to_string().contains("no-such-model"));
}

#[test]
fn left_out_pairs_have_reasons_and_no_preset() {
    let mut families = std::collections::BTreeMap::new();
    for l in registry::left_out() {
        assert!(registry::tags(&l.model).is_empty(), "{} is both in and out", l.model);
        assert!(ClipConfig::named(&l.model).is_err(), "{} has a preset but is left out", l.model);
        // Each reason names the key the parser refuses: a timm tower other than SigLIP's, or a
        // Hugging Face text tower; nothing clip-model now builds.
        let key = l.reason.split(':').next().unwrap();
        assert!(["vision_cfg.timm_model_name", "text_cfg.hf_model_name"].contains(&key), "{}:{}: {}", l.model, l.tag, l.reason);
        assert!(l.reason.ends_with("is not built (of timm's towers, clip-model builds the SigLIP ViTs)") || l.reason.ends_with(") is not built"), "{}", l.reason);
        if let Some(rest) = l.reason.strip_prefix("vision_cfg.timm_model_name: timm's ") {
            let timm = rest.split(' ').next().unwrap();
            assert!(TimmVitConfig::named(timm).is_none(), "{}: {timm} is built", l.model);
        }
        for built in ["options", "multimodal_cfg", "eos_id", "pool_type", "ls_init_value", "no_causal_mask", "attentional_pool"] {
            assert!(!l.reason.contains(built), "{}: stale reason {}", l.model, l.reason);
        }
        *families.entry(key).or_insert(0) += 1;
    }
    assert_eq!(families, [("text_cfg.hf_model_name", 9), ("vision_cfg.timm_model_name", 49)].into());
}

#[test]
fn each_new_family_has_its_hub_repo_files_and_preprocessing() {
    const SIGLIP: ([f32; 3], [f32; 3], &str, &str) = ([0.5; 3], [0.5; 3], "bicubic", "squash");
    const IMAGENET: ([f32; 3], [f32; 3], &str, &str) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "bilinear", "squash");
    const OPENAI: ([f32; 3], [f32; 3], &str, &str) =
        ([0.481_454_66, 0.457_827_5, 0.408_210_73], [0.268_629_54, 0.261_302_6, 0.275_777_1], "bicubic", "shortest");
    for (model, tag, hub, size, preprocess) in [
        ("ViT-B-16-SigLIP", "webli", "timm/ViT-B-16-SigLIP", 224, SIGLIP),
        ("ViT-B-16-SigLIP-384", "webli", "timm/ViT-B-16-SigLIP-384", 384, SIGLIP),
        // The 378 config loads the 384 repo's weights (both a 27 × 27 grid of 14 px patches).
        ("ViT-SO400M-14-SigLIP-378", "webli", "timm/ViT-SO400M-14-SigLIP-384", 378, SIGLIP),
        ("ViT-B-16-SigLIP2", "webli", "timm/ViT-B-16-SigLIP2", 224, SIGLIP),
        ("ViT-gopt-16-SigLIP2-384", "webli", "timm/ViT-gopt-16-SigLIP2-384", 384, SIGLIP),
        ("ViT-L-14-CLIPA", "datacomp1b", "UCSC-VLAA/ViT-L-14-CLIPA-datacomp1B", 224, IMAGENET),
        ("ViT-H-14-CLIPA-336", "laion2b", "UCSC-VLAA/ViT-H-14-CLIPA-336-laion2B", 336, IMAGENET),
        ("coca_ViT-B-32", "laion2b_s13b_b90k", "laion/CoCa-ViT-B-32-laion2B-s13B-b90k", 224, OPENAI),
        ("coca_ViT-L-14", "mscoco_finetuned_laion2b_s13b_b90k", "laion/mscoco_finetuned_CoCa-ViT-L-14-laion2B-s13B-b90k", 224, OPENAI),
        ("ViT-H-14-worldwide", "metaclip2_worldwide", "timm/vit_huge_patch14_clip_224.metaclip2_worldwide", 224, OPENAI),
    ] {
        let p = registry::find(model, tag).unwrap_or_else(|| panic!("{model}:{tag} not in the registry"));
        assert_eq!(p.hf_hub.as_deref(), Some(hub), "{model}:{tag}");
        assert_eq!((p.hf_file.as_deref(), p.url.as_deref()), (None, None), "{model}:{tag}");
        assert_eq!(p.files, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"], "{model}:{tag}");
        assert_eq!(p.image_size, size, "{model}:{tag}");
        let (mean, std, interpolation, resize_mode) = preprocess;
        assert_eq!((p.mean, p.std, p.interpolation.as_str(), p.resize_mode.as_str()), (mean, std, interpolation, resize_mode), "{model}:{tag}");
        assert_eq!(p.decoder_params > 0, model.starts_with("coca_"), "{model}:{tag}");
    }
    // Every SigLIP and SigLIP2 tag is webli with SigLIP's preprocessing; every CLIPA tag ImageNet's.
    let siglip: Vec<_> = registry::all().iter().filter(|p| p.model.contains("SigLIP")).collect();
    assert_eq!(siglip.len(), 26);
    for p in siglip {
        assert_eq!((p.tag.as_str(), p.mean, p.std, p.interpolation.as_str(), p.resize_mode.as_str()), ("webli", [0.5; 3], [0.5; 3], "bicubic", "squash"), "{}", p.model);
    }
    for p in registry::all().iter().filter(|p| p.model.contains("CLIPA")) {
        assert_eq!((p.mean, p.std, p.interpolation.as_str()), (IMAGENET.0, IMAGENET.1, "bilinear"), "{}", p.model);
    }
    let coca = registry::find("coca_ViT-B-32", "laion2b_s13b_b90k").unwrap();
    assert_eq!((coca.params, coca.decoder_params), (253_560_065, 100_967_424));
}

#[test]
fn our_models_have_open_clips_parameter_counts() {
    // One architecture of each family that fits a test's memory, built here at random init: the
    // registry's count (open_clip's model) less its unbuilt decoder.
    for model in ["RN50", "ViT-B-32", "ViT-B-16-SigLIP", "ViT-B-16-SigLIP-i18n-256", "ViT-B-32-SigLIP2-256", "ViT-L-14-CLIPA", "coca_ViT-B-32"] {
        let p = &registry::all().iter().find(|p| p.model == model).unwrap_or_else(|| panic!("{model} not in the registry"));
        let config = ClipConfig::named(&p.architecture).unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _model = clip_model::ClipModel::new(vs.root(), &config);
        let ours: u64 = vs.trainable_variables().iter().map(|t| t.numel() as u64).sum();
        assert_eq!(ours, p.params - p.decoder_params, "{model}");
    }
}
