//! Strict safetensors I/O between files and tch tensors.
//!
//! Loading into a `VarStore` is all-or-nothing: every missing, unexpected and mis-shaped key is
//! collected into one [`KeyReport`] before anything is copied, so a user sees the whole mismatch at
//! once instead of fixing it key by key, and a model is never left half loaded. Values are cast to
//! the model's dtype and device (an fp16 checkpoint loads into an fp32 model); shapes must match
//! exactly. A caller may name key prefixes of parts of a checkpoint its model does not build (CoCa's
//! captioning decoder, `text_decoder.`): keys under them are set aside and listed in the report's
//! `ignored`, never copied; everything else stays strict. There is no lenient mode.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor, nn::VarStore};

use crate::atomic::atomic_write;
use crate::{Error, Result};

/// A key whose stored shape differs from the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The key.
    pub name: String,
    /// The model's shape.
    pub expected: Vec<i64>,
    /// The file's shape.
    pub found: Vec<i64>,
}

/// Everything that keeps a set of tensors from fitting a model, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// In the model, not in the file.
    pub missing: Vec<String>,
    /// In the file, not in the model.
    pub unexpected: Vec<String>,
    /// In both, with different shapes.
    pub mismatched: Vec<ShapeMismatch>,
    /// In the file under a prefix the caller named as not built: set aside, not problems.
    pub ignored: Vec<String>,
}

impl KeyReport {
    /// Compares the shapes a model expects with the shapes a file holds.
    pub fn compare(expected: &BTreeMap<String, Vec<i64>>, found: &BTreeMap<String, Vec<i64>>) -> Self {
        let mut report = Self::default();
        for (name, shape) in expected {
            match found.get(name) {
                None => report.missing.push(name.clone()),
                Some(other) if other != shape => report.mismatched.push(ShapeMismatch {
                    name: name.clone(),
                    expected: shape.clone(),
                    found: other.clone(),
                }),
                Some(_) => {}
            }
        }
        report.unexpected = found.keys().filter(|name| !expected.contains_key(*name)).cloned().collect();
        report
    }

    /// [`KeyReport::compare`] with the file's keys under `ignored_prefixes` set aside first (into
    /// `ignored`): they are neither unexpected nor matched against the model, so a model variable
    /// under such a prefix is still missing.
    pub fn compare_ignoring(
        expected: &BTreeMap<String, Vec<i64>>,
        found: &BTreeMap<String, Vec<i64>>,
        ignored_prefixes: &[&str],
    ) -> Self {
        let set_aside = |name: &str| ignored_prefixes.iter().any(|prefix| name.starts_with(prefix));
        let (ignored, kept): (BTreeMap<_, _>, BTreeMap<_, _>) =
            found.iter().map(|(k, v)| (k.clone(), v.clone())).partition(|(name, _)| set_aside(name));
        Self { ignored: ignored.into_keys().collect(), ..Self::compare(expected, &kept) }
    }

    /// True when the tensors fit exactly: nothing missing, unexpected or mis-shaped (keys set
    /// aside in `ignored` are no problem).
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for KeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("{} missing [{}]", self.missing.len(), self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("{} unexpected [{}]", self.unexpected.len(), self.unexpected.join(", ")));
        }
        if !self.mismatched.is_empty() {
            let list: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| format!("{}: model {:?}, file {:?}", m.name, m.expected, m.found))
                .collect();
            parts.push(format!("{} with the wrong shape [{}]", self.mismatched.len(), list.join("; ")));
        }
        if !self.ignored.is_empty() {
            parts.push(format!("{} set aside as not built", self.ignored.len()));
        }
        f.write_str(&parts.join("; "))
    }
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        _ => return None,
    })
}

/// A tensor in a mapped safetensors file: its name, bytes, shape and kind.
type Entry<'a> = (String, &'a [u8], Vec<i64>, Kind);

