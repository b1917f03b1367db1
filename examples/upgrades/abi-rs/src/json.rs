//! JSON with the semantics of Go's `encoding/json`, as the Go example
//! packages use it: `Decoder.UseNumber` into a `map[string]any`, then
//! `json.Marshal`. A Rust package that reads and writes the state with it
//! produces the same bytes as the Go package on the same input:
//!
//! - [`parse`] reads the first JSON value and ignores what follows it (like
//!   `Decoder.Decode`); nesting deeper than 10000 is an error.
//! - Numbers are kept as written ([`Value::Number`], like `json.Number`).
//! - Strings: invalid UTF-8 bytes become U+FFFD one byte at a time, and a
//!   `\u` escape of an unpaired surrogate becomes U+FFFD.
//! - Objects keep one value per key, the last one in the input, and are
//!   written with their keys in byte order (Go sorts map keys).
//! - [`to_vec`] escapes `"`, `\`, control characters (`\b \f \n \r \t`, else
//!   `\u00xx`), `<`, `>`, `&`, U+2028 and U+2029, and writes no spaces.
//!
//! Parsing borrows strings and numbers from the input where it can and keeps
//! its own stack; writing recurses 64 levels at most (then an explicit stack),
//! so deep nesting cannot overflow the wasm stack.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// Maximum nesting of arrays and objects (Go's scanner allows 10000).
pub const MAX_DEPTH: usize = 10000;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// A number literal exactly as written in the input (Go's
    /// `json.Number`). A Number built by hand must be a valid JSON number.
    Number(Cow<'a, str>),
    String(Str<'a>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::String(Str::from(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::String(Str::from(s))
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<u64> for Value<'_> {
    fn from(n: u64) -> Self {
        Value::Number(Cow::Owned(n.to_string()))
    }
}

/// A string value or object key: borrowed from the input where possible.
/// It dereferences to `str`.
#[derive(Clone, Debug)]
pub struct Str<'a>(Repr<'a>);

#[derive(Clone, Debug)]
enum Repr<'a> {
    /// Borrowed from the input, which holds it exactly as Go writes it:
    /// written out as it is, without looking at it again.
    Plain(&'a str),
    Borrowed(&'a str),
    Owned(String),
}

impl<'a> Str<'a> {
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Plain(s) | Repr::Borrowed(s) => s,
            Repr::Owned(s) => s,
        }
    }

    fn plain(&self) -> bool {
        matches!(self.0, Repr::Plain(_))
    }
}

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str<'_> {}

impl Default for Str<'_> {
    fn default() -> Self {
        Str(Repr::Plain(""))
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Str(Repr::Borrowed(s))
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str(Repr::Owned(s))
    }
}

/// A JSON object with Go map semantics: one value per key, iterated and
/// written in byte order of the keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object<'a> {
    members: Vec<(Str<'a>, Value<'a>)>, // sorted by key, keys unique
}

impl<'a> Object<'a> {
    pub fn new() -> Self {
        Object { members: Vec::new() }
    }

    /// Builds an object from members in input order: a repeated key keeps
    /// its last value.
    fn from_members(mut members: Vec<(Str<'a>, Value<'a>)>) -> Self {
        // A canonical state is sorted already: check before sorting.
        if !members.windows(2).all(|w| cmp_bytes(w[0].0.as_bytes(), w[1].0.as_bytes()) == Ordering::Less) {
            // Stable: equal keys stay in input order.
            members.sort_by(|a, b| cmp_bytes(a.0.as_bytes(), b.0.as_bytes()));
            let mut out: Vec<(Str<'a>, Value<'a>)> = Vec::with_capacity(members.len());
            for m in members {
                match out.last_mut() {
                    Some(last) if last.0 == m.0 => *last = m,
                    _ => out.push(m),
                }
            }
            members = out;
        }
        Object { members }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.members.binary_search_by(|m| cmp_bytes(m.0.as_bytes(), key.as_bytes()))
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.find(key).ok().map(|i| &self.members[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        match self.find(key) {
            Ok(i) => Some(&mut self.members[i].1),
            Err(_) => None,
        }
    }

    /// Sets key to value and returns the previous value.
    pub fn insert(&mut self, key: impl Into<Str<'a>>, value: Value<'a>) -> Option<Value<'a>> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.members[i].1, value)),
            Err(i) => {
                self.members.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value<'a>> {
        match self.find(key) {
            Ok(i) => Some(self.members.remove(i).1),
            Err(_) => None,
        }
    }

    /// The members in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The members in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Value<'a>)> {
        self.members.iter_mut().map(|(k, v)| {
            let k: &Str<'a> = k; // keys stay read-only: they keep the order
            (k.as_str(), v)
        })
    }
}

/// A syntax error (or nesting beyond [`MAX_DEPTH`]) at a byte offset.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub offset: usize,
    pub msg: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "json: {} at offset {}", self.msg, self.offset)
    }
}

