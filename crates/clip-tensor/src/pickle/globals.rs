//! The allow-list: the globals torch's `weights_only` unpickler admits that checkpoints use, and
//! what calling each means, computed here in Rust. A name not listed is refused when it is read.

use std::collections::HashSet;
use std::rc::Rc;

use super::machine::{Item, Machine, Node, describe};
use super::{Dtype, StorageRef, StorageView, TensorRef, Value};

type Step<T> = std::result::Result<T, String>;

/// An allowed global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Global {
    /// `collections.OrderedDict` and `collections.Counter`: a dict.
    Dict(&'static str),
    /// `builtins.set`.
    Set,
    /// `builtins.bytearray`.
    Bytearray,
    /// `_codecs.encode`, which protocol 2 uses for `bytes`.
    Encode,
    /// `torch.Size`: a tuple of ints.
    Size,
    /// `torch.device`.
    Device,
    /// `torch.Tensor`, only as the type argument of `_rebuild_from_type_v2`.
    TensorClass,
    /// `torch.nn.parameter.Parameter`.
    Parameter,
    /// `torch._utils._rebuild_tensor`, `_v2` and `_v3`.
    RebuildTensor(u8),
    /// `torch._utils._rebuild_parameter` (`true`: `_rebuild_parameter_with_state`).
    RebuildParameter(bool),
    /// `torch._tensor._rebuild_from_type_v2`.
    RebuildFromType,
    /// A storage class such as `torch.FloatStorage` (`None`: one whose dtype clip-rs lacks).
    StorageType(&'static str, Option<Dtype>),
    /// A dtype such as `torch.float32`.
    Dtype(&'static str, Option<Dtype>),
    /// Allowed by torch but not read by clip-rs (sparse, quantized, nested tensors, `complex`…);
    /// calling it is an error naming it.
    Unsupported(String),
}

const STORAGES: [(&str, Option<Dtype>); 19] = [
    ("DoubleStorage", Some(Dtype::F64)),
    ("FloatStorage", Some(Dtype::F32)),
    ("HalfStorage", Some(Dtype::F16)),
    ("BFloat16Storage", Some(Dtype::BF16)),
    ("LongStorage", Some(Dtype::I64)),
    ("IntStorage", Some(Dtype::I32)),
    ("ShortStorage", Some(Dtype::I16)),
    ("CharStorage", Some(Dtype::I8)),
    ("ByteStorage", Some(Dtype::U8)),
    ("BoolStorage", Some(Dtype::Bool)),
    ("ComplexFloatStorage", Some(Dtype::C64)),
    ("ComplexDoubleStorage", Some(Dtype::C128)),
    ("UntypedStorage", Some(Dtype::U8)),
    ("QInt8Storage", None),
    ("QUInt8Storage", None),
    ("QInt32Storage", None),
    ("QUInt4x2Storage", None),
    ("QUInt2x4Storage", None),
    ("TypedStorage", None),
];

const DTYPES: [(&str, Option<Dtype>); 28] = [
    ("float64", Some(Dtype::F64)),
    ("double", Some(Dtype::F64)),
    ("float32", Some(Dtype::F32)),
    ("float", Some(Dtype::F32)),
    ("float16", Some(Dtype::F16)),
    ("half", Some(Dtype::F16)),
    ("bfloat16", Some(Dtype::BF16)),
    ("int64", Some(Dtype::I64)),
    ("long", Some(Dtype::I64)),
    ("int32", Some(Dtype::I32)),
    ("int", Some(Dtype::I32)),
    ("int16", Some(Dtype::I16)),
    ("short", Some(Dtype::I16)),
    ("int8", Some(Dtype::I8)),
    ("uint8", Some(Dtype::U8)),
    ("bool", Some(Dtype::Bool)),
    ("complex64", Some(Dtype::C64)),
    ("complex128", Some(Dtype::C128)),
    ("float8_e5m2", Some(Dtype::F8E5M2)),
    ("float8_e4m3fn", Some(Dtype::F8E4M3)),
    ("complex32", None),
    ("uint16", None),
    ("uint32", None),
    ("uint64", None),
    ("qint8", None),
    ("quint8", None),
    ("qint32", None),
    ("float8_e5m2fnuz", None),
];

/// Torch's allowed names that clip-rs recognises but does not read.
const UNSUPPORTED: [&str; 16] = [
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch.serialization._get_layout",
    "builtins.complex",
    "torch.per_tensor_affine",
    "torch.per_tensor_symmetric",
    "torch.per_channel_affine",
    "torch.per_channel_symmetric",
    "torch.per_channel_affine_float_qparams",
    "torch.sparse_coo",
    "torch.strided",
];

/// Looks a `module.name` up in the allow-list; anything else is refused, by name.
pub(super) fn resolve(module: &str, name: &str) -> Step<Global> {
    // Python 2 module names, as Python 3 (and torch's `_read_global_instruction`) maps them, so
    // that a refusal names what would have been imported: protocol 2 writes `subprocess.Popen` as
    // `commands.Popen`.
    let module = match module {
        "__builtin__" => "builtins",
        "copy_reg" => "copyreg",
        "commands" => "subprocess",
        "torch.tensor" => "torch._tensor",
        m => m,
    };
    let full = format!("{module}.{name}");
    let global = match full.as_str() {
        "collections.OrderedDict" => Global::Dict("collections.OrderedDict"),
        "collections.Counter" => Global::Dict("collections.Counter"),
        "builtins.set" => Global::Set,
        "builtins.bytearray" => Global::Bytearray,
        "_codecs.encode" => Global::Encode,
        "torch.Size" => Global::Size,
        "torch.device" => Global::Device,
        "torch.Tensor" => Global::TensorClass,
        "torch.nn.parameter.Parameter" => Global::Parameter,
        "torch._utils._rebuild_tensor" => Global::RebuildTensor(1),
        "torch._utils._rebuild_tensor_v2" => Global::RebuildTensor(2),
        "torch._utils._rebuild_tensor_v3" => Global::RebuildTensor(3),
        "torch._utils._rebuild_parameter" => Global::RebuildParameter(false),
        "torch._utils._rebuild_parameter_with_state" => Global::RebuildParameter(true),
        "torch._tensor._rebuild_from_type_v2" => Global::RebuildFromType,
        _ if UNSUPPORTED.contains(&full.as_str()) => Global::Unsupported(full),
        _ if module == "torch" || module == "torch.storage" => {
            if let Some(&(n, dtype)) = STORAGES.iter().find(|(n, _)| *n == name) {
                Global::StorageType(n, dtype)
            } else if let Some(&(n, dtype)) = DTYPES.iter().find(|(n, _)| *n == name) {
                Global::Dtype(n, dtype)
            } else {
                return Err(refused(&full));
            }
        }
        _ => return Err(refused(&full)),
    };
    Ok(global)
}

fn refused(full: &str) -> String {
    format!(
        "refused global {full}: not in torch's weights_only allow-list (only tensors, storages, containers and \
         primitives are read; nothing is imported or run)"
    )
}

impl Global {
    /// The global's Python name.
    pub(super) fn name(&self) -> String {
        match self {
            Global::Dict(name) => (*name).to_owned(),
            Global::Set => "builtins.set".into(),
            Global::Bytearray => "builtins.bytearray".into(),
            Global::Encode => "_codecs.encode".into(),
            Global::Size => "torch.Size".into(),
            Global::Device => "torch.device".into(),
            Global::TensorClass => "torch.Tensor".into(),
            Global::Parameter => "torch.nn.parameter.Parameter".into(),
            Global::RebuildTensor(1) => "torch._utils._rebuild_tensor".into(),
            Global::RebuildTensor(v) => format!("torch._utils._rebuild_tensor_v{v}"),
            Global::RebuildParameter(false) => "torch._utils._rebuild_parameter".into(),
            Global::RebuildParameter(true) => "torch._utils._rebuild_parameter_with_state".into(),
            Global::RebuildFromType => "torch._tensor._rebuild_from_type_v2".into(),
            Global::StorageType(name, _) | Global::Dtype(name, _) => format!("torch.{name}"),
            Global::Unsupported(name) => name.clone(),
        }
    }

    /// The global as a plain value (a dtype is data; the rest are names).
    pub(super) fn as_value(&self) -> Value {
        match self {
            Global::Dtype(_, Some(dtype)) => Value::Dtype(*dtype),
            other => Value::Global(other.name().into()),
        }
    }
}

/// The result of calling an allowed global (`REDUCE`, `NEWOBJ`, `INST`, `OBJ`).
pub(super) fn call(m: &mut Machine<'_>, global: &Global, args: Vec<Item>) -> Step<Item> {
    let name = global.name();
    let arity = |lo: usize, hi: usize| {
        if (lo..=hi).contains(&args.len()) {
            Ok(())
        } else {
            Err(format!("{name} called with {} arguments", args.len()))
        }
    };
    match global {
        Global::Dict(_) => {
            arity(0, 1)?;
            let dict = m.new_dict();
            if let Some(arg) = args.first() {
                let pairs = items_of(m, arg)?;
                for pair in pairs {
                    let kv = m.tuple_items(&pair, &name)?;
                    let [k, v] = <[Item; 2]>::try_from(kv).map_err(|_| format!("{name}: an item is not a pair"))?;
                    m.set_item(&dict, k, v)?;
                }
            }
            Ok(dict)
        }
        Global::Set => {
            arity(0, 1)?;
            let set = m.node(Node::Set(Vec::new(), HashSet::new()));
            if let Some(arg) = args.first() {
                let items = items_of(m, arg)?;
                m.add_to_set(&set, items)?;
            }
            Ok(set)
        }
        Global::Bytearray => {
            arity(0, 1)?;
            match args.first() {
                None => Ok(Item::Value(Value::Bytes(Rc::from(&[][..])))),
                Some(Item::Value(Value::Bytes(b))) => Ok(Item::Value(Value::Bytes(b.clone()))),
                Some(other) => Err(format!("bytearray of {}", describe(other, &m.arena))),
            }
        }
        Global::Encode => {
            arity(1, 2)?;
            let text = str_arg(m, &args[0], &name)?;
            let encoding = match args.get(1) {
                Some(e) => str_arg(m, e, &name)?,
                None => "utf-8".into(),
            };
            let bytes: Vec<u8> = match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
                "latin1" | "latin-1" | "iso-8859-1" => text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("{name}: {c:?} is not latin-1")))
                    .collect::<Step<_>>()?,
                "utf-8" | "utf8" => text.as_bytes().to_vec(),
                other => return Err(format!("{name} with encoding {other:?}")),
            };
            Ok(Item::Value(Value::Bytes(bytes.into())))
        }
        Global::Size => {
            arity(0, 1)?;
            let items = match args.first() {
                Some(arg) => items_of(m, arg)?,
                None => Vec::new(),
            };
            for item in &items {
                int_arg(m, item, "torch.Size")?;
            }
            Ok(m.tuple(items))
        }
        Global::Device => {
            arity(1, 2)?;
            let mut device = str_arg(m, &args[0], &name)?;
            if let Some(index) = args.get(1) {
                device = format!("{device}:{}", int_arg(m, index, &name)?);
            }
            Ok(Item::Value(Value::Device(device.into())))
        }
        Global::RebuildTensor(version) => rebuild_tensor(m, *version, &args).map(|t| Item::Value(Value::Tensor(Rc::new(t)))),
        Global::RebuildParameter(_) | Global::Parameter => {
            let (lo, hi) = match global {
                Global::RebuildParameter(false) => (3, 3),
                Global::RebuildParameter(true) => (4, 4),
                _ => (1, 2),
            };
            arity(lo, hi)?;
            let Item::Value(Value::Tensor(t)) = &args[0] else {
                return Err(format!("{name} of {}, not a tensor", describe(&args[0], &m.arena)));
            };
            let requires_grad = match args.get(1) {
                Some(Item::Value(Value::Bool(b))) => *b,
                None => true,
                Some(other) => return Err(format!("{name}: requires_grad is {}", describe(other, &m.arena))),
            };
            // Hooks (always empty) and a parameter's Python attributes are not weights.
            let tensor = TensorRef { requires_grad, ..(**t).clone() };
            Ok(Item::Value(Value::Tensor(Rc::new(tensor))))
        }
        Global::RebuildFromType => {
            arity(4, 4)?;
            let Item::Global(func) = &args[0] else {
                return Err(format!("{name}: the function is {}", describe(&args[0], &m.arena)));
            };
            if !matches!(args[1], Item::Global(Global::TensorClass | Global::Parameter)) {
                return Err(format!("{name}: tensor subclass {} is not allowed", describe(&args[1], &m.arena)));
            }
            let inner = m.tuple_items(&args[2], &name)?;
            // The state holds a subclass's Python attributes; torch.Tensor and Parameter have none
            // that are data.
            call(m, func, inner)
        }
        Global::TensorClass | Global::StorageType(..) | Global::Dtype(..) | Global::Unsupported(_) => {
            Err(format!("{name} is allowed by torch's weights_only list but not supported by clip-rs"))
        }
    }
}