/// Maps a safetensors file and hands `read` its tensors, in the file's order, with their bytes in
/// the map (an unsupported dtype is an error before `read` runs).
fn with_entries<T>(path: &Path, read: impl FnOnce(Vec<Entry<'_>>) -> Result<T>) -> Result<T> {
    let io_error = |source| Error::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_error)?;
    // SAFETY: the map is read-only and dropped on return, and what `read` gets borrows from it.
    // Another process truncating the file meanwhile would fault, as with any mmap reader.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
    let parsed = SafeTensors::deserialize(&mmap).map_err(|source| Error::Safetensors { path: path.to_path_buf(), source })?;
    let mut entries = Vec::with_capacity(parsed.len());
    for (name, view) in parsed.tensors() {
        let kind = kind_of(view.dtype()).ok_or_else(|| Error::UnsupportedDtype {
            path: path.to_path_buf(),
            name: name.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        entries.push((name, view.data(), shape, kind));
    }
    read(entries)
}

/// Reads every tensor of a safetensors file onto the CPU, in the file's dtypes, sorted by key.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    with_entries(path, |entries| {
        let mut tensors = Vec::with_capacity(entries.len());
        for (name, data, shape, kind) in entries {
            tensors.push((name, Tensor::f_from_data_size(data, &shape, kind)?));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(tensors)
    })
}

/// [`read_safetensors`] then [`load_strict_ignoring`], with each tensor copied from the mapped
/// file straight into its variable: the weights are not held twice (ViT-B-32: 605 MB less, and
/// ~0.2 s of copying and page faults less). Keys, shapes and errors are as there.
pub fn load_safetensors_ignoring(vs: &VarStore, path: &Path, ignored_prefixes: &[&str]) -> Result<KeyReport> {
    with_entries(path, |entries| {
        let variables = vs.variables();
        let expected: BTreeMap<String, Vec<i64>> = variables.iter().map(|(name, var)| (name.clone(), var.size())).collect();
        let found: BTreeMap<String, Vec<i64>> = entries.iter().map(|(name, _, shape, _)| (name.clone(), shape.clone())).collect();
        let report = KeyReport::compare_ignoring(&expected, &found, ignored_prefixes);
        if !report.is_empty() {
            return Err(Error::Keys { path: path.to_path_buf(), report });
        }
        let _guard = tch::no_grad_guard();
        for (name, data, shape, kind) in entries {
            let Some(var) = variables.get(&name) else { continue };
            let source = if (data.as_ptr() as usize).is_multiple_of(kind.elt_size_in_bytes()) {
                let strides = contiguous_strides(&shape);
                // SAFETY: `data` holds the tensor's numel · element-size bytes (checked by the
                // parser), aligned for its kind, in the map, which outlives this view; the view
                // is dropped right after the copy, and nothing writes through it.
                unsafe { Tensor::f_from_blob(data.as_ptr(), &shape, &strides, kind, Device::Cpu)? }
            } else {
                Tensor::f_from_data_size(data, &shape, kind)?
            };
            let mut var = var.shallow_clone();
            var.f_copy_(&source)?;
        }
        Ok(report)
    })
}