impl std::error::Error for Error {}

/// Parses the first JSON value of input; bytes after it are ignored, like
/// Go's `json.Decoder.Decode`.
pub fn parse(input: &[u8]) -> Result<Value<'_>, Error> {
    Parser { b: input, i: 0 }.value()
}

/// Parses the first JSON value of input, which must be an object (a Go
/// package decodes the state into `map[string]any`).
pub fn parse_object(input: &[u8]) -> Result<Object<'_>, Error> {
    match parse(input)? {
        Value::Object(o) => Ok(o),
        _ => Err(Error { offset: 0, msg: "the value is not an object" }),
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

/// The open arrays and objects, and their elements so far.
struct Stacks<'a> {
    frames: Vec<Frame<'a>>,
    items: Vec<Value<'a>>,
    members: Vec<(Str<'a>, Value<'a>)>,
}

/// An array or object being parsed: where its elements start on the
/// scratch stacks, and for an object the key of the value being parsed.
enum Frame<'a> {
    Array(usize),
    Object(usize, Str<'a>),
}

impl<'a> Parser<'a> {
    fn err<T>(&self, msg: &'static str) -> Result<T, Error> {
        Err(Error { offset: self.i, msg })
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Reads `"key"` and the `:` after it.
    #[inline(always)]
    fn key(&mut self) -> Result<Str<'a>, Error> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return self.err("expected a string key");
        }
        let k = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return self.err("expected ':' after an object key");
        }
        self.i += 1;
        Ok(k)
    }

    fn value(&mut self) -> Result<Value<'a>, Error> {
        let mut st = Stacks { frames: Vec::new(), items: Vec::new(), members: Vec::new() };
        'value: loop {
            // At a value: the document, or an array or object inside a
            // container. Scalars inside containers are read by the loops
            // of array_items and object_members, which return here only
            // for a nested container.
            self.skip_ws();
            let mut v = match self.peek() {
                None => return self.err("unexpected end of input"),
                Some(c @ (b'{' | b'[')) => {
                    if st.frames.len() >= MAX_DEPTH {
                        return self.err("exceeded max depth");
                    }
                    self.i += 1;
                    self.skip_ws();
                    let done = if c == b'{' {
                        if self.peek() == Some(b'}') {
                            self.i += 1;
                            Some(Value::Object(Object::new()))
                        } else {
                            st.frames.push(Frame::Object(st.members.len(), Str::default()));
                            self.object_members(&mut st)?
                        }
                    } else if self.peek() == Some(b']') {
                        self.i += 1;
                        Some(Value::Array(Vec::new()))
                    } else {
                        st.frames.push(Frame::Array(st.items.len()));
                        self.array_items(&mut st)?
                    };
                    match done {
                        Some(v) => v,
                        None => continue 'value, // a nested container
                    }
                }
                Some(_) => self.scalar()?,
            };
            // v is a complete value: add it to its container and go on with
            // the container's next elements.
            loop {
                let done = match st.frames.last_mut() {
                    None => return Ok(v),
                    Some(Frame::Array(_)) => {
                        st.items.push(v);
                        self.array_next(&mut st)?
                    }
                    Some(Frame::Object(_, key)) => {
                        let k = std::mem::take(key);
                        st.members.push((k, v));
                        self.object_next(&mut st)?
                    }
                };
                match done {
                    Some(c) => v = c,
                    None => continue 'value,
                }
            }
        }
    }

    /// Reads a string, number or literal.
    #[inline(always)]
    fn scalar(&mut self) -> Result<Value<'a>, Error> {
        match self.peek() {
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => Ok(Value::Number(Cow::Borrowed(self.number()?))),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            None => self.err("unexpected end of input"),
            Some(_) => self.err("invalid character looking for the beginning of a value"),
        }
    }

    /// Reads the elements of the innermost array from an element on: the
    /// array when it ends, or None at a nested container.
    #[inline(always)]
    fn array_items(&mut self, st: &mut Stacks<'a>) -> Result<Option<Value<'a>>, Error> {
        loop {
            self.skip_ws();
            if let Some(b'{' | b'[') = self.peek() {
                return Ok(None);
            }
            let v = self.scalar()?;
            st.items.push(v);
            if let Some(done) = self.array_sep(st)? {
                return Ok(Some(done));
            }
        }
    }

    /// After an array element: past a ',' it returns None, at ']' it closes
    /// the array.
    #[inline(always)]
    fn array_sep(&mut self, st: &mut Stacks<'a>) -> Result<Option<Value<'a>>, Error> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(None)
            }
            Some(b']') => {
                self.i += 1;
                let start = match st.frames.pop() {
                    Some(Frame::Array(start)) => start,
                    _ => unreachable!(),
                };
                Ok(Some(Value::Array(take_tail(&mut st.items, start, 0))))
            }
            _ => self.err("expected ',' or ']' after an array element"),
        }
    }

    /// After a nested container in an array: the array when it ends, or
    /// None at the next nested container.
    #[inline(always)]
    fn array_next(&mut self, st: &mut Stacks<'a>) -> Result<Option<Value<'a>>, Error> {
        match self.array_sep(st)? {
            Some(done) => Ok(Some(done)),
            None => self.array_items(st),
        }
    }

    /// Reads the members of the innermost object from a key on: the object
    /// when it ends, or None at a member whose value is a container (its
    /// key is kept in the frame).
    #[inline(always)]
    fn object_members(&mut self, st: &mut Stacks<'a>) -> Result<Option<Value<'a>>, Error> {
        loop {
            let k = self.key()?;
            self.skip_ws();
            if let Some(b'{' | b'[') = self.peek() {
                if let Some(Frame::Object(_, key)) = st.frames.last_mut() {
                    *key = k;
                }
                return Ok(None);
            }
            let v = self.scalar()?;
            st.members.push((k, v));
            if let Some(done) = self.object_sep(st)? {
                return Ok(Some(done));
            }
        }
    }

    /// After an object member: past a ',' it returns None, at '}' it
    /// closes the object.
    #[inline(always)]
    fn object_sep(&mut self, st: &mut Stacks<'a>) -> Result<Option<Value<'a>>, Error> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(None)
            }
            Some(b'}') => {
                self.i += 1;
                Ok(Some(self.close_object(st)))
            }
            _ => self.err("expected ',' or '}' after an object value"),
        }
    }

    /// After a member whose value was a nested container: the object when
    /// it ends, or None at the next nested container.
    #[inline(always)]
    fn object_next(&mut self, st: &mut Stacks<'a>) -> Result<Option<Value<'a>>, Error> {
        match self.object_sep(st)? {
            Some(done) => Ok(Some(done)),
            None => self.object_members(st),
        }
    }

    #[inline(always)]
    fn close_object(&mut self, st: &mut Stacks<'a>) -> Value<'a> {
        let start = match st.frames.pop() {
            Some(Frame::Object(start, _)) => start,
            _ => unreachable!(),
        };
        // Room for one more member: upgrades often add one.
        Value::Object(Object::from_members(take_tail(&mut st.members, start, 1)))
    }

    #[inline(always)]
    fn literal(&mut self, word: &'static [u8], v: Value<'a>) -> Result<Value<'a>, Error> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("invalid literal")
        }
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    #[inline(always)]
    fn number(&mut self) -> Result<&'a str, Error> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return self.err("invalid number: no digit after '.'");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number: no digit in the exponent");
            }
        }
        // ASCII only, so valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(&self.b[start..self.i]) })
    }

    /// Reads a string at the opening quote. Borrows it from the input when
    /// it has no escape and is valid UTF-8; such a string is plain (written
    /// back as it is) unless Go escapes some of its characters.
    fn string(&mut self) -> Result<Str<'a>, Error> {
        let b = self.b;
        let start = self.i + 1;
        let mut i = start;
        let mut plain = true;
        loop {
            // Eight bytes at a time up to the first byte that needs a look.
            while i + 8 <= b.len() {
                let m = string_stop(load8(b, i));
                if m != 0 {
                    i += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                None => {
                    self.i = i;
                    return self.err("unexpected end of input in a string");
                }
                Some(b'"') => {
                    self.i = i + 1;
                    // Checked byte by byte above.
                    let s = unsafe { std::str::from_utf8_unchecked(&b[start..i]) };
                    return Ok(Str(if plain { Repr::Plain(s) } else { Repr::Borrowed(s) }));
                }
                Some(&c) if c < 0x20 => {
                    self.i = i;
                    return self.err("invalid control character in a string");
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x80 => {
                    plain &= !matches!(c, b'<' | b'>' | b'&');
                    i += 1;
                }
                Some(_) => match utf8_len(&b[i..]) {
                    Some(n) => {
                        plain &= !(n == 3 && b[i] == 0xE2 && b[i + 1] == 0x80 && (b[i + 2] | 1) == 0xA9);
                        i += n;
                    }
                    None => break,
                },
            }
        }
        // Slow path: escapes or invalid UTF-8.
        let mut s = String::with_capacity(i - start + 16);
        s.push_str(unsafe { std::str::from_utf8_unchecked(&b[start..i]) });
        loop {
            match b.get(i) {
                None => {
                    self.i = i;
                    return self.err("unexpected end of input in a string");
                }
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(Str(Repr::Owned(s)));
                }
                Some(&c) if c < 0x20 => {
                    self.i = i;
                    return self.err("invalid control character in a string");
                }
                Some(b'\\') => {
                    let c = match b.get(i + 1) {
                        Some(&c) => c,
                        None => {
                            self.i = i + 1;
                            return self.err("unexpected end of input in a string");
                        }
                    };
                    i += 2;
                    match c {
                        b'"' | b'\\' | b'/' => s.push(c as char),
                        b'b' => s.push('\u{8}'),
                        b'f' => s.push('\u{c}'),
                        b'n' => s.push('\n'),
                        b'r' => s.push('\r'),
                        b't' => s.push('\t'),
                        b'u' => {
                            let r = match hex4(&b[i..]) {
                                Some(r) => r,
                                None => {
                                    self.i = i;
                                    return self.err("invalid \\u escape");
                                }
                            };
                            i += 4;
                            if (0xD800..0xE000).contains(&r) {
                                // A pair, else U+FFFD for this escape alone.
                                let lo = if b[i..].starts_with(b"\\u") { hex4(&b[i + 2..]) } else { None };
                                match lo {
                                    Some(lo) if r < 0xDC00 && (0xDC00..0xE000).contains(&lo) => {
                                        let c = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
                                        s.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                                        i += 6;
                                    }
                                    _ => s.push('\u{FFFD}'),
                                }
                            } else {
                                s.push(char::from_u32(r).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => {
                            self.i = i - 1;
                            return self.err("invalid escape in a string");
                        }
                    }
                }
                Some(&c) if c < 0x80 => {
                    s.push(c as char);
                    i += 1;
                }
                Some(_) => match utf8_len(&b[i..]) {
                    Some(n) => {
                        s.push_str(unsafe { std::str::from_utf8_unchecked(&b[i..i + n]) });
                        i += n;
                    }
                    None => {
                        // Go replaces each byte that does not start a
                        // valid sequence.
                        s.push('\u{FFFD}');
                        i += 1;
                    }
                },
            }
        }
    }
}

/// The length of the valid UTF-8 sequence of a non-ASCII character at the
/// start of b, or None (the rules of Go's utf8.DecodeRune).
fn utf8_len(b: &[u8]) -> Option<usize> {
    let cont = |i: usize, lo: u8, hi: u8| matches!(b.get(i), Some(&c) if c >= lo && c <= hi);
    match b[0] {
        0xC2..=0xDF if cont(1, 0x80, 0xBF) => Some(2),
        0xE0 if cont(1, 0xA0, 0xBF) && cont(2, 0x80, 0xBF) => Some(3),
        0xE1..=0xEC | 0xEE..=0xEF if cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) => Some(3),
        0xED if cont(1, 0x80, 0x9F) && cont(2, 0x80, 0xBF) => Some(3),
        0xF0 if cont(1, 0x90, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) => Some(4),
        0xF1..=0xF3 if cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) => Some(4),
        0xF4 if cont(1, 0x80, 0x8F) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) => Some(4),
        _ => None,
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let mut r = 0;
    for &c in &b[..4] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        r = r * 16 + d as u32;
    }
    Some(r)
}

