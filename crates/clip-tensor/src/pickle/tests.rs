//! The interpreter on hand-written opcode streams (Python's `pickle.dumps` output in comments).

use super::*;
use crate::Error;

fn load(bytes: &[u8]) -> Value {
    unpickle(bytes).unwrap_or_else(|e| panic!("{e}")).value
}

fn refusal(bytes: &[u8]) -> String {
    match unpickle(bytes) {
        Err(Error::Pickle { message, .. }) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

#[test]
fn primitives_of_every_width() {
    // pickle.dumps((1, 300, 70000, -2, 2**70, 1.5, "é", b"ab", None, True, False), protocol=4)
    let data = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00(K\x01M,\x01J\x70\x11\x01\x00J\xfe\xff\xff\xff\
\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@G?\xf8\x00\x00\x00\x00\x00\x00\x8c\x02\xc3\xa9\x94C\x02abN\x88\x89t\x94.";
    let Value::Tuple(items) = load(data) else { panic!() };
    let big = Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0x40].into());
    let expected = [
        Value::Int(1),
        Value::Int(300),
        Value::Int(70000),
        Value::Int(-2),
        big,
        Value::Float(1.5),
        s("é"),
        Value::Bytes(b"ab"[..].into()),
        Value::None,
        Value::Bool(true),
        Value::Bool(false),
    ];
    assert_eq!(&items[..], &expected[..]);
}

#[test]
fn memoised_containers_are_shared_and_filled_after_memoisation() {
    // d = {}; pickle.dumps([d, d]) after filling d: EMPTY_DICT BINPUT, SETITEMS, then BINGET.
    let data = b"\x80\x02]q\x00(}q\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03K\x02uh\x01e.";
    let Value::List(items) = load(data) else { panic!() };
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].get("a"), Some(&Value::Int(1)));
    assert_eq!(items[0], items[1]);
    let (Value::Dict(a), Value::Dict(b)) = (&items[0], &items[1]) else { panic!() };
    assert!(Rc::ptr_eq(a, b), "one dict, referenced twice");
}

#[test]
fn sets_ordered_dicts_and_protocol_4_memoize() {
    // collections.OrderedDict([("x", 1)]) and {1, 2} with STACK_GLOBAL, MEMOIZE, EMPTY_SET, ADDITEMS
    let data = b"\x80\x04\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94\x8c\x01x\x94K\x01s\
\x8f\x94(K\x01K\x02K\x01\x90\x86\x94.";
    let Value::Tuple(items) = load(data) else { panic!() };
    assert_eq!(items[0].get("x"), Some(&Value::Int(1)));
    assert_eq!(items[1], Value::Set(vec![Value::Int(1), Value::Int(2)].into()));
}

