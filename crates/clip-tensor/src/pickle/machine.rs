//! The opcode interpreter: a stack machine over borrowed bytes, containers kept in an arena so that
//! memoised objects mutated after `BINPUT` (the usual `EMPTY_DICT BINPUT … SETITEMS`) are shared,
//! not copied.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::globals::{self, Global};
use super::{MAX_DEPTH, StorageRef, Unpickled, Value};
use crate::{Error, Result};

/// Unpickles one object from the start of `data`, which may hold more after its `STOP`.
pub fn unpickle(data: &[u8]) -> Result<Unpickled> {
    let mut machine = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), arena: Vec::new(), storages: Vec::new() };
    loop {
        let at = machine.pos;
        let step = machine.byte().and_then(|op| machine.step(op));
        match step {
            Ok(Some(result)) => {
                let mut finisher = Finisher { arena: &machine.arena, done: vec![None; machine.arena.len()], busy: vec![false; machine.arena.len()] };
                let value = finisher.value(&result, 0).map_err(|message| Error::Pickle { offset: at, message })?;
                return Ok(Unpickled { value, storages: machine.storages, len: machine.pos });
            }
            Ok(None) => {}
            Err(message) => return Err(Error::Pickle { offset: at, message }),
        }
    }
}

/// A stack entry: a finished immutable value, a container in the arena, or an allowed global.
#[derive(Debug, Clone)]
pub(super) enum Item {
    Value(Value),
    Node(usize),
    Global(Global),
}

/// A mutable container.
#[derive(Debug)]
pub(super) enum Node {
    List(Vec<Item>),
    Tuple(Vec<Item>),
    Dict(Vec<(Item, Item)>, HashMap<Key, usize>),
    Set(Vec<Item>, HashSet<Key>),
}

/// A hashable key, as Python compares them (`1 == 1.0 == True`); unhashable items have none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    None,
    Int(i64),
    Float(u64),
    Big(Rc<[u8]>),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    /// A tuple (by identity: tuple keys never occur in checkpoints).
    Node(usize),
    /// A tensor or storage, which Python hashes by identity.
    Ptr(usize),
}

pub(super) struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: HashMap<u64, Item>,
    pub(super) arena: Vec<Node>,
    pub(super) storages: Vec<Rc<StorageRef>>,
}

type Step<T> = std::result::Result<T, String>;