/// Writes v like Go's `json.Marshal`.
pub fn to_vec(v: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    write(&mut out, v);
    out
}

/// Nesting up to which write recurses; deeper values are written with an
/// explicit stack.
const RECURSE_DEPTH: usize = 64;

enum Open<'v, 'a> {
    Array(std::slice::Iter<'v, Value<'a>>),
    Object(std::slice::Iter<'v, (Str<'a>, Value<'a>)>),
}

/// Appends v to out like Go's `json.Marshal`.
pub fn write(out: &mut Vec<u8>, v: &Value<'_>) {
    write_rec(out, v, 0)
}

fn write_rec(out: &mut Vec<u8>, v: &Value<'_>, depth: usize) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.as_bytes()),
        Value::String(s) => write_string(out, s),
        _ if depth >= RECURSE_DEPTH => write_with(out, v, &mut Vec::new()),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_rec(out, x, depth + 1);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            out.push(b'{');
            for (i, (k, x)) in o.members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                write_rec(out, x, depth + 1);
            }
            out.push(b'}');
        }
    }
}

fn write_with<'v, 'a>(out: &mut Vec<u8>, v: &'v Value<'a>, stack: &mut Vec<(Open<'v, 'a>, bool)>) {
    let mut next = Some(v);
    loop {
        if let Some(v) = next.take() {
            match v {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Number(n) => out.extend_from_slice(n.as_bytes()),
                Value::String(s) => write_string(out, s),
                Value::Array(a) => {
                    out.push(b'[');
                    stack.push((Open::Array(a.iter()), true));
                }
                Value::Object(o) => {
                    out.push(b'{');
                    stack.push((Open::Object(o.members.iter()), true));
                }
            }
        }
        let (open, first) = match stack.last_mut() {
            Some(top) => top,
            None => return,
        };
        let item = match open {
            Open::Array(it) => it.next().map(|v| (None, v)),
            Open::Object(it) => it.next().map(|(k, v)| (Some(k), v)),
        };
        match item {
            Some((key, v)) => {
                if !*first {
                    out.push(b',');
                }
                *first = false;
                if let Some(k) = key {
                    write_string(out, k);
                    out.push(b':');
                }
                next = Some(v);
            }
            None => {
                out.push(match open {
                    Open::Array(_) => b']',
                    Open::Object(_) => b'}',
                });
                stack.pop();
            }
        }
    }
}