/// `BUILD`: only an `OrderedDict`'s attributes (`_metadata`), which are not weights.
pub(super) fn build(m: &mut Machine<'_>, target: &Item, _state: &Item) -> Step<()> {
    match target {
        Item::Node(id) if matches!(m.arena[*id], Node::Dict(..)) => Ok(()),
        other => Err(format!("BUILD of {}: only an OrderedDict's attributes can be set", describe(other, &m.arena))),
    }
}

/// `BINPERSID`: torch's storage ids, nothing else.
pub(super) fn persistent_load(m: &mut Machine<'_>, pid: &Item) -> Step<Rc<StorageRef>> {
    let items = m.tuple_items(pid, "a persistent id")?;
    let tag = items.first().and_then(string_like);
    if tag.as_deref() != Some("storage") {
        return Err("a persistent id that is not torch's ('storage', …)".into());
    }
    if !(5..=6).contains(&items.len()) {
        return Err(format!("a storage id of {} items (torch writes 5, legacy files 6)", items.len()));
    }
    let dtype = match &items[1] {
        Item::Global(Global::StorageType(_, Some(dtype))) => *dtype,
        Item::Global(g @ Global::StorageType(_, None)) => {
            return Err(format!("{}: a storage type clip-rs does not read", g.name()));
        }
        other => return Err(format!("a storage id whose type is {}", describe(other, &m.arena))),
    };
    let key = string_like(&items[2]).or_else(|| int_arg(m, &items[2], "").ok().map(|i| i.to_string()));
    let key = key.ok_or("a storage key that is neither a string nor an int")?;
    let location = string_like(&items[3]).ok_or("a storage location that is not a string")?;
    let numel = uint_arg(m, &items[4], "a storage's numel")?;
    let view = match items.get(5) {
        None | Some(Item::Value(Value::None)) => None,
        Some(meta) => {
            let parts = m.tuple_items(meta, "storage view metadata")?;
            let [key, offset, numel] = <[Item; 3]>::try_from(parts).map_err(|_| "storage view metadata is not (key, offset, size)")?;
            let key = string_like(&key).ok_or("a storage view key that is not a string")?;
            Some(StorageView { key, offset: uint_arg(m, &offset, "a view offset")?, numel: uint_arg(m, &numel, "a view size")? })
        }
    };
    Ok(Rc::new(StorageRef { dtype, key, location, numel, view }))
}

