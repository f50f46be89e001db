//! Reading `torch.save` files (`pytorch_model.bin`, `open_clip_pytorch_model.bin`, open_clip_train's
//! `epoch_N.pt`) without Python and without running anything: the pickle goes through
//! [`crate::pickle`], the restricted unpickler, and tensors are rebuilt here from the raw storages.
//!
//! Two layouts (torch/serialization.py, torch 2.11):
//! - **zip** (torch ≥ 1.6's default): `ARCHIVE/data.pkl` is the pickle, each storage is the record
//!   `ARCHIVE/data/{key}`, stored uncompressed, and `ARCHIVE/byteorder` says `little` (absent in
//!   old files, which torch also reads as little-endian). Records are read with libtorch's own zip
//!   reader (`PyTorchStreamReader`, through the C++ shim in `csrc/zip.cpp`), the one `torch.load`
//!   uses, straight into each storage's tensor; it adds no dependency and agrees with torch on
//!   zip64 and the record alignment.
//! - **legacy** (`_use_new_zipfile_serialization=False`): five pickles in a row (torch's magic
//!   number, protocol version 1001, `sys_info`, the object, the sorted storage keys), then each
//!   storage as an 8-byte little-endian element count and its raw little-endian bytes. The file is
//!   memory-mapped. (The pre-1.0 tar layout is refused, as `weights_only` does.)
//!
//! A storage is read only when a tensor asks for it ([`TorchSave::tensor`]), once: tensors that
//! share a storage come back as views of one tensor, with their offsets and strides. Every size is
//! checked first: a storage record must hold exactly `numel × itemsize` bytes and every element a
//! view can reach must lie inside it, so a malicious file gets an error, never an out-of-bounds
//! read or an allocation larger than the file. Big-endian files are refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::fs::File;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::pickle::{Dtype, StorageRef, TensorRef, Unpickled, Value, unpickle};
use crate::{Error, Result};

#[repr(C)]
struct RawZip {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn clip_zip_open(path: *const c_char, out: *mut *mut RawZip) -> *mut c_char;
    fn clip_zip_len(zip: *const RawZip) -> usize;
    fn clip_zip_name(zip: *const RawZip, i: usize) -> *const c_char;
    fn clip_zip_size(zip: *mut RawZip, name: *const c_char, size: *mut u64) -> *mut c_char;
    fn clip_zip_read(zip: *mut RawZip, name: *const c_char, dst: *mut libc::c_void, n: usize) -> *mut c_char;
    fn clip_zip_free(zip: *mut RawZip);
    fn clip_zip_free_error(message: *mut c_char);
}

/// Takes a shim error message (malloc'd, or null for success).
fn shim_result(message: *mut c_char) -> std::result::Result<(), String> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a malloc'd NUL-terminated message, freed once here.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    unsafe { clip_zip_free_error(message) };
    Err(text)
}

/// A PyTorch zip archive opened with libtorch's reader.
struct Archive {
    raw: *mut RawZip,
    names: Vec<String>,
    file_len: u64,
}

impl Drop for Archive {
    fn drop(&mut self) {
        // SAFETY: `raw` came from clip_zip_open and is freed only here.
        unsafe { clip_zip_free(self.raw) };
    }
}

impl Archive {
    fn open(path: &Path) -> std::result::Result<Self, String> {
        let file_len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        let c_path = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| "path contains NUL".to_owned())?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid C string and out-pointer; the shim catches every C++ exception.
        shim_result(unsafe { clip_zip_open(c_path.as_ptr(), &mut raw) })?;
        // SAFETY: `raw` is live; names are NUL-terminated strings it owns, copied out here.
        let names = unsafe {
            (0..clip_zip_len(raw)).map(|i| CStr::from_ptr(clip_zip_name(raw, i)).to_string_lossy().into_owned()).collect()
        };
        Ok(Self { raw, names, file_len })
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// A record's size, refused when it claims more bytes than the file has.
    fn size(&self, name: &str) -> std::result::Result<usize, String> {
        let c_name = CString::new(name).map_err(|_| format!("record name {name:?} contains NUL"))?;
        let mut size = 0u64;
        // SAFETY: live archive, valid C string and out-pointer.
        shim_result(unsafe { clip_zip_size(self.raw, c_name.as_ptr(), &mut size) })?;
        if size > self.file_len {
            return Err(format!("record {name} claims {size} bytes, more than the whole file ({})", self.file_len));
        }
        usize::try_from(size).map_err(|_| format!("record {name} is too large"))
    }