/// Bytes that write_str must look at: those Go escapes (everything but its
/// htmlSafeSet) and 0xE2, the first byte of U+2028 and U+2029.
const ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c < 0x20 || matches!(c as u8, b'"' | b'\\' | b'<' | b'>' | b'&' | 0xE2);
        c += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_string(out: &mut Vec<u8>, s: &Str<'_>) {
    if s.plain() {
        let n = s.len();
        out.reserve(n + 2);
        // One capacity check and one memory.copy.
        unsafe {
            let len = out.len();
            let dst = out.as_mut_ptr().add(len);
            *dst = b'"';
            std::ptr::copy_nonoverlapping(s.as_ptr(), dst.add(1), n);
            *dst.add(n + 1) = b'"';
            out.set_len(len + n + 2);
        }
    } else {
        write_str(out, s);
    }
}

/// Writes s as a JSON string with Go's escaping.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    loop {
        // Skip to the next byte that may need escaping, eight at a time.
        i = loop {
            if i + 8 <= b.len() {
                let m = escape_stop(load8(b, i));
                if m != 0 {
                    break i + (m.trailing_zeros() / 8) as usize;
                }
                i += 8;
            } else {
                while i < b.len() && !ESCAPE[b[i] as usize] {
                    i += 1;
                }
                break i;
            }
        };
        if i >= b.len() {
            break;
        }
        let c = b[i];
        if c == 0xE2 {
            if i + 2 < b.len() && b[i + 1] == 0x80 && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) {
                out.extend_from_slice(&b[start..i]);
                out.extend_from_slice(if b[i + 2] == 0xA8 { b"\\u2028" } else { b"\\u2029" });
                i += 3;
                start = i;
            } else {
                i += 1;
            }
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

