//! The vocabulary and byte-level BPE of OpenAI's `bpe_simple_vocab_16e6`.
//!
//! Ids follow the reference's layout: 0–255 the byte symbols (printable bytes first, in
//! `bytes_to_unicode`'s order, so id 0 is `!`), 256–511 the same with the
//! end-of-word mark `</w>`, then one id per merge in rank order (so merge rank r makes id 512 + r),
//! then `<start_of_text>` and `<end_of_text>`. Words are BPE'd on ids, never on strings.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;

use flate2::read::GzDecoder;

/// The vocabulary file OpenAI ships with CLIP (data, gzip'd as released).
static VOCAB_GZ: &[u8] = include_bytes!("../data/bpe_simple_vocab_16e6.txt.gz");

/// Merges CLIP uses: the file's lines 1..=48894 (line 0 is a header).
const N_MERGES: usize = 49152 - 256 - 2;

/// `<start_of_text>`.
pub const SOT: u32 = 49406;
/// `<end_of_text>`.
pub const EOT: u32 = 49407;
/// Vocabulary size (ids 0..VOCAB_SIZE).
pub const VOCAB_SIZE: usize = 49408;

/// OpenAI's `bytes_to_unicode`, in its order: (byte, symbol) for the 188 printable bytes (which
/// stand for themselves), then the other 68 (which map to U+0100 onwards). Position = id.
pub(crate) fn byte_symbols() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table: Vec<(u8, char)> = (0..=255u8).filter(|&b| printable(b)).map(|b| (b, b as char)).collect();
    let others = (0..=255u8).filter(|&b| !printable(b));
    table.extend(others.zip(256u32..).map(|(b, cp)| (b, char::from_u32(cp).expect("valid code point"))));
    table
}

/// The vocabulary: merge ranks on id pairs, and each id's text for decoding.
pub(crate) struct Vocab {
    /// (left id, right id) → rank; the merged token's id is 512 + rank.
    merges: HashMap<(u32, u32), u32>,
    /// Each byte's id (add 256 for the word-final form).
    byte_ids: [u32; 256],
    /// Each id's symbol string (`</w>` included), for decoding.
    pub(crate) symbols: Vec<String>,
    /// Symbol character → byte, inverse of [`byte_symbols`].
    pub(crate) char_to_byte: HashMap<char, u8>,
}

impl Vocab {
    pub(crate) fn load() -> Self {
        let mut text = String::new();
        GzDecoder::new(VOCAB_GZ).read_to_string(&mut text).expect("the shipped vocabulary is valid gzip'd UTF-8");
        let bytes = byte_symbols();
        let mut byte_ids = [0u32; 256];
        for (id, &(byte, _)) in bytes.iter().enumerate() {
            byte_ids[byte as usize] = id as u32;
        }
        let mut symbols: Vec<String> = bytes.iter().map(|(_, c)| c.to_string()).collect();
        symbols.extend(bytes.iter().map(|(_, c)| format!("{c}</w>")));
        let mut ids: HashMap<String, u32> =
            symbols.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
        let mut merges = HashMap::with_capacity(N_MERGES);
        for (rank, line) in text.split('\n').skip(1).take(N_MERGES).enumerate() {
            let (left, right) = line.split_once(' ').expect("a merge line holds two symbols");
            let pair = (ids[left], ids[right]);
            let merged = format!("{left}{right}");
            let id = symbols.len() as u32;
            ids.insert(merged.clone(), id);
            symbols.push(merged);
            merges.insert(pair, rank as u32);
        }
        symbols.push("<start_of_text>".to_owned());
        symbols.push("<end_of_text>".to_owned());
        assert_eq!(symbols.len(), VOCAB_SIZE);
        let char_to_byte = bytes.iter().map(|&(b, c)| (c, b)).collect();
        Self { merges, byte_ids, symbols, char_to_byte }
    }

    /// BPE of one pre-token's UTF-8 bytes, with the reference's semantics: repeatedly merge every
    /// occurrence, left to right, of the lowest-ranked adjacent pair.
    /// `word_end`: the bytes end the word, so the last symbol carries `</w>`.
    fn bpe(&self, bytes: &[u8], word_end: bool) -> Vec<u32> {
        let mut word: Vec<u32> = bytes.iter().map(|&b| self.byte_ids[b as usize]).collect();
        if let (true, Some(last)) = (word_end, word.last_mut()) {
            *last += 256;
        }
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|pair| self.merges.get(&(pair[0], pair[1])).map(|&rank| (rank, pair[0], pair[1])))
                .min();
            let Some((rank, left, right)) = best else { break };
            let merged = 512 + rank;
            let mut next = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == left && word[i + 1] == right {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(word[i]);
                    i += 1;
                }
            }
            word = next;
        }
        word
    }

    /// The first `limit` ids of a pre-token's BPE, with work bounded by `limit`, not the word.
    ///
    /// A pathological word (megabytes of letters) is BPE'd on a prefix only, grown until the first
    /// `limit` ids stop changing: merges act locally, so ids far from the prefix's end are final.
    pub(crate) fn bpe_prefix(&self, bytes: &[u8], limit: usize) -> Vec<u32> {
        const CACHEABLE: usize = 64;
        let window = limit.max(1).saturating_mul(16).max(256);
        if bytes.len() <= window {
            return self.bpe_cached(bytes, bytes.len() <= CACHEABLE);
        }
        let mut len = window;
        let mut previous = self.bpe(&bytes[..len], false);
        loop {
            len = (len * 2).min(bytes.len());
            let ids = self.bpe(&bytes[..len], len == bytes.len());
            let stable = ids.len() >= limit && previous.len() >= limit && ids[..limit] == previous[..limit];
            if stable || len == bytes.len() {
                return ids.into_iter().take(limit).collect();
            }
            previous = ids;
        }
    }

    fn bpe_cached(&self, bytes: &[u8], cache: bool) -> Vec<u32> {
        thread_local! {
            static CACHE: RefCell<HashMap<Vec<u8>, Vec<u32>>> = RefCell::new(HashMap::new());
        }
        if !cache {
            return self.bpe(bytes, true);
        }
        CACHE.with(|cell| {
            if let Some(ids) = cell.borrow().get(bytes) {
                return ids.clone();
            }
            let ids = self.bpe(bytes, true);
            let mut map = cell.borrow_mut();
            if map.len() >= 1 << 18 {
                map.clear(); // Bounded memory on endless novel text.
            }
            map.insert(bytes.to_vec(), ids.clone());
            ids
        })
    }
}