/// Row-major strides of `shape`, in elements.
fn contiguous_strides(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Copies `tensors` into `vs` if and only if their keys and shapes match the store's variables
/// exactly; otherwise returns [`Error::Keys`] with every problem, and leaves `vs` untouched.
/// `source` names where the tensors came from, for the error.
pub fn load_strict_from(vs: &VarStore, tensors: Vec<(String, Tensor)>, source: &Path) -> Result<()> {
    load_strict_ignoring(vs, tensors, &[], source).map(drop)
}

/// [`load_strict_from`], except that the tensors under `ignored_prefixes` (parts of a checkpoint
/// the model does not build) are set aside rather than unexpected; on success the report lists
/// them in `ignored` (and nothing else). Every other key is held to the same strict rule.
pub fn load_strict_ignoring(
    vs: &VarStore,
    tensors: Vec<(String, Tensor)>,
    ignored_prefixes: &[&str],
    source: &Path,
) -> Result<KeyReport> {
    let variables = vs.variables();
    let expected: BTreeMap<String, Vec<i64>> =
        variables.iter().map(|(name, var)| (name.clone(), var.size())).collect();
    let found: BTreeMap<String, Vec<i64>> =
        tensors.iter().map(|(name, tensor)| (name.clone(), tensor.size())).collect();
    let report = KeyReport::compare_ignoring(&expected, &found, ignored_prefixes);
    if !report.is_empty() {
        return Err(Error::Keys { path: source.to_path_buf(), report });
    }
    let _guard = tch::no_grad_guard();
    for (name, value) in tensors {
        if let Some(var) = variables.get(&name) {
            let mut var = var.shallow_clone();
            var.f_copy_(&value.f_to_kind(var.kind())?)?;
        }
    }
    Ok(report)
}

/// [`read_safetensors`] then [`load_strict_from`], copying from the mapped file as
/// [`load_safetensors_ignoring`] does.
pub fn load_strict(vs: &VarStore, path: &Path) -> Result<()> {
    load_safetensors_ignoring(vs, path, &[]).map(drop)
}

/// A CPU, contiguous tensor as the safetensors serializer sees it.
struct CpuView {
    tensor: Tensor,
    dtype: Dtype,
    shape: Vec<usize>,
}

impl View for &CpuView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        // SAFETY: `tensor` is a contiguous CPU tensor owned by `self`, so its storage holds exactly
        // `data_len()` initialised bytes from `data_ptr()` and outlives the returned borrow.
        let bytes = unsafe { std::slice::from_raw_parts(self.tensor.data_ptr() as *const u8, self.data_len()) };
        Cow::Borrowed(bytes)
    }

    fn data_len(&self) -> usize {
        self.tensor.numel() * self.tensor.kind().elt_size_in_bytes()
    }
}

/// Writes tensors (from any device) to a safetensors file, atomically.
pub fn save_safetensors<S: AsRef<str>>(path: &Path, tensors: &[(S, &Tensor)]) -> Result<()> {
    save_safetensors_with_metadata(path, tensors, &BTreeMap::new())
}

/// The string map of a safetensors file's `__metadata__` (where writers record what the tensors
/// alone do not say, such as the preprocessing that belongs to the weights), without reading the
/// tensor data. Empty when the file has none.
pub fn read_safetensors_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let io_error = |source| Error::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_error)?;
    // SAFETY: read-only map, dropped before return; only the header pages are touched.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
    let (_, metadata) =
        SafeTensors::read_metadata(&mmap).map_err(|source| Error::Safetensors { path: path.to_path_buf(), source })?;
    Ok(metadata.metadata().clone().unwrap_or_default().into_iter().collect())
}

/// [`save_safetensors`] with string `metadata` in the header.
pub fn save_safetensors_with_metadata<S: AsRef<str>>(
    path: &Path,
    tensors: &[(S, &Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut views = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let kind = tensor.f_kind()?;
        let dtype = dtype_of(kind).ok_or_else(|| Error::UnsupportedDtype {
            path: path.to_path_buf(),
            name: name.as_ref().to_owned(),
            dtype: format!("{kind:?}"),
        })?;
        let tensor = tensor.f_to_device(Device::Cpu)?.f_contiguous()?;
        let shape = tensor.size().iter().map(|&d| d as usize).collect();
        views.push((name.as_ref(), CpuView { tensor, dtype, shape }));
    }
    let metadata = (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    let bytes = ::safetensors::tensor::serialize(views.iter().map(|(name, view)| (*name, view)), metadata)
        .map_err(|source| Error::Safetensors { path: path.to_path_buf(), source })?;
    atomic_write(path, |w| w.write_all(&bytes))
}

/// Saves every variable of `vs` (parameters and buffers), atomically.
pub fn save_var_store(vs: &VarStore, path: &Path) -> Result<()> {
    let variables = vs.variables();
    let mut named: Vec<(&String, &Tensor)> = variables.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    save_safetensors(path, &named)
}