// Eight bytes at a time (SWAR): masks with the high bit set in each byte
// that matches, exact per byte, so trailing_zeros()/8 is the first match.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

#[inline(always)]
fn load8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The bytes of x that are zero.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// The bytes of x equal to c.
#[inline(always)]
fn eq_bytes(x: u64, c: u8) -> u64 {
    zero_bytes(x ^ (ONES * c as u64))
}

/// The bytes of x below 0x20.
#[inline(always)]
fn control_bytes(x: u64) -> u64 {
    zero_bytes(x & (ONES * 0xe0))
}

/// Where a string being parsed needs a closer look: '"', '\\', control
/// characters, non-ASCII bytes and the characters Go escapes ('<', '>',
/// '&').
#[inline(always)]
fn string_stop(x: u64) -> u64 {
    eq_bytes(x, b'"')
        | eq_bytes(x, b'\\')
        | eq_bytes(x, b'<')
        | eq_bytes(x, b'>')
        | eq_bytes(x, b'&')
        | control_bytes(x)
        | (x & HIGH)
}

/// Where a string being written may need escaping (see ESCAPE).
#[inline(always)]
fn escape_stop(x: u64) -> u64 {
    eq_bytes(x, b'"')
        | eq_bytes(x, b'\\')
        | eq_bytes(x, b'<')
        | eq_bytes(x, b'>')
        | eq_bytes(x, b'&')
        | eq_bytes(x, 0xe2)
        | control_bytes(x)
}

/// Moves v[start..] into a new vector of that length and spare capacity
/// (one memory.copy; `drain().collect()` moves element by element).
fn take_tail<T>(v: &mut Vec<T>, start: usize, spare: usize) -> Vec<T> {
    let n = v.len() - start;
    let mut out = Vec::with_capacity(n + spare);
    unsafe {
        std::ptr::copy_nonoverlapping(v.as_ptr().add(start), out.as_mut_ptr(), n);
        out.set_len(n);
        v.set_len(start);
    }
    out
}

/// Byte-wise comparison (Go's strings.Compare), eight bytes at a time.
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let d = load8(a, i) ^ load8(b, i);
        if d != 0 {
            let k = i + (d.trailing_zeros() / 8) as usize;
            return a[k].cmp(&b[k]);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}