fn rebuild_tensor(m: &Machine<'_>, version: u8, args: &[Item]) -> Step<TensorRef> {
    let name = Global::RebuildTensor(version).name();
    let (lo, hi) = match version {
        1 => (4, 4),
        2 => (6, 7),
        _ => (7, 8),
    };
    if !(lo..=hi).contains(&args.len()) {
        return Err(format!("{name} called with {} arguments", args.len()));
    }
    let Item::Value(Value::Storage(storage)) = &args[0] else {
        return Err(format!("{name} of {}, not a storage", describe(&args[0], &m.arena)));
    };
    let storage_offset = uint_arg(m, &args[1], "a storage offset")?;
    let size = uints(m, &args[2], "a size")?;
    let stride = uints(m, &args[3], "a stride")?;
    if size.len() != stride.len() {
        return Err(format!("{name}: size {size:?} and stride {stride:?} differ in length"));
    }
    let requires_grad = match args.get(4) {
        None | Some(Item::Value(Value::Bool(false))) => false,
        Some(Item::Value(Value::Bool(true))) => true,
        Some(other) => return Err(format!("{name}: requires_grad is {}", describe(other, &m.arena))),
    };
    let dtype = if version == 3 {
        match &args[6] {
            Item::Global(Global::Dtype(_, Some(d))) => *d,
            Item::Global(g @ Global::Dtype(_, None)) => return Err(format!("{}: a dtype clip-rs does not read", g.name())),
            other => return Err(format!("{name}: the dtype is {}", describe(other, &m.arena))),
        }
    } else {
        storage.dtype
    };
    // Metadata sets the conjugate/negative bits; a tensor with them would read wrong.
    let metadata = args.get(if version == 3 { 7 } else { 6 });
    if let Some(meta) = metadata {
        let empty = match meta {
            Item::Value(Value::None) => true,
            Item::Node(id) => matches!(&m.arena[*id], Node::Dict(items, _) if items.is_empty()),
            _ => false,
        };
        if !empty {
            return Err(format!("{name} with tensor metadata (conjugate or negative bits), which clip-rs does not read"));
        }
    }
    Ok(TensorRef { storage: (**storage).clone(), dtype, storage_offset, size, stride, requires_grad })
}

