//! A restricted unpickler for torch's pickles: a pure data interpreter that follows torch's
//! `weights_only=True` allow-list (`torch/_weights_only_unpickler.py`, torch 2.11) and never
//! runs anything.
//!
//! Every opcode of pickle protocols 2–5 that builds data is interpreted (plus the protocol-0/1
//! ones torch still writes: `MARK`, `BINPUT`, `SETITEMS`, …). A `GLOBAL`/`STACK_GLOBAL`/`INST`
//! names a class or function; only those torch's allow-list admits and checkpoints use resolve
//! (tensor rebuilds, `collections.OrderedDict`, `torch.Size`, `torch.device`, `_codecs.encode`,
//! `builtins.set`, dtypes, storage types, …), each to a Rust value built here. Any other name is an
//! error that names it ([`crate::Error::Pickle`]), raised when the opcode is read: nothing is
//! imported, looked up or called. `REDUCE`/`NEWOBJ`/`OBJ`/`BUILD` apply only to those values.
//!
//! Tensors are not read here: a persistent id `('storage', type, key, location, numel[, view])`
//! becomes a [`StorageRef`] and `torch._utils._rebuild_tensor_v2` a [`TensorRef`] (storage,
//! offset, size, stride); [`crate::torch_save`] turns them into tensors.
//!
//! Shared references (`BINGET` of a memoised list) stay shared in the result ([`Value`] holds
//! `Rc`s), so a pickle that references one object many times cannot make the result grow
//! exponentially; recursive structures and nesting deeper than [`MAX_DEPTH`] are errors. Every
//! length is checked against the bytes that remain before anything is allocated.

mod globals;
mod machine;

use std::rc::Rc;

pub use machine::unpickle;

/// How deeply containers may nest in the result.
pub const MAX_DEPTH: usize = 256;

/// An unpickled object. Containers are shared (`Rc`) as the pickle shared them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A larger integer, as pickle's `LONG1`/`LONG4` store it: little-endian two's complement.
    BigInt(Rc<[u8]>),
    /// A float.
    Float(f64),
    /// A `str` (and Python 2 `str`, decoded as UTF-8 as `torch.load` does).
    Str(Rc<str>),
    /// `bytes` or `bytearray`.
    Bytes(Rc<[u8]>),
    /// A tuple (also `torch.Size`).
    Tuple(Rc<[Value]>),
    /// A list.
    List(Rc<[Value]>),
    /// A set or frozenset, in insertion order.
    Set(Rc<[Value]>),
    /// A dict, `OrderedDict` or `Counter`, in insertion order (a repeated key keeps its first place
    /// and its last value, as in Python).
    Dict(Rc<[(Value, Value)]>),
    /// A storage, from a persistent id.
    Storage(Rc<StorageRef>),
    /// A tensor or `nn.Parameter`, rebuilt from a storage.
    Tensor(Rc<TensorRef>),
    /// A `torch.device`, as written (`cpu`, `cuda:0`).
    Device(Rc<str>),
    /// A `torch.dtype`.
    Dtype(Dtype),
    /// An allowed class or function left as a plain value (`collections.OrderedDict`, …).
    Global(Rc<str>),
}

impl Value {
    /// The value under a string key, if this is a dict that has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of an integer that fits 64 bits.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages (`a dict`, `a tensor`).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::BigInt(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Set(_) => "a set",
            Value::Dict(_) => "a dict",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
            Value::Device(_) => "a device",
            Value::Dtype(_) => "a dtype",
            Value::Global(_) => "a class or function",
        }
    }
}

/// The element types torch.save files hold that clip-rs reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `torch.float64`.
    F64,
    /// `torch.float32`.
    F32,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    BF16,
    /// `torch.int64`.
    I64,
    /// `torch.int32`.
    I32,
    /// `torch.int16`.
    I16,
    /// `torch.int8`.
    I8,
    /// `torch.uint8` (also the bytes of an untyped storage).
    U8,
    /// `torch.bool`.
    Bool,
    /// `torch.complex64`.
    C64,
    /// `torch.complex128`.
    C128,
    /// `torch.float8_e5m2`.
    F8E5M2,
    /// `torch.float8_e4m3fn`.
    F8E4M3,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 | Dtype::C64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool | Dtype::F8E5M2 | Dtype::F8E4M3 => 1,
            Dtype::C128 => 16,
        }
    }
}

/// A storage as a persistent id names it: `('storage', torch.FloatStorage, key, location, numel)`
/// in zip files; legacy files add a view of another storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// The element type of the storage class (`FloatStorage` → f32; `UntypedStorage` → u8).
    pub dtype: Dtype,
    /// The storage's key: the record `data/{key}` of a zip, or an entry of a legacy file.
    pub key: String,
    /// Where it was saved from (`cpu`, `cuda:0`); tensors are always read onto the CPU.
    pub location: String,
    /// Its length in elements of `dtype`.
    pub numel: u64,
    /// Legacy files only: this storage is a slice of `key`'s.
    pub view: Option<StorageView>,
}

/// A legacy storage that is a slice of another one (`view_metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageView {
    /// The view's own key.
    pub key: String,
    /// Where it starts in the root storage, in elements.
    pub offset: u64,
    /// Its length, in elements.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// Where the elements are.
    pub storage: StorageRef,
    /// The tensor's element type: the storage's, except for `_rebuild_tensor_v3`.
    pub dtype: Dtype,
    /// First element, counted in `dtype` elements from the storage's start.
    pub storage_offset: u64,
    /// Shape.
    pub size: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
    /// Whether it was saved requiring grad (a `Parameter`'s default).
    pub requires_grad: bool,
}

/// The result of [`unpickle`].
#[derive(Debug)]
pub struct Unpickled {
    /// The object.
    pub value: Value,
    /// Every storage a persistent id named, in the order they were met.
    pub storages: Vec<Rc<StorageRef>>,
    /// How many bytes the pickle took (it ends at its `STOP`).
    pub len: usize,
}

#[cfg(test)]
mod tests;