impl Machine<'_> {
    fn take(&mut self, n: u64) -> Step<&[u8]> {
        let remaining = self.data.len() - self.pos;
        let n = usize::try_from(n).ok().filter(|&n| n <= remaining).ok_or_else(|| {
            format!("truncated pickle: needs {n} more bytes, {remaining} remain")
        })?;
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: u64) -> Step<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Step<&str> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("truncated pickle: a text argument has no end of line")?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| "a text argument is not UTF-8".to_owned())
    }

    fn text(&mut self, n: u64) -> Step<Item> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| "a string is not valid UTF-8".to_owned())?;
        Ok(Item::Value(Value::Str(text.into())))
    }

    fn bytes(&mut self, n: u64) -> Step<Item> {
        Ok(Item::Value(Value::Bytes(self.take(n)?.into())))
    }

    /// A string whose length takes the next `width` bytes.
    fn push_text(&mut self, width: u64) -> Step<()> {
        let n = self.le(width)?;
        let item = self.text(n)?;
        self.stack.push(item);
        Ok(())
    }

    /// Bytes whose length takes the next `width` bytes.
    fn push_bytes(&mut self, width: u64) -> Step<()> {
        let n = self.le(width)?;
        let item = self.bytes(n)?;
        self.stack.push(item);
        Ok(())
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Step<Item> {
        if self.stack.len() <= self.floor() {
            return Err("stack underflow".into());
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Step<&Item> {
        if self.stack.len() <= self.floor() {
            return Err("stack underflow".into());
        }
        Ok(self.stack.last().expect("checked above"))
    }

    fn pop_mark(&mut self) -> Step<Vec<Item>> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(mark))
    }

    pub(super) fn node(&mut self, node: Node) -> Item {
        self.arena.push(node);
        Item::Node(self.arena.len() - 1)
    }

    pub(super) fn tuple(&mut self, items: Vec<Item>) -> Item {
        self.node(Node::Tuple(items))
    }

    pub(super) fn new_dict(&mut self) -> Item {
        self.node(Node::Dict(Vec::new(), HashMap::new()))
    }

    fn push_memo(&mut self, index: u64) -> Step<()> {
        let item = self.top()?.clone();
        self.memo.insert(index, item);
        Ok(())
    }

    /// The memo index of a `PUT`/`GET`-family opcode: a byte, four bytes, a text line, or (for
    /// `MEMOIZE`) the next free one.
    fn memo_index(&mut self, op: u8) -> Step<u64> {
        match op {
            b'q' | b'h' => self.le(1),
            b'r' | b'j' => self.le(4),
            0x94 => Ok(self.memo.len() as u64),
            _ => self.line()?.trim().parse::<u64>().map_err(|_| "a memo index is not a number".to_owned()),
        }
    }

    fn get_memo(&mut self, index: u64) -> Step<()> {
        let item = self.memo.get(&index).ok_or_else(|| format!("memo entry {index} was never stored"))?.clone();
        self.stack.push(item);
        Ok(())
    }

    fn int(&mut self, value: i64) {
        self.stack.push(Item::Value(Value::Int(value)));
    }

    fn long(&mut self, n: u64) -> Step<()> {
        let bytes = self.take(n)?;
        let item = long_value(bytes);
        self.stack.push(Item::Value(item));
        Ok(())
    }

    pub(super) fn key(&self, item: &Item) -> Step<Key> {
        Ok(match item {
            Item::Value(v) => match v {
                Value::None => Key::None,
                Value::Bool(b) => Key::Int(i64::from(*b)),
                Value::Int(i) => Key::Int(*i),
                Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Key::Int(*f as i64),
                Value::Float(f) => Key::Float(f.to_bits()),
                Value::BigInt(b) => Key::Big(b.clone()),
                Value::Str(s) => Key::Str(s.clone()),
                Value::Bytes(b) => Key::Bytes(b.clone()),
                Value::Storage(rc) => Key::Ptr(Rc::as_ptr(rc) as usize),
                Value::Tensor(rc) => Key::Ptr(Rc::as_ptr(rc) as usize),
                Value::Device(d) => Key::Str(format!("<device {d}>").into()),
                Value::Dtype(d) => Key::Str(format!("<dtype {d:?}>").into()),
                Value::Global(g) => Key::Str(format!("<global {g}>").into()),
                Value::Tuple(_) | Value::List(_) | Value::Set(_) | Value::Dict(_) => {
                    return Err("a finished container used as a key".into());
                }
            },
            Item::Node(id) => match &self.arena[*id] {
                Node::Tuple(_) => Key::Node(*id),
                _ => return Err("unhashable type used as a dict key or set member (a list, dict or set)".into()),
            },
            Item::Global(g) => Key::Str(format!("<global {}>", g.name()).into()),
        })
    }

    pub(super) fn set_item(&mut self, target: &Item, key: Item, value: Item) -> Step<()> {
        let hashed = self.key(&key)?;
        let Item::Node(id) = target else { return Err(format!("SETITEM on {}, not a dict", describe(target, &self.arena))) };
        let Node::Dict(items, index) = &mut self.arena[*id] else {
            return Err(format!("SETITEM on {}, not a dict", describe(target, &self.arena)));
        };
        match index.get(&hashed) {
            Some(&at) => items[at].1 = value,
            None => {
                index.insert(hashed, items.len());
                items.push((key, value));
            }
        }
        Ok(())
    }

    pub(super) fn add_to_set(&mut self, target: &Item, items: Vec<Item>) -> Step<()> {
        let keys = items.iter().map(|item| self.key(item)).collect::<Step<Vec<_>>>()?;
        let Item::Node(id) = target else { return Err(format!("ADDITEMS on {}, not a set", describe(target, &self.arena))) };
        let Node::Set(members, index) = &mut self.arena[*id] else {
            return Err(format!("ADDITEMS on {}, not a set", describe(target, &self.arena)));
        };
        for (item, key) in items.into_iter().zip(keys) {
            if index.insert(key) {
                members.push(item);
            }
        }
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Item>) -> Step<()> {
        let target = self.top()?.clone();
        match &target {
            Item::Node(id) if matches!(self.arena[*id], Node::List(_)) => {
                let Node::List(list) = &mut self.arena[*id] else { unreachable!() };
                list.extend(items);
                Ok(())
            }
            _ => Err(format!("APPEND to {}: only lists can be appended to", describe(&target, &self.arena))),
        }
    }

    /// Runs one opcode; `Some` at `STOP`.
    fn step(&mut self, op: u8) -> Step<Option<Item>> {
        match op {
            // Framing and protocol.
            0x80 => {
                let protocol = self.byte()?;
                if protocol > 5 {
                    return Err(format!("pickle protocol {protocol} is newer than 5"));
                }
            }
            0x95 => {
                let len = self.le(8)?;
                if len > (self.data.len() - self.pos) as u64 {
                    return Err(format!("truncated pickle: a frame of {len} bytes runs past the end"));
                }
            }
            b'.' => return Ok(Some(self.pop()?)),
            // Stack and memo.
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.stack.len() > self.floor() {
                    self.stack.pop();
                } else {
                    self.pop_mark()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.stack.push(top);
            }
            b'q' | b'r' | b'p' | 0x94 => {
                let i = self.memo_index(op)?;
                self.push_memo(i)?;
            }
            b'h' | b'j' | b'g' => {
                let i = self.memo_index(op)?;
                self.get_memo(i)?;
            }
            // Constants and numbers.
            b'N' => self.stack.push(Item::Value(Value::None)),
            0x88 => self.stack.push(Item::Value(Value::Bool(true))),
            0x89 => self.stack.push(Item::Value(Value::Bool(false))),
            b'J' => {
                let v = self.le(4)? as u32 as i32;
                self.int(i64::from(v));
            }
            b'K' => {
                let v = self.le(1)?;
                self.int(v as i64);
            }
            b'M' => {
                let v = self.le(2)?;
                self.int(v as i64);
            }
            0x8a => {
                let n = self.le(1)?;
                self.long(n)?;
            }
            0x8b => {
                let n = self.le(4)?;
                self.long(n)?;
            }
            b'G' => {
                let bytes: [u8; 8] = self.take(8)?.try_into().expect("8 bytes");
                self.stack.push(Item::Value(Value::Float(f64::from_be_bytes(bytes))));
            }
            b'I' => {
                let line = self.line()?.trim().to_owned();
                let item = match line.as_str() {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    text => Value::Int(text.parse().map_err(|_| format!("INT {text:?} is not a 64-bit integer"))?),
                };
                self.stack.push(Item::Value(item));
            }
            b'L' => {
                let line = self.line()?.trim().trim_end_matches('L').to_owned();
                let v = line.parse().map_err(|_| format!("LONG {line:?} is not a 64-bit integer"))?;
                self.int(v);
            }
            b'F' => {
                let line = self.line()?.trim().to_owned();
                let v = line.parse().map_err(|_| format!("FLOAT {line:?} is not a number"))?;
                self.stack.push(Item::Value(Value::Float(v)));
            }
            // Strings and bytes.
            b'X' => self.push_text(4)?,
            0x8c => self.push_text(1)?,
            0x8d => self.push_text(8)?,
            // Python 2 `str`: torch.load decodes them as UTF-8.
            b'U' => self.push_text(1)?,
            b'T' => {
                let n = self.le(4)? as u32 as i32;
                let n = u64::try_from(n).map_err(|_| "BINSTRING with a negative length".to_owned())?;
                let item = self.text(n)?;
                self.stack.push(item);
            }
            b'C' => self.push_bytes(1)?,
            b'B' => self.push_bytes(4)?,
            0x8e | 0x96 => self.push_bytes(8)?,
            // Containers.
            b')' => {
                let item = self.tuple(Vec::new());
                self.stack.push(item);
            }
            b't' => {
                let items = self.pop_mark()?;
                let item = self.tuple(items);
                self.stack.push(item);
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < self.floor() + n {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                let item = self.tuple(items);
                self.stack.push(item);
            }
            b']' => {
                let item = self.node(Node::List(Vec::new()));
                self.stack.push(item);
            }
            b'l' => {
                let items = self.pop_mark()?;
                let item = self.node(Node::List(items));
                self.stack.push(item);
            }
            b'}' => {
                let item = self.new_dict();
                self.stack.push(item);
            }
            b'd' => {
                let items = self.pop_mark()?;
                let dict = self.new_dict();
                self.fill_dict(&dict, items)?;
                self.stack.push(dict);
            }
            0x8f => {
                let item = self.node(Node::Set(Vec::new(), HashSet::new()));
                self.stack.push(item);
            }
            0x91 => {
                let items = self.pop_mark()?;
                let set = self.node(Node::Set(Vec::new(), HashSet::new()));
                self.add_to_set(&set, items)?;
                self.stack.push(set);
            }
            b'a' => {
                let item = self.pop()?;
                self.extend_list(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                let target = self.top()?.clone();
                self.set_item(&target, key, value)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let target = self.top()?.clone();
                self.fill_dict(&target, items)?;
            }
            0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?.clone();
                self.add_to_set(&target, items)?;
            }
            // Globals and calls: only what the allow-list resolves ever reaches the stack.
            b'c' => {
                let module = self.line()?.to_owned();
                let name = self.line()?.to_owned();
                let global = globals::resolve(&module, &name)?;
                self.stack.push(Item::Global(global));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Item::Value(Value::Str(module)), Item::Value(Value::Str(name))) = (&module, &name) else {
                    return Err("STACK_GLOBAL needs two strings".into());
                };
                let global = globals::resolve(module, name)?;
                self.stack.push(Item::Global(global));
            }
            b'i' => {
                let module = self.line()?.to_owned();
                let name = self.line()?.to_owned();
                let global = globals::resolve(&module, &name)?;
                let args = self.pop_mark()?;
                let result = globals::call(self, &global, args)?;
                self.stack.push(result);
            }
            b'o' => {
                let mut items = self.pop_mark()?.into_iter();
                let callee = items.next().ok_or("OBJ without a class")?;
                let result = self.call_item(&callee, items.collect())?;
                self.stack.push(result);
            }
            // REDUCE (callable, args) and NEWOBJ (class, args) mean the same here.
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callee = self.pop()?;
                let args = self.tuple_items(&args, if op == b'R' { "REDUCE" } else { "NEWOBJ" })?;
                let result = self.call_item(&callee, args)?;
                self.stack.push(result);
            }
            0x92 => {
                let kwargs = self.pop()?;
                if !matches!(&kwargs, Item::Node(id) if matches!(&self.arena[*id], Node::Dict(items, _) if items.is_empty())) {
                    return Err("NEWOBJ_EX with keyword arguments".into());
                }
                return self.step(0x81);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                globals::build(self, &target, &state)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = globals::persistent_load(self, &pid)?;
                self.storages.push(storage.clone());
                self.stack.push(Item::Value(Value::Storage(storage)));
            }
            b'P' => return Err("a text persistent id (PERSID); torch.save writes only BINPERSID".into()),
            0x82..=0x84 => return Err("an extension-registry global (EXT1/EXT2/EXT4), which is never allowed".into()),
            0x97 | 0x98 => return Err("an out-of-band buffer (NEXT_BUFFER/READONLY_BUFFER)".into()),
            b'S' | b'V' => return Err("a protocol-0 text string (STRING/UNICODE); torch.save writes protocol 2".into()),
            other => return Err(format!("unknown opcode 0x{other:02x}")),
        }
        Ok(None)
    }

    fn fill_dict(&mut self, target: &Item, items: Vec<Item>) -> Step<()> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of items".into());
        }
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            self.set_item(target, key, value)?;
        }
        if let Item::Node(id) = target
            && matches!(self.arena[*id], Node::Dict(..))
        {
            return Ok(());
        }
        Err(format!("SETITEMS on {}, not a dict", describe(target, &self.arena)))
    }

    pub(super) fn tuple_items(&self, item: &Item, op: &str) -> Step<Vec<Item>> {
        match item {
            Item::Node(id) => match &self.arena[*id] {
                Node::Tuple(items) => Ok(items.clone()),
                _ => Err(format!("{op} arguments are {}, not a tuple", describe(item, &self.arena))),
            },
            _ => Err(format!("{op} arguments are {}, not a tuple", describe(item, &self.arena))),
        }
    }

    fn call_item(&mut self, callee: &Item, args: Vec<Item>) -> Step<Item> {
        match callee {
            Item::Global(global) => globals::call(self, global, args),
            other => Err(format!("cannot call {}: only allowed globals are callable", describe(other, &self.arena))),
        }
    }
}

