//! Source locations for values in a RON scenario file, and text splicing.
//!
//! Once a scenario file has been parsed by `ron`, later checks (unknown node
//! names, overlapping subnets, ...) still need to point at the offending text.
//! This module turns a *value path* such as `links[2].delay` into a [`Span`] of
//! the source ([`locate`]), and rewrites a value in place ([`set_value`], used
//! by `netdes run --set links[0].delay="5ms"`).
//!
//! # Paths
//!
//! A [`Path`] is a sequence of [`Segment`]s starting at the top-level value
//! (the `Scenario( ... )` struct; the struct name is optional in RON):
//!
//! * `.name` — a named field of a struct or struct-like enum variant
//!   (`DropTail(limit: "100 packets")`), or a map entry whose key is the
//!   string (or bare identifier/number) `name`; so `nodes.h1` and
//!   `nodes["h1"]` both find `"h1": Host()` in a map. The first segment is
//!   written without the dot: `links[0]`, `seed`.
//! * `[2]` — an element of a list, a positional item of a tuple or tuple-like
//!   variant (`loss[0]` is `0.01` in `loss: Bernoulli(0.01)`), or a map entry
//!   whose key is the number `2`.
//! * `["key"]` — a map entry with that string key (`\"` and `\\` escapes are
//!   understood); on a struct it names a field, like `.key`.
//!
//! `Some(...)` is transparent: with `queue: Some(DropTail(limit: "1p"))`, the
//! path `links[0].queue.limit` finds `"1p"` (while `links[0].queue` is the
//! whole `Some(...)`). The empty path is the top-level value.
//!
//! # Scanner
//!
//! The scanner is a small, tolerant recursive-descent reader of RON structure:
//! line comments, nested block comments, strings with escapes, raw strings
//! (`r#"..."#`), byte strings, chars, numbers, identifiers (also raw
//! `r#ident`), named and anonymous structs and tuples, lists, maps, unit
//! `()`, trailing commas and `#![enable(...)]` attributes. It assumes the
//! text is valid RON (it was already accepted by `ron`), but never panics on
//! anything: malformed text yields `None` or [`LocateError::Scan`].
//!
//! # Positions
//!
//! [`Pos`] follows `ron::error::Position` exactly: both `line` and `col` are
//! 1-based, `line` is one plus the number of `'\n'` before the position, and
//! `col` is one plus the number of *chars* (not bytes, not graphemes) since
//! the last `'\n'` — so a `'\r'` before the newline and a tab each count as
//! one column. A [`Span`]'s `end` is exclusive (the position just after the
//! value), like the end of a `ron::error::Span`.

use std::fmt;
use std::str::FromStr;

/// Deepest nesting the scanner follows before giving up (`ron` itself stops
/// at 128 by default).
const MAX_DEPTH: usize = 256;

/// A 1-based line/column position, with the same convention as
/// `ron::error::Position` (columns count chars).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in chars.
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// The source range of a value: `start_byte..end_byte` in the text, and the
/// corresponding positions (`end` is exclusive: just after the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// Position of the first char of the value.
    pub start: Pos,
    /// Position just after the last char of the value.
    pub end: Pos,
    /// Byte offset of the first char of the value.
    pub start_byte: usize,
    /// Byte offset just after the value.
    pub end_byte: usize,
}

impl Span {
    fn new(src: &str, start_byte: usize, end_byte: usize) -> Span {
        Span {
            start: line_col(src, start_byte),
            end: line_col(src, end_byte),
            start_byte,
            end_byte,
        }
    }

    /// The text of the value in `src` (the text this span was computed from).
    pub fn text<'a>(&self, src: &'a str) -> Option<&'a str> {
        src.get(self.start_byte..self.end_byte)
    }
}

impl fmt::Display for Span {
    /// `line:col-line:col`, or `line:col` for an empty span (like `ron`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// The line/column of byte offset `byte` in `src`.
///
/// Offsets past the end are clamped to the end, and offsets inside a
/// multi-byte char are moved back to the start of that char.
pub fn line_col(src: &str, byte: usize) -> Pos {
    let mut end = byte.min(src.len());
    while end > 0 && !src.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = src.get(..end).unwrap_or("");
    let line = 1 + prefix.matches('\n').count();
    let col = 1 + prefix.chars().rev().take_while(|&c| c != '\n').count();
    Pos { line, col }
}

/// Why a path could not be parsed, located or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// The path text is malformed.
    #[error("invalid value path `{path}`: {reason}")]
    InvalidPath {
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scenario text could not be scanned (it is not valid RON).
    #[error("could not read the scenario text at {pos}: {reason}")]
    Scan {
        /// Where scanning stopped.
        pos: Pos,
        /// What the scanner expected.
        reason: String,
    },
    /// A field or map key on the way is absent.
    #[error("`{path}` does not exist: {container} has no {missing}")]
    NotFound {
        /// The full path that was looked up.
        path: String,
        /// The existing container, e.g. "`links[2]`" or "the top-level value".
        container: String,
        /// The missing piece, e.g. "field `queue`" or "key \"h9\"".
        missing: String,
    },
    /// A list or tuple index is past the end.
    #[error(
        "`{path}` does not exist: index {index} is out of range, {container} has {len} item(s)"
    )]
    IndexOutOfRange {
        /// The full path that was looked up.
        path: String,
        /// The list or tuple, e.g. "`links`".
        container: String,
        /// The index that was asked for.
        index: usize,
        /// How many items there are.
        len: usize,
    },
    /// A segment does not fit the value it is applied to (e.g. `.field` on a
    /// number, `[0]` on a struct).
    #[error("`{path}` does not exist: {container} is {found}, not {expected}")]
    WrongKind {
        /// The full path that was looked up.
        path: String,
        /// The value the segment was applied to, e.g. "`seed`".
        container: String,
        /// What that value is, e.g. "a number".
        found: String,
        /// What the segment needs, e.g. "a struct or map".
        expected: &'static str,
    },
    /// The last segment is absent and cannot be added.
    #[error("cannot add `{path}`: {reason}")]
    CannotInsert {
        /// The full path.
        path: String,
        /// Why not.
        reason: String,
    },
    /// The new value text is empty.
    #[error("no value given for `{path}`")]
    EmptyValue {
        /// The full path.
        path: String,
    },
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// `.name`: a struct field, or a map entry whose key is `name`.
    Field(String),
    /// `[n]`: a list element, tuple item, or map entry with key `n`.
    Index(usize),
    /// `["key"]`: a map entry with string key `key` (or a struct field).
    Key(String),
}

/// A parsed value path such as `links[2].delay` or `nodes["h1"].addr`; see
/// the [module documentation](self) for the syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path {
    segments: Vec<Segment>,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl Path {
    /// The empty path: the top-level value.
    pub fn root() -> Path {
        Path::default()
    }

    /// Parses `links[2].delay`, `nodes["h1"]`, `nodes.h1`, `faults[0].at`.
    /// The empty string is the root path.
    pub fn parse(text: &str) -> Result<Path, LocateError> {
        let invalid = |reason: String| LocateError::InvalidPath {
            path: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let mut chars = trimmed.char_indices().peekable();
        let mut segments = Vec::new();
        while let Some(&(offset, c)) = chars.peek() {
            let read_name = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
                let mut name = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                name
            };
            if c == '.' && !segments.is_empty() {
                chars.next();
                let name = read_name(&mut chars);
                if name.is_empty() {
                    return Err(invalid(format!(
                        "expected a field name after `.` at offset {offset}"
                    )));
                }
                segments.push(Segment::Field(name));
            } else if c == '[' {
                chars.next();
                segments.push(parse_bracket(&mut chars).map_err(invalid)?);
            } else if segments.is_empty() && is_name_char(c) {
                segments.push(Segment::Field(read_name(&mut chars)));
            } else {
                return Err(invalid(format!(
                    "unexpected `{c}` at offset {offset}; expected `.field`, `[index]` or `[\"key\"]`"
                )));
            }
        }
        Ok(Path { segments })
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether this is the empty path (the top-level value).
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The path without its last segment (`None` for the root).
    pub fn parent(&self) -> Option<Path> {
        let (_, init) = self.segments.split_last()?;
        Some(Path {
            segments: init.to_vec(),
        })
    }

    /// The last segment (`None` for the root).
    pub fn last(&self) -> Option<&Segment> {
        self.segments.last()
    }

    /// This path extended by `.name`.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>) -> Path {
        self.segments.push(Segment::Field(name.into()));
        self
    }

    /// This path extended by `[index]`.
    #[must_use]
    pub fn index(mut self, index: usize) -> Path {
        self.segments.push(Segment::Index(index));
        self
    }

    /// This path extended by `["key"]`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Path {
        self.segments.push(Segment::Key(key.into()));
        self
    }

    /// The first `len` segments.
    fn prefix(&self, len: usize) -> Path {
        Path {
            segments: self.segments.iter().take(len).cloned().collect(),
        }
    }
}