#[test]
fn torch_storage_ids_and_tensor_rebuilds() {
    // torch._utils._rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', 6), 1, (2, 2), (1, 2), False, OrderedDict())
    let data = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00((X\x07\x00\x00\x00storageq\x01ctorch\nFloatStorage\nq\x02\
X\x01\x00\x00\x000q\x03X\x03\x00\x00\x00cpuq\x04K\x06tq\x05QK\x01K\x02K\x02\x86q\x06K\x01K\x02\x86q\x07\x89ccollections\nOrderedDict\nq\x08)Rq\ttq\nRq\x0b.";
    let unpickled = unpickle(data).unwrap();
    let Value::Tensor(t) = &unpickled.value else { panic!("{:?}", unpickled.value) };
    assert_eq!((t.dtype, t.storage_offset, &t.size[..], &t.stride[..]), (Dtype::F32, 1, &[2, 2][..], &[1, 2][..]));
    assert_eq!((t.storage.key.as_str(), t.storage.numel, t.storage.location.as_str()), ("0", 6, "cpu"));
    assert_eq!(unpickled.storages.len(), 1);
    assert_eq!(unpickled.len, data.len());
}

#[test]
fn every_global_outside_the_allow_list_is_refused_by_name() {
    for (module, name) in [("os", "system"), ("posix", "system"), ("nt", "system"), ("builtins", "eval"), ("builtins", "exec"),
        ("subprocess", "Popen"), ("__builtin__", "eval"), ("torch", "load"), ("torch._utils", "_rebuild_evil")]
    {
        let expected = format!("{}.{name}", if module == "__builtin__" { "builtins" } else { module });
        // GLOBAL form: cos\nsystem\n(X...tR.
        let mut global = b"\x80\x02".to_vec();
        global.extend_from_slice(format!("c{module}\n{name}\n").as_bytes());
        global.extend_from_slice(b"X\x04\x00\x00\x00ls /\x85R.");
        let message = refusal(&global);
        assert!(message.contains(&expected) && message.contains("refused"), "{message}");
        // STACK_GLOBAL form.
        let mut stack = b"\x80\x04".to_vec();
        for part in [module, name] {
            stack.push(0x8c);
            stack.push(part.len() as u8);
            stack.extend_from_slice(part.as_bytes());
        }
        stack.extend_from_slice(b"\x93).");
        assert!(refusal(&stack).contains(&expected));
        // INST form: (X...ios\nsystem\n.
        let mut inst = b"\x80\x02(X\x01\x00\x00\x00x".to_vec();
        inst.extend_from_slice(format!("i{module}\n{name}\n.").as_bytes());
        assert!(refusal(&inst).contains(&expected));
    }
}

#[test]
fn calls_and_builds_only_apply_to_allowed_values() {
    // REDUCE on a string, BUILD on a list, APPEND to a dict, a non-storage persistent id.
    for (data, needle) in [
        (&b"\x80\x02X\x01\x00\x00\x00f)R."[..], "cannot call"),
        (b"\x80\x02]}b.", "BUILD"),
        (b"\x80\x02}K\x01a.", "only lists"),
        (b"\x80\x02X\x01\x00\x00\x00xQ.", "persistent id"),
        (b"\x80\x02\x82\x01.", "extension"),
        (b"\x80\x04\x8f]b.", "BUILD"),
    ] {
        let message = refusal(data);
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
}

#[test]
fn malformed_streams_are_errors_not_panics() {
    let cases: &[&[u8]] = &[
        b"",
        b"\x80",
        b"\x80\x02",
        b"\x80\x02X\xff\xff\xff\xff",               // a 4 GiB string in 0 bytes
        b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff", // BINBYTES8 of 2^64 - 1
        b"\x80\x02\x8b\xff\xff\xff\x7f",            // LONG4 of 2 GiB
        b"\x80\x02\x95\xff\xff\xff\xff\x00\x00\x00\x00N.", // a frame past the end
        b"\x80\x02h\x05.",                          // memo never stored
        b"\x80\x02s.",                              // SETITEM on nothing
        b"\x80\x02(t(u.",                           // SETITEMS with no dict
        b"\x80\x02K\x01K\x02.",                     // ends with two things... fine, but:
        b"\x80\x02e.",                              // APPENDS without a mark
        b"\x80\x02]q\x00h\x00a.",                   // a list containing itself
        b"\x80\x06N.",                              // protocol 6
        b"\x80\x02\xff",                            // unknown opcode
        b"\x80\x02X\x02\x00\x00\x00\xff\xfe.",      // invalid UTF-8
    ];
    for case in cases {
        // Errors, or (for well-formed ones) values; never a panic.
        let _ = unpickle(case);
    }
    assert!(refusal(b"\x80\x02]q\x00h\x00a.").contains("recursive"));
    assert!(refusal(b"\x80\x02X\xff\xff\xff\xff").contains("truncated"));
    let deep: Vec<u8> = [&b"\x80\x02"[..], &b"]".repeat(MAX_DEPTH + 10), &b"a".repeat(MAX_DEPTH + 9), b"."].concat();
    assert!(refusal(&deep).contains("nest deeper"));
}

#[test]
fn python_2_strings_and_bytes_via_codecs() {
    // _codecs.encode('\xff\x00', 'latin1'), as protocol 2 pickles bytes; U (SHORT_BINSTRING).
    let data = b"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xbf\x00\x00X\x06\x00\x00\x00latin1\x86RU\x03abc\x86.";
    let Value::Tuple(items) = load(data) else { panic!() };
    assert_eq!(items[0], Value::Bytes(vec![0xff, 0, 0][..].into()));
    assert_eq!(items[1], s("abc"));
}