/// `LONG1`/`LONG4` bytes: little-endian two's complement.
fn long_value(bytes: &[u8]) -> Value {
    if bytes.len() <= 8 {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(bytes.into())
    }
}

/// What an item is, for error messages.
pub(super) fn describe(item: &Item, arena: &[Node]) -> String {
    match item {
        Item::Value(v) => v.kind().to_owned(),
        Item::Node(id) => match &arena[*id] {
            Node::List(_) => "a list".into(),
            Node::Tuple(_) => "a tuple".into(),
            Node::Dict(..) => "a dict".into(),
            Node::Set(..) => "a set".into(),
        },
        Item::Global(g) => format!("the global {}", g.name()),
    }
}

/// Turns the arena graph into [`Value`]s, converting each container once (shared stays shared).
struct Finisher<'a> {
    arena: &'a [Node],
    done: Vec<Option<Value>>,
    busy: Vec<bool>,
}

impl Finisher<'_> {
    fn value(&mut self, item: &Item, depth: usize) -> Step<Value> {
        if depth > MAX_DEPTH {
            return Err(format!("containers nest deeper than {MAX_DEPTH} levels"));
        }
        let id = match item {
            Item::Value(v) => return Ok(v.clone()),
            Item::Global(g) => return Ok(g.as_value()),
            Item::Node(id) => *id,
        };
        if let Some(done) = &self.done[id] {
            return Ok(done.clone());
        }
        if self.busy[id] {
            return Err("a recursive structure (a container that contains itself)".into());
        }
        self.busy[id] = true;
        let list = |this: &mut Self, items: &[Item]| items.iter().map(|i| this.value(i, depth + 1)).collect::<Step<Rc<[Value]>>>();
        let value = match &self.arena[id] {
            Node::List(items) => Value::List(list(self, items)?),
            Node::Tuple(items) => Value::Tuple(list(self, items)?),
            Node::Set(items, _) => Value::Set(list(self, items)?),
            Node::Dict(items, _) => Value::Dict(
                items
                    .iter()
                    .map(|(k, v)| Ok((self.value(k, depth + 1)?, self.value(v, depth + 1)?)))
                    .collect::<Step<Rc<[(Value, Value)]>>>()?,
            ),
        };
        self.busy[id] = false;
        self.done[id] = Some(value.clone());
        Ok(value)
    }
}