    /// Copies a record of exactly `dst.len()` bytes into `dst`.
    fn read_into(&self, name: &str, dst: &mut [u8]) -> std::result::Result<(), String> {
        if dst.is_empty() {
            return Ok(());
        }
        let c_name = CString::new(name).map_err(|_| format!("record name {name:?} contains NUL"))?;
        // SAFETY: `dst` is a live, writable buffer of `dst.len()` bytes.
        shim_result(unsafe { clip_zip_read(self.raw, c_name.as_ptr(), dst.as_mut_ptr().cast(), dst.len()) })
    }
}

/// The names of the records of a PyTorch zip archive (torch.save or TorchScript), relative to its
/// top folder: `data.pkl`, `data/0`, `constants.pkl`, `code/__torch__.py`, …
pub fn archive_records(path: &Path) -> Result<Vec<String>> {
    let archive = Archive::open(path).map_err(|message| Error::TorchSave { path: path.to_path_buf(), message })?;
    Ok(archive.names.clone())
}

/// Per storage key, the byte range of its data in a legacy file.
type Ranges = HashMap<String, (usize, usize)>;

/// Where the storages are.
enum Storages {
    Zip(Archive),
    /// The mapped file and, per storage key, the byte range of its data.
    Legacy { map: memmap2::Mmap, ranges: Ranges },
}

/// An opened torch.save file: the unpickled object, and its storages read on demand.
pub struct TorchSave {
    path: PathBuf,
    root: Value,
    storages: Storages,
    loaded: RefCell<HashMap<String, Tensor>>,
}

impl std::fmt::Debug for TorchSave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchSave").field("path", &self.path).finish_non_exhaustive()
    }
}

/// torch's `MAGIC_NUMBER`, 0x1950a86a20f9469cfc6c, as pickle's `LONG1` stores it.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