/// Parses the inside of `[...]` (after the `[`) up to and including `]`.
fn parse_bracket(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<Segment, String> {
    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
            chars.next();
        }
    };
    skip_spaces(chars);
    let segment = if chars.peek().is_some_and(|&(_, c)| c == '"') {
        chars.next();
        let mut key = String::new();
        loop {
            match chars.next() {
                None => return Err("unterminated quoted key".to_owned()),
                Some((_, '"')) => break,
                Some((_, '\\')) => match chars.next() {
                    None => return Err("unterminated quoted key".to_owned()),
                    Some((_, 'n')) => key.push('\n'),
                    Some((_, 't')) => key.push('\t'),
                    Some((_, 'r')) => key.push('\r'),
                    Some((_, '0')) => key.push('\0'),
                    Some((_, other)) => key.push(other),
                },
                Some((_, c)) => key.push(c),
            }
        }
        Segment::Key(key)
    } else {
        let mut digits = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == ']' || c.is_whitespace() {
                break;
            }
            digits.push(c);
            chars.next();
        }
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "expected an index like [2] or a quoted key like [\"h1\"] inside [...], found `{digits}`"
            ));
        }
        let index = digits
            .parse::<usize>()
            .map_err(|_| format!("index {digits} is too large"))?;
        Segment::Index(index)
    };
    skip_spaces(chars);
    match chars.next() {
        Some((_, ']')) => Ok(segment),
        Some((offset, c)) => Err(format!("expected `]` at offset {offset}, found `{c}`")),
        None => Err("missing closing `]`".to_owned()),
    }
}