/// The items of a list, tuple or set argument.
fn items_of(m: &Machine<'_>, item: &Item) -> Step<Vec<Item>> {
    match item {
        Item::Node(id) => match &m.arena[*id] {
            Node::List(items) | Node::Tuple(items) | Node::Set(items, _) => Ok(items.clone()),
            Node::Dict(items, _) => Ok(items.iter().map(|(k, _)| k.clone()).collect()),
        },
        other => Err(format!("expected a list or tuple, found {}", describe(other, &m.arena))),
    }
}

fn string_like(item: &Item) -> Option<String> {
    match item {
        Item::Value(Value::Str(s)) => Some(s.to_string()),
        Item::Value(Value::Bytes(b)) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    }
}

fn str_arg(m: &Machine<'_>, item: &Item, what: &str) -> Step<String> {
    string_like(item).ok_or_else(|| format!("{what}: expected a string, found {}", describe(item, &m.arena)))
}

fn int_arg(m: &Machine<'_>, item: &Item, what: &str) -> Step<i64> {
    match item {
        Item::Value(Value::Int(i)) => Ok(*i),
        other => Err(format!("{what}: expected an int, found {}", describe(other, &m.arena))),
    }
}

fn uint_arg(m: &Machine<'_>, item: &Item, what: &str) -> Step<u64> {
    let i = int_arg(m, item, what)?;
    u64::try_from(i).map_err(|_| format!("{what} is negative ({i})"))
}

fn uints(m: &Machine<'_>, item: &Item, what: &str) -> Step<Vec<u64>> {
    items_of(m, item)?.iter().map(|i| uint_arg(m, i, what)).collect()
}