impl TorchSave {
    /// Opens a torch.save file of either layout and unpickles its object (tensor data is not read
    /// yet). Fails on anything the restricted unpickler refuses, naming the global.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |message: String| Error::TorchSave { path: path.to_path_buf(), message };
        let mut head = [0u8; 4];
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let n = std::io::Read::read(&mut File::open(path).map_err(io)?, &mut head).map_err(io)?;
        let (root, storages) = if head[..n].starts_with(b"PK\x03\x04") {
            let archive = Archive::open(path).map_err(fail)?;
            if !archive.has("data.pkl") {
                return Err(fail("a zip archive without data.pkl".into()));
            }
            if archive.has("constants.pkl") {
                return Err(fail("a TorchScript archive (it has constants.pkl), not a torch.save file".into()));
            }
            if archive.has("byteorder") {
                let mut order = vec![0u8; archive.size("byteorder").map_err(fail)?];
                archive.read_into("byteorder", &mut order).map_err(fail)?;
                if order != b"little" {
                    let order = String::from_utf8_lossy(&order).into_owned();
                    return Err(fail(format!("byte order {order:?}: only little-endian checkpoints are read")));
                }
            }
            let mut pickle = vec![0u8; archive.size("data.pkl").map_err(fail)?];
            archive.read_into("data.pkl", &mut pickle).map_err(fail)?;
            let Unpickled { value, .. } = unpickle(&pickle).map_err(|e| fail(format!("data.pkl: {e}")))?;
            (value, Storages::Zip(archive))
        } else {
            let file = File::open(path).map_err(io)?;
            // SAFETY: read-only map, kept while tensors are copied out of it; another process
            // truncating the file meanwhile would fault, as with any mmap reader.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
            let (value, ranges) = legacy(&map).map_err(fail)?;
            (value, Storages::Legacy { map, ranges })
        };
        Ok(Self { path: path.to_path_buf(), root, storages, loaded: RefCell::new(HashMap::new()) })
    }

    /// The unpickled object (a state dict, or a training checkpoint holding one).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, message: String) -> Error {
        Error::TorchSave { path: self.path.clone(), message }
    }

    /// A tensor of the object, on the CPU in its saved dtype: a strided view of its storage
    /// (read on first use, then shared with every other tensor on it).
    pub fn tensor(&self, t: &TensorRef) -> Result<Tensor> {
        let kind = kind_of(t.dtype);
        let storage = self.storage(&t.storage)?;
        let bytes = match &t.storage.view {
            None => storage,
            Some(view) => {
                let item = t.storage.dtype.size() as u64;
                let (start, len) = (view.offset.checked_mul(item), view.numel.checked_mul(item));
                let total = storage.numel() as u64;
                match (start, len) {
                    (Some(s), Some(l)) if s.checked_add(l).is_some_and(|end| end <= total) => {
                        storage.f_narrow(0, s as i64, l as i64)?
                    }
                    _ => return Err(self.fail(format!("storage view {} runs past storage {}", view.key, t.storage.key))),
                }
            }
        };
        let nbytes = bytes.numel();
        let item = t.dtype.size();
        if nbytes % item != 0 {
            return Err(self.fail(format!("storage {} ({nbytes} bytes) is not a whole number of {:?} elements", t.storage.key, t.dtype)));
        }
        check_view((nbytes / item) as u64, t).map_err(|m| self.fail(format!("storage {}: {m}", t.storage.key)))?;
        let typed = if nbytes == 0 { Tensor::f_empty([0], (kind, Device::Cpu))? } else { bytes.f_view_dtype(kind)? };
        let size: Vec<i64> = t.size.iter().map(|&s| s as i64).collect();
        let stride: Vec<i64> = t.stride.iter().map(|&s| s as i64).collect();
        Ok(typed.f_as_strided(size, stride, Some(t.storage_offset as i64))?)
    }

    /// The bytes of a (root) storage, as a 1-D `u8` tensor.
    fn storage(&self, s: &StorageRef) -> Result<Tensor> {
        if let Some(t) = self.loaded.borrow().get(&s.key) {
            return Ok(t.shallow_clone());
        }
        let nbytes = s
            .numel
            .checked_mul(s.dtype.size() as u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.fail(format!("storage {} claims {} elements", s.key, s.numel)))?;
        let bytes = match &self.storages {
            Storages::Zip(archive) => {
                let name = format!("data/{}", s.key);
                let size = archive.size(&name).map_err(|m| self.fail(m))?;
                if size != nbytes {
                    return Err(self.fail(format!("record {name} holds {size} bytes, but its storage is {} × {} bytes", s.numel, s.dtype.size())));
                }
                let t = Tensor::f_empty([nbytes as i64], (Kind::Uint8, Device::Cpu))?;
                if nbytes > 0 {
                    // SAFETY: `t` is a new contiguous CPU tensor of exactly `nbytes` bytes, owned here.
                    let dst = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, nbytes) };
                    archive.read_into(&name, dst).map_err(|m| self.fail(m))?;
                }
                t
            }
            Storages::Legacy { map, ranges } => {
                let &(start, len) = ranges.get(&s.key).ok_or_else(|| self.fail(format!("storage {} has no data in the file", s.key)))?;
                if len != nbytes {
                    return Err(self.fail(format!("storage {} holds {len} bytes, but the pickle says {} × {}", s.key, s.numel, s.dtype.size())));
                }
                Tensor::f_from_data_size(&map[start..start + len], &[len as i64], Kind::Uint8)?
            }
        };
        self.loaded.borrow_mut().insert(s.key.clone(), bytes.shallow_clone());
        Ok(bytes)
    }

    /// The tensors of a dict of them (a state dict), in the file's order. Any entry that is not
    /// a string key with a tensor value is an error naming it.
    pub fn tensors(&self, dict: &Value) -> Result<Vec<(String, Tensor)>> {
        let Value::Dict(items) = dict else {
            return Err(self.fail(format!("expected a dict of tensors, found {}", dict.kind())));
        };
        let mut out = Vec::with_capacity(items.len());
        for (key, value) in items.iter() {
            let name = key.as_str().ok_or_else(|| self.fail(format!("a state-dict key is {}, not a str", key.kind())))?;
            let Value::Tensor(t) = value else {
                return Err(self.fail(format!("{name:?} is {}, not a tensor", value.kind())));
            };
            out.push((name.to_owned(), self.tensor(t)?));
        }
        Ok(out)
    }
}