impl FromStr for Path {
    type Err = LocateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

/// Writes `s` as a RON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Path {
    /// The canonical text, which [`Path::parse`] reads back: `links[2].delay`,
    /// `nodes["h1"]`. The root path displays as the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Field(name) if !name.is_empty() && name.chars().all(is_name_char) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Segment::Field(name) | Segment::Key(name) => write!(f, "[{}]", quote(name))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Splits a `--set` argument `path=value` at the first `=` outside brackets
/// and quotes: `links[0].delay="5ms"` gives (`links[0].delay`, `"5ms"`).
/// The value text is returned untrimmed and unvalidated.
pub fn parse_assignment(arg: &str) -> Result<(Path, &str), LocateError> {
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in arg.char_indices() {
        if in_quotes {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => {
                let path = arg.get(..i).unwrap_or("");
                let value = arg.get(i + 1..).unwrap_or("");
                return Ok((Path::parse(path)?, value));
            }
            _ => {}
        }
    }
    Err(LocateError::InvalidPath {
        path: arg.to_owned(),
        reason: "expected `path=value`, e.g. `links[0].delay=\"5ms\"`".to_owned(),
    })
}

// ---------------------------------------------------------------------------
// Scanner
// ---------------------------------------------------------------------------

/// A scanned value: its byte range and structure.
#[derive(Debug)]
struct Node {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A string, raw string or byte string literal.
    Str,
    /// A char or byte literal.
    Char,
    /// Any number (also ranges like `1..2`).
    Number,
    /// A bare identifier: `true`, `None`, a unit variant.
    Ident,
    /// `Name(...)` or `(...)`: struct, tuple, unit `()` or variant.
    Group {
        name: Option<String>,
        /// Byte offset of the opening `(`.
        open: usize,
        /// Byte offset of the closing `)`.
        close: usize,
        entries: Vec<Entry>,
    },
    /// `[...]`.
    List {
        /// Byte offset of the closing `]`.
        close: usize,
        items: Vec<Node>,
    },
    /// `{...}`.
    Map {
        /// Byte offset of the opening `{`.
        open: usize,
        /// Byte offset of the closing `}`.
        close: usize,
        entries: Vec<MapEntry>,
    },
}

/// An item inside `(...)`: `name: value` or a positional value.
#[derive(Debug)]
struct Entry {
    /// The field name (raw-identifier prefix `r#` removed).
    key: Option<String>,
    /// Where the entry starts (the field name, or the value).
    start: usize,
    value: Node,
}

#[derive(Debug)]
struct MapEntry {
    key: Node,
    value: Node,
}

#[derive(Debug)]
struct ScanError {
    at: usize,
    reason: String,
}

type ScanResult<T> = Result<T, ScanError>;

/// RON whitespace (as in `ron::parse::is_whitespace_char`), plus a BOM.
fn is_ws(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\n'
            | '\r'
            | '\x0B'
            | '\x0C'
            | '\u{85}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{FEFF}'
    )
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn is_raw_ident_char(c: char) -> bool {
    is_ident_continue(c) || matches!(c, '.' | '+' | '-')
}

struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str, pos: usize) -> Scanner<'a> {
        Scanner { src, pos }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error<T>(&self, reason: impl Into<String>) -> ScanResult<T> {
        Err(ScanError {
            at: self.pos,
            reason: reason.into(),
        })
    }

    fn expect(&mut self, c: char) -> ScanResult<()> {
        match self.peek() {
            Some(found) if found == c => {
                self.bump();
                Ok(())
            }
            Some(found) => self.error(format!("expected `{c}`, found `{found}`")),
            None => self.error(format!("expected `{c}`, found the end of the text")),
        }
    }

    /// Skips whitespace, `//` comments and (nested) `/* */` comments.
    fn skip_ws(&mut self) -> ScanResult<()> {
        loop {
            match self.peek() {
                Some(c) if is_ws(c) => {
                    self.bump();
                }
                Some('/') if self.starts_with("//") => {
                    let len = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.pos += len;
                }
                Some('/') if self.starts_with("/*") => {
                    let start = self.pos;
                    self.pos += 2;
                    let mut level = 1usize;
                    while level > 0 {
                        if self.starts_with("/*") {
                            level += 1;
                            self.pos += 2;
                        } else if self.starts_with("*/") {
                            level -= 1;
                            self.pos += 2;
                        } else if self.bump().is_none() {
                            return Err(ScanError {
                                at: start,
                                reason: "unclosed block comment".to_owned(),
                            });
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The whole document: attributes, then one value.
    fn document(&mut self) -> ScanResult<Node> {
        loop {
            self.skip_ws()?;
            if !self.starts_with("#!") {
                break;
            }
            self.pos += 2;
            self.skip_ws()?;
            self.skip_balanced()?;
        }
        self.value(0)
    }

    /// Skips a bracketed group such as `[enable(implicit_some)]` without
    /// interpreting it.
    fn skip_balanced(&mut self) -> ScanResult<()> {
        self.expect('[')?;
        let mut depth = 1usize;
        while depth > 0 {
            self.skip_ws()?;
            match self.peek() {
                None => return self.error("unclosed `#![...]` attribute"),
                Some('"') => self.string()?,
                Some('\'') => self.char_lit()?,
                Some('[' | '(' | '{') => {
                    depth += 1;
                    self.bump();
                }
                Some(']' | ')' | '}') => {
                    depth -= 1;
                    self.bump();
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> ScanResult<Node> {
        if depth > MAX_DEPTH {
            return self.error("values are nested too deeply");
        }
        self.skip_ws()?;
        let start = self.pos;
        let Some(c) = self.peek() else {
            return self.error("expected a value, found the end of the text");
        };
        let kind = match c {
            '"' => {
                self.string()?;
                Kind::Str
            }
            '\'' => {
                self.char_lit()?;
                Kind::Char
            }
            '(' => self.group(None, depth)?,
            '[' => self.list(depth)?,
            '{' => self.map(depth)?,
            'b' if self.starts_with("b\"") => {
                self.pos += 1;
                self.string()?;
                Kind::Str
            }
            'b' if self.starts_with("b'") => {
                self.pos += 1;
                self.char_lit()?;
                Kind::Char
            }
            'b' if self.starts_with("br\"") || self.starts_with("br#") => {
                self.pos += 1;
                self.raw_string()?;
                Kind::Str
            }
            'r' if self.starts_with("r\"")
                || self.starts_with("r#\"")
                || self.starts_with("r##") =>
            {
                self.raw_string()?;
                Kind::Str
            }
            c if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') => {
                while self.peek().is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
                }) {
                    self.bump();
                }
                Kind::Number
            }
            c if is_ident_start(c) => {
                let name = self.ident()?;
                let after = self.pos;
                self.skip_ws()?;
                if self.peek() == Some('(') {
                    self.group(Some(name), depth)?
                } else {
                    self.pos = after;
                    Kind::Ident
                }
            }
            other => return self.error(format!("unexpected `{other}`")),
        };
        Ok(Node {
            start,
            end: self.pos,
            kind,
        })
    }

    /// An identifier, possibly raw (`r#name`); returns it without `r#`.
    fn ident(&mut self) -> ScanResult<String> {
        let raw = self.starts_with("r#");
        if raw {
            self.pos += 2;
        }
        let start = self.pos;
        let continues: fn(char) -> bool = if raw {
            is_raw_ident_char
        } else {
            is_ident_continue
        };
        while self.peek().is_some_and(continues) {
            self.bump();
        }
        if self.pos == start {
            return self.error("expected an identifier");
        }
        Ok(self.src.get(start..self.pos).unwrap_or("").to_owned())
    }

    /// `"..."` with backslash escapes.
    fn string(&mut self) -> ScanResult<()> {
        let start = self.pos;
        self.expect('"')?;
        loop {
            match self.bump() {
                None => {
                    return Err(ScanError {
                        at: start,
                        reason: "unterminated string".to_owned(),
                    })
                }
                Some('\\') => {
                    self.bump();
                }
                Some('"') => return Ok(()),
                Some(_) => {}
            }
        }
    }

    /// `r"..."`, `r#"..."#`, `r##"..."##`, ...
    fn raw_string(&mut self) -> ScanResult<()> {
        let start = self.pos;
        self.expect('r')?;
        let mut hashes = 0usize;
        while self.peek() == Some('#') {
            hashes += 1;
            self.bump();
        }
        self.expect('"')?;
        let closing = format!("\"{}", "#".repeat(hashes));
        match self.rest().find(&closing) {
            Some(offset) => {
                self.pos += offset + closing.len();
                Ok(())
            }
            None => Err(ScanError {
                at: start,
                reason: "unterminated raw string".to_owned(),
            }),
        }
    }

    /// `'c'` with backslash escapes.
    fn char_lit(&mut self) -> ScanResult<()> {
        let start = self.pos;
        self.expect('\'')?;
        loop {
            match self.bump() {
                None => {
                    return Err(ScanError {
                        at: start,
                        reason: "unterminated char literal".to_owned(),
                    })
                }
                Some('\\') => {
                    self.bump();
                }
                Some('\'') => return Ok(()),
                Some(_) => {}
            }
        }
    }

    /// If the next tokens are `name :`, consumes them and returns the name.
    fn field_key(&mut self) -> ScanResult<Option<String>> {
        if !self.peek().is_some_and(is_ident_start) {
            return Ok(None);
        }
        let save = self.pos;
        let Ok(name) = self.ident() else {
            self.pos = save;
            return Ok(None);
        };
        self.skip_ws()?;
        if self.peek() == Some(':') {
            self.bump();
            Ok(Some(name))
        } else {
            self.pos = save;
            Ok(None)
        }
    }

    /// After one item: `,` (returns false) or the closing delimiter (returns
    /// true, with its offset recorded in `close`).
    fn separator(&mut self, closer: char, close: &mut usize) -> ScanResult<bool> {
        self.skip_ws()?;
        match self.peek() {
            Some(',') => {
                self.bump();
                Ok(false)
            }
            Some(c) if c == closer => {
                *close = self.pos;
                self.bump();
                Ok(true)
            }
            Some(c) => self.error(format!("expected `,` or `{closer}`, found `{c}`")),
            None => self.error(format!(
                "expected `,` or `{closer}`, found the end of the text"
            )),
        }
    }

    /// At `closer` (after skipping whitespace)? Then consume it.
    fn at_closer(&mut self, closer: char, close: &mut usize) -> ScanResult<bool> {
        self.skip_ws()?;
        if self.peek() == Some(closer) {
            *close = self.pos;
            self.bump();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn group(&mut self, name: Option<String>, depth: usize) -> ScanResult<Kind> {
        let open = self.pos;
        self.expect('(')?;
        let mut entries = Vec::new();
        let mut close = self.pos;
        loop {
            if self.at_closer(')', &mut close)? {
                break;
            }
            let start = self.pos;
            let key = self.field_key()?;
            let value = self.value(depth + 1)?;
            entries.push(Entry { key, start, value });
            if self.separator(')', &mut close)? {
                break;
            }
        }
        Ok(Kind::Group {
            name,
            open,
            close,
            entries,
        })
    }

    fn list(&mut self, depth: usize) -> ScanResult<Kind> {
        self.expect('[')?;
        let mut items = Vec::new();
        let mut close = self.pos;
        loop {
            if self.at_closer(']', &mut close)? {
                break;
            }
            items.push(self.value(depth + 1)?);
            if self.separator(']', &mut close)? {
                break;
            }
        }
        Ok(Kind::List { close, items })
    }

    fn map(&mut self, depth: usize) -> ScanResult<Kind> {
        let open = self.pos;
        self.expect('{')?;
        let mut entries = Vec::new();
        let mut close = self.pos;
        loop {
            if self.at_closer('}', &mut close)? {
                break;
            }
            let key = self.value(depth + 1)?;
            self.skip_ws()?;
            self.expect(':')?;
            let value = self.value(depth + 1)?;
            entries.push(MapEntry { key, value });
            if self.separator('}', &mut close)? {
                break;
            }
        }
        Ok(Kind::Map {
            open,
            close,
            entries,
        })
    }
}

fn scan(src: &str) -> Result<Node, LocateError> {
    Scanner::new(src, 0)
        .document()
        .map_err(|e| LocateError::Scan {
            pos: line_col(src, e.at),
            reason: e.reason,
        })
}

/// Decodes the text of a string literal node (`"..."`, `r#"..."#`,
/// `b"..."`); other nodes give their source text (identifiers, numbers).
fn key_text(src: &str, node: &Node) -> Option<String> {
    let text = src.get(node.start..node.end)?;
    match node.kind {
        Kind::Str => {
            let text = text.strip_prefix('b').unwrap_or(text);
            if let Some(raw) = text.strip_prefix('r') {
                let hashes = raw.len() - raw.trim_start_matches('#').len();
                let inner = raw.get(hashes + 1..raw.len().checked_sub(hashes + 1)?)?;
                return Some(inner.to_owned());
            }
            let inner = text.strip_prefix('"')?.strip_suffix('"')?;
            Some(unescape(inner))
        }
        Kind::Ident | Kind::Number | Kind::Char => Some(text.to_owned()),
        _ => None,
    }
}

/// Resolves RON string escapes (unknown escapes keep the escaped char).
fn unescape(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('u') if chars.peek() == Some(&'{') => {
                chars.next();
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if let Some(decoded) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(decoded);
                }
            }
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                if let Some(decoded) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(decoded);
                }
            }
            Some('\n') => {
                // Line continuation: skip leading whitespace of the next line.
                while chars
                    .peek()
                    .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                {
                    chars.next();
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Walking paths
// ---------------------------------------------------------------------------

/// Looks through `Some(x)` to `x` (repeatedly).
fn unwrap_some(mut node: &Node) -> &Node {
    loop {
        match &node.kind {
            Kind::Group {
                name: Some(name),
                entries,
                ..
            } if name == "Some" => match entries.as_slice() {
                [only] if only.key.is_none() => node = &only.value,
                _ => return node,
            },
            _ => return node,
        }
    }
}

enum Step<'n> {
    Found(&'n Node),
    Absent,
    OutOfRange(usize),
    WrongKind,
}

fn step<'n>(src: &str, node: &'n Node, segment: &Segment) -> Step<'n> {
    let node = unwrap_some(node);
    match (segment, &node.kind) {
        (Segment::Field(name) | Segment::Key(name), Kind::Group { entries, .. }) => {
            if let Some(entry) = entries.iter().find(|e| e.key.as_deref() == Some(name)) {
                Step::Found(&entry.value)
            } else if entries.iter().any(|e| e.key.is_none()) {
                Step::WrongKind
            } else {
                Step::Absent
            }
        }
        (Segment::Field(name) | Segment::Key(name), Kind::Map { entries, .. }) => entries
            .iter()
            .find(|e| key_text(src, &e.key).as_deref() == Some(name))
            .map_or(Step::Absent, |e| Step::Found(&e.value)),
        (Segment::Index(index), Kind::List { items, .. }) => items
            .get(*index)
            .map_or(Step::OutOfRange(items.len()), Step::Found),
        (Segment::Index(index), Kind::Group { entries, .. }) => {
            if entries.iter().any(|e| e.key.is_some()) {
                return Step::WrongKind;
            }
            entries
                .get(*index)
                .map_or(Step::OutOfRange(entries.len()), |e| Step::Found(&e.value))
        }
        (Segment::Index(index), Kind::Map { entries, .. }) => {
            let wanted = index.to_string();
            entries
                .iter()
                .find(|e| {
                    matches!(e.key.kind, Kind::Number)
                        && key_text(src, &e.key).as_deref() == Some(wanted.as_str())
                })
                .map_or(Step::Absent, |e| Step::Found(&e.value))
        }
        _ => Step::WrongKind,
    }
}

enum WalkError<'n> {
    /// Segment `at` is absent from `container` (which is a struct or map).
    Absent { at: usize, container: &'n Node },
    /// Index segment `at` is past the end of a list/tuple of `len` items.
    OutOfRange { at: usize, len: usize },
    /// Segment `at` does not apply to `container`.
    WrongKind { at: usize, container: &'n Node },
}

fn walk<'n>(src: &str, root: &'n Node, segments: &[Segment]) -> Result<&'n Node, WalkError<'n>> {
    let mut node = root;
    for (at, segment) in segments.iter().enumerate() {
        node = match step(src, node, segment) {
            Step::Found(next) => next,
            Step::Absent => {
                return Err(WalkError::Absent {
                    at,
                    container: node,
                })
            }
            Step::OutOfRange(len) => return Err(WalkError::OutOfRange { at, len }),
            Step::WrongKind => {
                return Err(WalkError::WrongKind {
                    at,
                    container: node,
                })
            }
        };
    }
    Ok(node)
}

/// "`links[2]`", or "the top-level value" for the root.
fn container_name(path: &Path, len: usize) -> String {
    if len == 0 {
        "the top-level value".to_owned()
    } else {
        format!("`{}`", path.prefix(len))
    }
}

/// A short description of what a value is, for error messages.
fn describe(src: &str, node: &Node) -> String {
    match &node.kind {
        Kind::Str => "a string".to_owned(),
        Kind::Char => "a character".to_owned(),
        Kind::Number => "a number".to_owned(),
        Kind::Ident => format!("`{}`", src.get(node.start..node.end).unwrap_or("?")),
        Kind::Group { name, entries, .. } => {
            let shape = if entries.iter().any(|e| e.key.is_some()) {
                "struct"
            } else {
                "tuple"
            };
            match name {
                Some(name) => format!("a `{name}(...)` {shape}"),
                None if entries.is_empty() => "the unit value `()`".to_owned(),
                None => format!("a {shape}"),
            }
        }
        Kind::List { .. } => "a list".to_owned(),
        Kind::Map { .. } => "a map".to_owned(),
    }
}

fn walk_error(src: &str, path: &Path, error: WalkError<'_>) -> LocateError {
    let segment = |at: usize| path.segments().get(at);
    match error {
        WalkError::Absent { at, container } => {
            let missing = match (segment(at), &unwrap_some(container).kind) {
                (Some(Segment::Field(name) | Segment::Key(name)), Kind::Group { .. }) => {
                    format!("field `{name}`")
                }
                (Some(Segment::Field(name) | Segment::Key(name)), _) => {
                    format!("key {}", quote(name))
                }
                (Some(Segment::Index(index)), _) => format!("key {index}"),
                (None, _) => "such value".to_owned(),
            };
            LocateError::NotFound {
                path: path.to_string(),
                container: container_name(path, at),
                missing,
            }
        }
        WalkError::OutOfRange { at, len } => LocateError::IndexOutOfRange {
            path: path.to_string(),
            container: container_name(path, at),
            index: match segment(at) {
                Some(Segment::Index(index)) => *index,
                _ => 0,
            },
            len,
        },
        WalkError::WrongKind { at, container } => LocateError::WrongKind {
            path: path.to_string(),
            container: container_name(path, at),
            found: describe(src, unwrap_some(container)),
            expected: match segment(at) {
                Some(Segment::Index(_)) => "a list, tuple or map",
                _ => "a struct or map",
            },
        },
    }
}

// ---------------------------------------------------------------------------
// Public queries
// ---------------------------------------------------------------------------

/// The source span of the value at `path`, or `None` if the path does not
/// exist (or `src` cannot be scanned). See [`try_locate`] for the reason.
pub fn locate(src: &str, path: &Path) -> Option<Span> {
    try_locate(src, path).ok()
}

/// Like [`locate`], but says why the value could not be found.
pub fn try_locate(src: &str, path: &Path) -> Result<Span, LocateError> {
    let root = scan(src)?;
    let node = walk(src, &root, path.segments()).map_err(|e| walk_error(src, path, e))?;
    Ok(Span::new(src, node.start, node.end))
}

/// The byte offset of the closing delimiter (`)`, `]` or `}`) of the
/// struct, tuple, list or map at `path` (looking through `Some(...)`): text
/// inserted at this offset ends up just before the closing paren. `None` if
/// the path does not exist or is not a container.
pub fn locate_container_end(src: &str, path: &Path) -> Option<usize> {
    let root = scan(src).ok()?;
    let node = unwrap_some(walk(src, &root, path.segments()).ok()?);
    match node.kind {
        Kind::Group { close, .. } | Kind::List { close, .. } | Kind::Map { close, .. } => {
            Some(close)
        }
        _ => None,
    }
}

/// Replaces the value at `path` with `new_value_text` (inserted verbatim,
/// trimmed) and returns the new source text.
///
/// If the last segment names a field absent from an existing struct (or a
/// key absent from an existing map), `name: value` (or `"key": value`) is
/// inserted before the closing delimiter, following the container's layout
/// (same line, or a new line with the indentation of the last entry) and its
/// trailing-comma style. Everything else must exist: an index past the end of
/// a list, or a missing container, is an error. The caller should re-parse
/// the result, since the new text is not validated.
pub fn set_value(src: &str, path: &Path, new_value_text: &str) -> Result<String, LocateError> {
    let new_value = new_value_text.trim();
    if new_value.is_empty() {
        return Err(LocateError::EmptyValue {
            path: path.to_string(),
        });
    }
    let root = scan(src)?;
    match walk(src, &root, path.segments()) {
        Ok(node) => Ok(splice(
            src,
            vec![(node.start, node.end, new_value.to_owned())],
        )),
        Err(WalkError::Absent { at, container }) if at + 1 == path.segments().len() => {
            insert_entry(src, path, unwrap_some(container), new_value)
        }
        // `sysctl["tcp_rto_min"]=1000` on a file without `sysctl`: the missing maps are
        // created, because bracketed keys say they are maps. A missing `.field` on the way
        // stays an error (it is more often a typo, and its struct's name is unknown here).
        Err(WalkError::Absent { at, container })
            if path.segments()[at + 1..]
                .iter()
                .all(|s| matches!(s, Segment::Key(_))) =>
        {
            let nested = path.segments()[at + 1..].iter().rev().fold(
                new_value.to_owned(),
                |inner, segment| match segment {
                    Segment::Key(k) => format!("{{ {}: {inner} }}", quote(k)),
                    Segment::Field(_) | Segment::Index(_) => inner,
                },
            );
            insert_entry(src, &path.prefix(at + 1), unwrap_some(container), &nested)
        }
        Err(e) => Err(walk_error(src, path, e)),
    }
}

/// Adds `key: value` for the last segment of `path` to `container`.
fn insert_entry(
    src: &str,
    path: &Path,
    container: &Node,
    new_value: &str,
) -> Result<String, LocateError> {
    let cannot = |reason: String| LocateError::CannotInsert {
        path: path.to_string(),
        reason,
    };
    let parent = container_name(path, path.segments().len().saturating_sub(1));
    let (open, close, spans): (usize, usize, Vec<(usize, usize)>) = match &container.kind {
        Kind::Group {
            open,
            close,
            entries,
            ..
        } => (
            *open,
            *close,
            entries.iter().map(|e| (e.start, e.value.end)).collect(),
        ),
        Kind::Map {
            open,
            close,
            entries,
        } => (
            *open,
            *close,
            entries.iter().map(|e| (e.key.start, e.value.end)).collect(),
        ),
        _ => {
            return Err(cannot(format!(
                "{parent} is {}, which cannot get new entries",
                describe(src, container)
            )))
        }
    };
    let key = match (path.last(), &container.kind) {
        (Some(Segment::Field(name) | Segment::Key(name)), Kind::Group { .. }) => {
            if name.chars().next().is_some_and(is_ident_start)
                && name.chars().all(is_ident_continue)
            {
                name.clone()
            } else if !name.is_empty() && name.chars().all(is_raw_ident_char) {
                format!("r#{name}")
            } else {
                return Err(cannot(format!("`{name}` is not a valid field name")));
            }
        }
        (Some(Segment::Field(name) | Segment::Key(name)), _) => quote(name),
        (Some(Segment::Index(index)), _) => index.to_string(),
        (None, _) => return Err(cannot("the top-level value always exists".to_owned())),
    };
    let entry = format!("{key}: {new_value}");
    Ok(splice(
        src,
        insertion_edits(src, open, &spans, close, &entry),
    ))
}

/// The edits that add `entry` to a container whose delimiters are at `open`
/// and `close` and whose entries span `entries` (start of key, end of value).
fn insertion_edits(
    src: &str,
    open: usize,
    entries: &[(usize, usize)],
    close: usize,
    entry: &str,
) -> Vec<(usize, usize, String)> {
    let line_start = |at: usize| {
        src.get(..at)
            .and_then(|s| s.rfind('\n'))
            .map_or(0, |i| i + 1)
    };
    let indent_at = |line: usize, at: usize| -> String {
        src.get(line..at)
            .unwrap_or("")
            .chars()
            .take_while(|&c| c == ' ' || c == '\t')
            .collect()
    };
    let close_line = line_start(close);
    let Some(&(last_start, last_end)) = entries.last() else {
        let close_on_own_line = close_line > open
            && src
                .get(close_line..close)
                .is_some_and(|s| s.chars().all(is_ws));
        return if close_on_own_line {
            let indent = indent_at(close_line, close);
            vec![(close_line, close_line, format!("{indent}    {entry},\n"))]
        } else {
            vec![(close, close, entry.to_owned())]
        };
    };
    // Is there a `,` after the last entry (possibly after comments)?
    let mut scanner = Scanner::new(src, last_end);
    let trailing_comma = match scanner.skip_ws() {
        Ok(()) if scanner.pos < close && scanner.peek() == Some(',') => Some(scanner.pos),
        _ => None,
    };
    let close_on_own_line = close_line > last_end
        && src
            .get(close_line..close)
            .is_some_and(|s| s.chars().all(is_ws));
    if close_on_own_line {
        let indent = indent_at(line_start(last_start), last_start);
        match trailing_comma {
            Some(_) => vec![(close_line, close_line, format!("{indent}{entry},\n"))],
            None => vec![
                (last_end, last_end, ",".to_owned()),
                (close_line, close_line, format!("{indent}{entry}\n")),
            ],
        }
    } else {
        match trailing_comma {
            Some(comma) => vec![(comma + 1, comma + 1, format!(" {entry},"))],
            None => vec![(last_end, last_end, format!(", {entry}"))],
        }
    }
}

/// Applies non-overlapping `(start, end, replacement)` edits to `src`.
fn splice(src: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    edits.sort_by_key(|&(start, end, _)| (start, end));
    let mut out = String::with_capacity(src.len() + edits.iter().map(|e| e.2.len()).sum::<usize>());
    let mut copied = 0;
    for (start, end, text) in edits {
        out.push_str(src.get(copied..start).unwrap_or(""));
        out.push_str(&text);
        copied = copied.max(end);
    }
    out.push_str(src.get(copied..).unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r##"#![enable(implicit_some)]
// Dumbbell topology: a1,a2 -> r1 == r2 -> b1,b2   (unbalanced ( [ { in comments
/* block comment /* nested ) ] } */ still "comment */
Scenario(
    name: "dümbbell (test) [v2] \"q\" \\", duration: "60s",
    seed: 42,
    notes: r#"raw "string" with ) and ] and // not a comment"#,
    sep: ')',
    nodes: {
        "a1": Host(), "a2": Host(addr: "10.0.0.2/24"),   // a comment with ( and [
        "r1": Router(), "s1": Switch(),
        "b1": Host(addr: "10.0.1.1/24" /* inline ( */), "b2": Host(),
        "weird \"key\"": Router(),
    },
    links: [
        Link(a: "a1", b: "r1", rate: "1Gbps", delay: "1ms"),
        Link(a: "a2", b: "r1", rate: "1Gbps", delay: "1ms"),
        Link(a: "r1", b: "r2", rate: "100Mbps", delay: "20ms", mtu: 1500,
             queue: DropTail(limit: "100 packets"), loss: Bernoulli(0.01), capture: true),
    ],
    routing: Auto(ecmp: PerFlow),
    apps: [
        Ping(from: "a1", to: "b2", interval: "100ms", start: "1s"),
        UdpCbr(from: "a2", to: "b1:5001", rate: "10Mbps", size: 1200),
    ],
    faults: [ LinkDown(link: "r1-r2", at: "30s", for: "2s") ],
    extra: Some((1, [2, 3], { 4: "four" })),
    opt: Some(Tuning(window: 10)),
)
"##;

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn text_at(src: &str, p: &str) -> Option<String> {
        let span = locate(src, &path(p))?;
        span.text(src).map(str::to_owned)
    }

    fn assert_valid_ron(src: &str) {
        if let Err(e) = ron::from_str::<ron::Value>(src) {
            panic!("not valid RON ({e}):\n{src}");
        }
    }

    fn set(src: &str, p: &str, value: &str) -> String {
        let out = set_value(src, &path(p), value).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_valid_ron(&out);
        out
    }

    #[test]
    fn scenario_fixture_is_valid_ron() {
        assert_valid_ron(SCENARIO);
    }

    #[test]
    fn locates_values_by_path() {
        let cases: &[(&str, &str, usize)] = &[
            ("links[2].rate", "\"100Mbps\"", 18),
            ("nodes.b1", "Host(addr: \"10.0.1.1/24\" /* inline ( */)", 12),
            (
                "nodes[\"b1\"]",
                "Host(addr: \"10.0.1.1/24\" /* inline ( */)",
                12,
            ),
            ("nodes.b1.addr", "\"10.0.1.1/24\"", 12),
            ("apps[1].to", "\"b1:5001\"", 24),
            ("faults[0].at", "\"30s\"", 26),
            ("faults[0].for", "\"2s\"", 26),
            ("links[2].loss", "Bernoulli(0.01)", 19),
            ("links[2].loss[0]", "0.01", 19),
            ("links[2].queue", "DropTail(limit: \"100 packets\")", 19),
            ("links[2].queue.limit", "\"100 packets\"", 19),
            ("links[2].capture", "true", 19),
            ("links[0].delay", "\"1ms\"", 16),
            ("routing", "Auto(ecmp: PerFlow)", 21),
            ("routing.ecmp", "PerFlow", 21),
            ("seed", "42", 6),
            ("sep", "')'", 8),
            (
                "notes",
                "r#\"raw \"string\" with ) and ] and // not a comment\"#",
                7,
            ),
            ("name", "\"dümbbell (test) [v2] \\\"q\\\" \\\\\"", 5),
            ("duration", "\"60s\"", 5),
            ("nodes[\"weird \\\"key\\\"\"]", "Router()", 13),
            ("nodes.a2.addr", "\"10.0.0.2/24\"", 10),
            ("nodes.a1", "Host()", 10),
            ("extra", "Some((1, [2, 3], { 4: \"four\" }))", 27),
            ("extra[0]", "1", 27),
            ("extra[1][1]", "3", 27),
            ("extra[2][4]", "\"four\"", 27),
            ("opt", "Some(Tuning(window: 10))", 28),
            ("opt.window", "10", 28),
        ];
        for &(p, expected, line) in cases {
            let span = locate(SCENARIO, &path(p)).unwrap_or_else(|| panic!("{p} not found"));
            assert_eq!(span.text(SCENARIO), Some(expected), "{p}");
            assert_eq!(span.start.line, line, "{p}");
        }
        let root = locate(SCENARIO, &Path::root()).unwrap_or_else(|| panic!("no root"));
        assert_eq!(root.start, Pos { line: 4, col: 1 });
        assert_eq!(root.end, Pos { line: 29, col: 2 });
        assert!(root
            .text(SCENARIO)
            .is_some_and(|t| t.starts_with("Scenario(")));
    }

    #[test]
    fn positions_are_one_based_and_count_chars() {
        let span = locate(SCENARIO, &path("links[2].rate")).unwrap_or_else(|| panic!("missing"));
        assert_eq!(span.start, Pos { line: 18, col: 38 });
        assert_eq!(span.end, Pos { line: 18, col: 47 });
        assert_eq!(span.to_string(), "18:38-18:47");

        // Line 5 has a two-byte `ü` before `duration`: columns count chars.
        let span = locate(SCENARIO, &path("duration")).unwrap_or_else(|| panic!("missing"));
        let before = "    name: \"dümbbell (test) [v2] \\\"q\\\" \\\\\", duration: ";
        assert_eq!(span.start.col, before.chars().count() + 1);
        assert_eq!(span.start.col + 1, before.len() + 1);
        assert_eq!(line_col(SCENARIO, span.start_byte), span.start);
        assert_eq!(line_col(SCENARIO, span.end_byte), span.end);
    }

    #[test]
    fn line_col_edge_cases() {
        let src = "ab\r\nü\tx\n";
        assert_eq!(line_col(src, 0), Pos { line: 1, col: 1 });
        assert_eq!(line_col(src, 2), Pos { line: 1, col: 3 }); // the '\r'
        assert_eq!(line_col(src, 4), Pos { line: 2, col: 1 });
        assert_eq!(line_col(src, 5), Pos { line: 2, col: 1 }); // inside 'ü'
        assert_eq!(line_col(src, 6), Pos { line: 2, col: 2 });
        assert_eq!(line_col(src, 7), Pos { line: 2, col: 3 });
        assert_eq!(line_col(src, 9), Pos { line: 3, col: 1 });
        assert_eq!(line_col(src, 1000), Pos { line: 3, col: 1 });
        assert_eq!(line_col("", 5), Pos { line: 1, col: 1 });
    }

    /// Our positions use the same convention as the ones `ron` puts in its
    /// errors. For numbers `ron`'s error span is exactly the value; for
    /// strings `ron`'s span *ends* just after the closing quote like ours, but
    /// *starts* inside the literal (after the opening quote, or after the
    /// last escape sequence), so only the end is comparable there.
    #[test]
    fn positions_match_ron_error_positions() {
        use serde::de::Error as _;

        #[derive(Debug)]
        struct RejectStr;
        impl<'de> serde::Deserialize<'de> for RejectStr {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Err(D::Error::custom(format!("rejected {s}")))
            }
        }
        #[derive(Debug)]
        struct RejectNum;
        impl<'de> serde::Deserialize<'de> for RejectNum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = <f64 as serde::Deserialize>::deserialize(d)?;
                Err(D::Error::custom(format!("rejected {n}")))
            }
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct StrDoc {
            name: String,
            rate: RejectStr,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct NumDoc {
            name: String,
            rate: RejectNum,
        }

        let src = "StrDoc(\n\tname: \"ü→ (x\",   rate: \"fa\\\"st\", // ü\n)";
        let err = match ron::from_str::<StrDoc>(src) {
            Ok(doc) => panic!("parsed {doc:?}"),
            Err(e) => e,
        };
        let span = locate(src, &path("rate")).unwrap_or_else(|| panic!("missing"));
        assert_eq!(span.text(src), Some("\"fa\\\"st\""));
        assert_eq!(
            (err.span.end.line, err.span.end.col),
            (span.end.line, span.end.col)
        );
        assert_eq!(err.span.start.line, span.start.line, "{err}");
        assert!(err.span.start.col > span.start.col, "{err}");

        let src = "NumDoc(\n\tname: \"ü→ (x\",\r\n  rate: 1.5e3, // ü\n)";
        let err = match ron::from_str::<NumDoc>(src) {
            Ok(doc) => panic!("parsed {doc:?}"),
            Err(e) => e,
        };
        let span = locate(src, &path("rate")).unwrap_or_else(|| panic!("missing"));
        assert_eq!(span.text(src), Some("1.5e3"));
        assert_eq!(
            (err.span.start.line, err.span.start.col),
            (span.start.line, span.start.col)
        );
        assert_eq!(
            (err.span.end.line, err.span.end.col),
            (span.end.line, span.end.col)
        );
    }

    #[test]
    fn absent_paths_give_none() {
        for p in [
            "links[3]",
            "links[2].jitter",
            "links[2].queue.ecn",
            "nodes.zz",
            "nodes[\"zz\"]",
            "seed.x",
            "links.x",
            "routing[0]",
            "apps[1].to.x",
            "faults[0][0]",
            "extra[5]",
            "extra[2][5]",
            "extra[2].four",
            "opt.mss",
            "nope",
        ] {
            assert_eq!(locate(SCENARIO, &path(p)), None, "{p}");
        }
    }

    #[test]
    fn lookup_errors_explain_what_is_missing() {
        let err = |p: &str| match try_locate(SCENARIO, &path(p)) {
            Ok(span) => panic!("{p} found at {span}"),
            Err(e) => e,
        };
        assert_eq!(
            err("links[5].delay"),
            LocateError::IndexOutOfRange {
                path: "links[5].delay".into(),
                container: "`links`".into(),
                index: 5,
                len: 3,
            }
        );
        assert_eq!(
            err("links[5].delay").to_string(),
            "`links[5].delay` does not exist: index 5 is out of range, `links` has 3 item(s)"
        );
        assert_eq!(
            err("links[2].queue.ecn").to_string(),
            "`links[2].queue.ecn` does not exist: `links[2].queue` has no field `ecn`"
        );
        assert_eq!(
            err("nodes.zz").to_string(),
            "`nodes.zz` does not exist: `nodes` has no key \"zz\""
        );
        assert_eq!(
            err("nope").to_string(),
            "`nope` does not exist: the top-level value has no field `nope`"
        );
        assert_eq!(
            err("seed.x").to_string(),
            "`seed.x` does not exist: `seed` is a number, not a struct or map"
        );
        assert_eq!(
            err("links[0][1]").to_string(),
            "`links[0][1]` does not exist: `links[0]` is a `Link(...)` struct, not a list, tuple or map"
        );
        assert_eq!(
            err("routing.ecmp.x").to_string(),
            "`routing.ecmp.x` does not exist: `routing.ecmp` is `PerFlow`, not a struct or map"
        );
        assert!(matches!(
            err("links[2].loss.p"),
            LocateError::WrongKind { ref found, .. } if found == "a `Bernoulli(...)` tuple"
        ));
        assert!(matches!(
            try_locate("[1, 2", &path("[0]")),
            Err(LocateError::Scan { .. })
        ));
    }

    #[test]
    fn path_parsing_and_display() {
        assert_eq!(
            path("links[2].delay").segments(),
            &[
                Segment::Field("links".into()),
                Segment::Index(2),
                Segment::Field("delay".into())
            ]
        );
        assert_eq!(
            path("nodes[\"h1\"]").segments(),
            &[Segment::Field("nodes".into()), Segment::Key("h1".into())]
        );
        assert_eq!(
            path(" nodes[ \"a \\\"b\\\" \\\\ c\" ].addr ").segments(),
            &[
                Segment::Field("nodes".into()),
                Segment::Key("a \"b\" \\ c".into()),
                Segment::Field("addr".into())
            ]
        );
        assert_eq!(
            path("[0][1]").segments(),
            &[Segment::Index(0), Segment::Index(1)]
        );
        assert_eq!(path("faults[0].r1-r2").to_string(), "faults[0].r1-r2");
        assert!(path("").is_root());
        assert_eq!(path("").to_string(), "");

        for text in [
            "links[2].delay",
            "nodes[\"h1\"]",
            "nodes.h1.addr",
            "nodes[\"a \\\"b\\\" \\\\ c\\n\"][0]",
            "[3]",
        ] {
            let p = path(text);
            assert_eq!(p.to_string(), text);
            assert_eq!(path(&p.to_string()), p);
        }
        let built = Path::root().field("links").index(2).field("delay");
        assert_eq!(built.to_string(), "links[2].delay");
        assert_eq!(built.last(), Some(&Segment::Field("delay".into())));
        assert_eq!(
            built.parent().map(|p| p.to_string()),
            Some("links[2]".into())
        );
        assert_eq!(Path::root().parent(), None);
        assert_eq!(Path::root().key("a b").to_string(), "[\"a b\"]");
        assert_eq!(Path::root().field("a b").to_string(), "[\"a b\"]");
        assert_eq!("seed".parse::<Path>(), Ok(path("seed")));

        for bad in [
            "links[",
            "links[x]",
            "links[-1]",
            "links[]",
            "links.",
            ".links",
            "links[2]]",
            "a..b",
            "a.b c",
            "nodes[\"unterminated",
            "nodes[\"k\"",
            "links[99999999999999999999999999]",
            "links[2]x",
        ] {
            assert!(
                matches!(Path::parse(bad), Err(LocateError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
        let msg = Path::parse("links[x]").map_err(|e| e.to_string());
        assert_eq!(
            msg,
            Err(
                "invalid value path `links[x]`: expected an index like [2] or a quoted key \
                 like [\"h1\"] inside [...], found `x`"
                    .to_owned()
            )
        );
    }

    #[test]
    fn parse_assignment_splits_at_first_top_level_equals() {
        let (p, v) = parse_assignment("links[0].delay=\"5ms\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_string(), "links[0].delay");
        assert_eq!(v, "\"5ms\"");
        let (p, v) =
            parse_assignment("nodes[\"a=b\"].x=Foo(y: \"=\")").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.segments()[1], Segment::Key("a=b".into()));
        assert_eq!(v, "Foo(y: \"=\")");
        assert!(parse_assignment("links[0].delay").is_err());
        assert!(parse_assignment("links[x]=1").is_err());
    }

    #[test]
    fn set_value_replaces_existing_values() {
        let out = set(SCENARIO, "links[0].delay", "\"5ms\"");
        assert!(out.contains("Link(a: \"a1\", b: \"r1\", rate: \"1Gbps\", delay: \"5ms\"),\n"));
        assert_eq!(out.lines().count(), SCENARIO.lines().count());
        let changed: Vec<_> = SCENARIO
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1);
        assert_eq!(text_at(&out, "links[0].delay").as_deref(), Some("\"5ms\""));

        let out = set(SCENARIO, "nodes.s1", " Router() ");
        assert_eq!(text_at(&out, "nodes[\"s1\"]").as_deref(), Some("Router()"));
        let out = set(SCENARIO, "nodes[\"a2\"].addr", "\"10.0.0.9/24\"");
        assert_eq!(
            text_at(&out, "nodes.a2.addr").as_deref(),
            Some("\"10.0.0.9/24\"")
        );
        let out = set(
            SCENARIO,
            "links[2].queue",
            "Red(min: \"5KiB\", max: \"15KiB\")",
        );
        assert_eq!(
            text_at(&out, "links[2].queue.max").as_deref(),
            Some("\"15KiB\"")
        );
        assert_eq!(text_at(&out, "links[2].loss[0]").as_deref(), Some("0.01"));
        let out = set(SCENARIO, "links[2].loss[0]", "0.5");
        assert!(out.contains("loss: Bernoulli(0.5), capture: true"));
        let out = set(SCENARIO, "opt.window", "20");
        assert!(out.contains("opt: Some(Tuning(window: 20)),"));
        let out = set(SCENARIO, "extra[2][4]", "\"FOUR\"");
        assert!(out.contains("{ 4: \"FOUR\" }"));
        let out = set(SCENARIO, "", "Scenario(seed: 1)");
        assert!(out.ends_with("Scenario(seed: 1)\n"));
        assert!(out.starts_with("#![enable(implicit_some)]\n"));
    }

    #[test]
    fn set_value_inserts_absent_fields() {
        // Same-line struct without trailing comma.
        let out = set(SCENARIO, "links[0].jitter", "\"1ms\"");
        assert!(out.contains("delay: \"1ms\", jitter: \"1ms\"),\n        Link(a: \"a2\""));
        // Multi-line struct: the last entry sits on the closing line.
        let out = set(SCENARIO, "links[2].ecn", "true");
        assert!(out.contains("capture: true, ecn: true),\n"));
        // Top-level multi-line struct with trailing comma: new line, same indent.
        let out = set(SCENARIO, "description", "\"a test\"");
        assert!(
            out.ends_with("    opt: Some(Tuning(window: 10)),\n    description: \"a test\",\n)\n")
        );
        assert_eq!(text_at(&out, "description").as_deref(), Some("\"a test\""));
        // Empty struct.
        let out = set(SCENARIO, "nodes.a1.addr", "\"10.0.0.1/24\"");
        assert!(out.contains("\"a1\": Host(addr: \"10.0.0.1/24\"), \"a2\""));
        // Through `Some(...)`.
        let out = set(SCENARIO, "opt.mss", "1400");
        assert!(out.contains("opt: Some(Tuning(window: 10, mss: 1400)),"));
        // Map with trailing comma and closing brace on its own line.
        let out = set(SCENARIO, "nodes.h9", "Host()");
        assert!(out
            .contains("        \"weird \\\"key\\\"\": Router(),\n        \"h9\": Host(),\n    },"));
        assert_eq!(text_at(&out, "nodes[\"h9\"]").as_deref(), Some("Host()"));
        let out = set(SCENARIO, "extra[2][7]", "\"seven\"");
        assert!(out.contains("{ 4: \"four\", 7: \"seven\" }"));
        // Inserting twice keeps the text valid.
        let twice = set(
            &set(SCENARIO, "links[1].mtu", "9000"),
            "links[1].ecn",
            "false",
        );
        assert!(twice.contains("delay: \"1ms\", mtu: 9000, ecn: false),"));
    }

    #[test]
    fn set_value_creates_missing_maps_for_bracketed_keys() {
        let out = set(SCENARIO, "sysctl[\"tcp_rto_min\"]", "1000");
        assert_eq!(
            text_at(&out, "sysctl[\"tcp_rto_min\"]").as_deref(),
            Some("1000")
        );
        assert!(out.contains("    sysctl: { \"tcp_rto_min\": 1000 },\n"));
        let out = set(SCENARIO, "nodes.a1.sysctl[\"a\"][\"b c\"]", "true");
        assert!(out.contains("\"a1\": Host(sysctl: { \"a\": { \"b c\": true } })"));
        assert_eq!(
            text_at(&out, "nodes.a1.sysctl[\"a\"][\"b c\"]").as_deref(),
            Some("true")
        );
    }

    #[test]
    fn set_value_insertion_layouts() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "Foo(\n    a: 1,\n    b: 2 // two\n)",
                "c",
                "Foo(\n    a: 1,\n    b: 2, // two\n    c: 3\n)",
            ),
            (
                "Foo(\n    a: 1,\n    b: 2, /* two */\n)",
                "c",
                "Foo(\n    a: 1,\n    b: 2, /* two */\n    c: 3,\n)",
            ),
            ("(a: 1, )", "c", "(a: 1, c: 3, )"),
            ("(a: 1 /* x */)", "c", "(a: 1, c: 3 /* x */)"),
            ("()", "c", "(c: 3)"),
            ("Foo(\n)", "c", "Foo(\n    c: 3,\n)"),
            (
                "  (\n    // nothing yet\n  )",
                "c",
                "  (\n    // nothing yet\n      c: 3,\n  )",
            ),
            ("( /* empty */ )", "c", "( /* empty */ c: 3)"),
            ("(a: 1)", "x-y", "(a: 1, r#x-y: 3)"),
            (
                "(\n\ta: 1,\n\t// the end\n)",
                "c",
                "(\n\ta: 1,\n\t// the end\n\tc: 3,\n)",
            ),
        ];
        for &(src, field, expected) in cases {
            let out = set(src, field, "3");
            assert_eq!(out, expected, "inserting {field} into {src:?}");
        }
    }

    #[test]
    fn set_value_errors() {
        let err = |p: &str, v: &str| match set_value(SCENARIO, &path(p), v) {
            Ok(out) => panic!("{p} = {v} succeeded:\n{out}"),
            Err(e) => e,
        };
        assert!(matches!(
            err("links[3].delay", "\"1ms\""),
            LocateError::IndexOutOfRange {
                index: 3,
                len: 3,
                ..
            }
        ));
        assert!(matches!(
            err("links[3]", "Link()"),
            LocateError::IndexOutOfRange {
                index: 3,
                len: 3,
                ..
            }
        ));
        assert!(matches!(
            err("links[2].queue2.limit", "\"1p\""),
            LocateError::NotFound { .. }
        ));
        assert!(matches!(
            err("nodes.zz.addr", "\"1.2.3.4/8\""),
            LocateError::NotFound { .. }
        ));
        assert!(matches!(err("seed.x", "1"), LocateError::WrongKind { .. }));
        assert!(matches!(
            err("links[2].loss.p", "1"),
            LocateError::WrongKind { .. }
        ));
        assert!(matches!(
            err("routing.ecmp.x", "1"),
            LocateError::WrongKind { .. }
        ));
        assert!(matches!(
            err("links[0].delay", "  "),
            LocateError::EmptyValue { .. }
        ));
        assert_eq!(
            err("links[0][\"a b\"]", "1").to_string(),
            "cannot add `links[0][\"a b\"]`: `a b` is not a valid field name"
        );
        assert!(matches!(
            set_value("(a: \"unterminated)", &path("a"), "1"),
            Err(LocateError::Scan { .. })
        ));
    }

    #[test]
    fn locate_container_end_points_at_closing_delimiter() {
        let at = |p: &str| locate_container_end(SCENARIO, &path(p));
        let char_at = |offset: Option<usize>| offset.and_then(|o| SCENARIO.get(o..o + 1));
        let root_end = at("").unwrap_or_else(|| panic!("no root end"));
        assert_eq!(line_col(SCENARIO, root_end), Pos { line: 29, col: 1 });
        assert_eq!(char_at(at("links[0]")), Some(")"));
        assert_eq!(line_col(SCENARIO, at("links[0]").unwrap_or(0)).line, 16);
        assert_eq!(char_at(at("links")), Some("]"));
        assert_eq!(char_at(at("nodes")), Some("}"));
        assert_eq!(
            line_col(SCENARIO, at("nodes.b1").unwrap_or(0)),
            Pos { line: 12, col: 54 }
        );
        // `opt` is `Some(Tuning(...))`: the end of the inner struct.
        let opt_end = at("opt").unwrap_or(0);
        assert_eq!(SCENARIO.get(opt_end..opt_end + 3), Some(")),"));
        assert_eq!(at("seed"), None);
        assert_eq!(at("links[9]"), None);
    }

    #[test]
    fn scanner_handles_ron_syntax() {
        let src = r###"
            // leading comment
            #![enable(implicit_some)] /* between */ #![enable(unwrap_newtypes)]
            (
                r#type: "t", r#foo-bar: 2,
                raw: r##"a "# b"##, bytes: b"x\"y", byte: b'\'',
                ch: '\u{1F600}', esc: "tab\t\u{e9}",
                nums: [1_000, -2.5e-3, 0x1F, +7, 1u8, inf, NaN, .5],
                unit: (), tuple: ((), (1,), (1, 2,),),
                map: { "k": 1, 2: "two", 'c': 3, (1, 2): 4, Key: 5, },
                nested: Outer(inner: Inner(x: [ {"deep": Some(Some(Leaf(v: 1)))} ])),
            )
        "###;
        assert_valid_ron(src);
        let cases: &[(&str, &str)] = &[
            ("type", "\"t\""),
            ("foo-bar", "2"),
            ("raw", "r##\"a \"# b\"##"),
            ("bytes", "b\"x\\\"y\""),
            ("byte", "b'\\''"),
            ("ch", "'\\u{1F600}'"),
            ("nums[1]", "-2.5e-3"),
            ("nums[7]", ".5"),
            ("unit", "()"),
            ("tuple[1][0]", "1"),
            ("tuple[2]", "(1, 2,)"),
            ("map.k", "1"),
            ("map[2]", "\"two\""),
            ("map.Key", "5"),
            ("nested.inner.x[0].deep.v", "1"),
            ("nested.inner.x[0][\"deep\"]", "Some(Some(Leaf(v: 1)))"),
        ];
        for &(p, expected) in cases {
            assert_eq!(text_at(src, p).as_deref(), Some(expected), "{p}");
        }
        assert_eq!(text_at(src, "unit[0]"), None);
        assert_eq!(text_at(src, "unit.x"), None);
    }

    #[test]
    fn anonymous_top_level_and_whitespace_before_paren() {
        let src = "(\n  a: Some /* c */ (1),\n  b: Foo\n  (x: 2),\n)";
        assert_eq!(text_at(src, "a").as_deref(), Some("Some /* c */ (1)"));
        assert_eq!(text_at(src, "b.x").as_deref(), Some("2"));
    }

    #[test]
    fn never_panics_on_malformed_text() {
        let paths: Vec<Path> = [
            "",
            "links[2].rate",
            "nodes.b1",
            "apps[1].to",
            "opt.mss",
            "zzz",
        ]
        .iter()
        .map(|p| path(p))
        .collect();
        // Every prefix of the scenario (unterminated strings, comments, ...).
        let mut cut = 0;
        while cut <= SCENARIO.len() {
            if let Some(prefix) = SCENARIO.get(..cut) {
                for p in &paths {
                    let _ = locate(prefix, p);
                    let _ = locate_container_end(prefix, p);
                    let _ = set_value(prefix, p, "1");
                }
            }
            cut += 1;
        }
        for junk in [
            "",
            " ",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "'",
            "r#\"",
            "r#",
            "b'",
            "/*",
            "/* /* */",
            "//",
            "#!",
            "#![",
            "#![enable(",
            "(a:",
            "(a: 1",
            "{1 2}",
            "[1 2]",
            "(a 1)",
            "@",
            "Foo(",
            "Some(",
            "\u{2028}",
            "ü",
            "(r#: 1)",
        ] {
            for p in &paths {
                let _ = locate(junk, p);
                let _ = set_value(junk, p, "1");
            }
        }
        // Deep nesting is an error, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            try_locate(&deep, &path("[0]")),
            Err(LocateError::Scan { .. })
        ));
        let ok_deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(try_locate(&ok_deep, &path("[0][0]")).is_ok());
    }
}