/// Every tensor of a torch.save file whose object is a flat dict of tensors (a state dict).
pub fn read_torch_save(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = TorchSave::open(path)?;
    file.tensors(file.root())
}

fn kind_of(dtype: Dtype) -> Kind {
    match dtype {
        Dtype::F64 => Kind::Double,
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::Bool => Kind::Bool,
        Dtype::C64 => Kind::ComplexFloat,
        Dtype::C128 => Kind::ComplexDouble,
        Dtype::F8E5M2 => Kind::Float8e5m2,
        Dtype::F8E4M3 => Kind::Float8e4m3fn,
    }
}

/// Checks that every element a strided view reaches lies among `elements`.
pub(crate) fn check_view(elements: u64, t: &TensorRef) -> std::result::Result<(), String> {
    let describe = || format!("size {:?}, stride {:?}, offset {}", t.size, t.stride, t.storage_offset);
    let too_big = || format!("a tensor of {} does not fit 64-bit indexing", describe());
    let limit = i64::MAX as u64;
    let mut numel = 1u64;
    for &s in &t.size {
        numel = numel.checked_mul(s).filter(|&n| n <= limit).ok_or_else(too_big)?;
    }
    if t.stride.iter().any(|&s| s > limit) || t.storage_offset > limit {
        return Err(too_big());
    }
    if numel == 0 {
        return if t.storage_offset <= elements { Ok(()) } else { Err(format!("{} starts past its {elements} elements", describe())) };
    }
    let mut last = t.storage_offset;
    for (&size, &stride) in t.size.iter().zip(&t.stride) {
        last = (size - 1).checked_mul(stride).and_then(|step| last.checked_add(step)).filter(|&l| l <= limit).ok_or_else(too_big)?;
    }
    if last >= elements {
        return Err(format!("a tensor of {} reaches element {last}, but the storage has {elements}", describe()));
    }
    Ok(())
}

/// Parses a legacy file: checks the header pickles, unpickles the object and finds where each
/// storage's bytes are.
fn legacy(data: &[u8]) -> std::result::Result<(Value, Ranges), String> {
    let mut pos = 0;
    let mut next = |what: &str| -> std::result::Result<Unpickled, String> {
        let u = unpickle(&data[pos..]).map_err(|e| format!("{what}: {e}"))?;
        pos += u.len;
        Ok(u)
    };
    let magic = next("the header")?;
    if !matches!(&magic.value, Value::BigInt(b) if **b == MAGIC) {
        return Err("a pickle without torch's magic number (not written by torch.save)".into());
    }
    let protocol = next("the header")?;
    if protocol.value.as_int() != Some(1001) {
        return Err(format!("legacy protocol version {:?}, expected 1001", protocol.value));
    }
    let sys_info = next("the header")?;
    if sys_info.value.get("little_endian") != Some(&Value::Bool(true)) {
        return Err("saved on a big-endian machine: only little-endian checkpoints are read".into());
    }
    let object = next("the object")?;
    let keys = next("the storage keys")?;
    let mut dtypes: HashMap<&str, Dtype> = HashMap::new();
    for s in &object.storages {
        if *dtypes.entry(&s.key).or_insert(s.dtype) != s.dtype {
            return Err(format!("storage {} is named with two dtypes", s.key));
        }
    }
    let Value::List(keys) = keys.value else { return Err("the storage keys are not a list".into()) };
    let mut ranges = HashMap::new();
    for key in keys.iter() {
        let key = match key {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            other => return Err(format!("a storage key is {}", other.kind())),
        };
        let dtype = *dtypes.get(key.as_str()).ok_or_else(|| format!("storage {key} is listed but no tensor uses it"))?;
        let count: [u8; 8] = data.get(pos..pos + 8).and_then(|b| b.try_into().ok()).ok_or_else(|| format!("truncated file: storage {key} has no length"))?;
        let count = u64::from_le_bytes(count);
        let len = count
            .checked_mul(dtype.size() as u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= data.len() - pos - 8)
            .ok_or_else(|| format!("truncated file: storage {key} claims {count} elements, more than remain"))?;
        ranges.insert(key, (pos + 8, len));
        pos += 8 + len;
    }
    Ok((object.value, ranges))
}
