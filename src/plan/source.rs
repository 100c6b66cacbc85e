//! Source positions and compiler-style diagnostics for plan files.
//!
//! Why a position tree of our own: serde gives the position of the *first*
//! syntax or type error only, but most plan mistakes are semantic (a typo in a
//! reference, a missing region) and are found after deserialization, when the
//! positions are gone. So each file is also parsed into a light tree of
//! positions (from `toml`'s spanned parser or `saphyr`'s event stream), and a
//! semantic check names the *path* of the bad value (`dns[1].follows`); the
//! tree turns that path into file, line and column. One mechanism for TOML and
//! YAML, and every error in a run is reported with its place.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::limits;

/// File format of a plan or tiers file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// YAML (`.yaml`, `.yml`).
    Yaml,
}

impl Format {
    /// The format a path's extension implies, if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            _ => None,
        }
    }
}

/// A position in a file: 1-based line and column (in characters), and the
/// length to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, counted in characters.
    pub col: usize,
    /// Characters to underline (at least 1 when rendered).
    pub len: usize,
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A key of a table or mapping.
    Key(String),
    /// An index into an array or sequence.
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}
impl From<String> for Seg {
    fn from(s: String) -> Self {
        Seg::Key(s)
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Builds a path: `path!["dns", 1, "follows"]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => { vec![$($crate::plan::source::Seg::from($seg)),*] };
}

/// Renders a path as people write it: `dns[1].follows`.
pub fn path_to_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Kind {
    Map(Vec<(String, Pos, Node)>),
    Seq(Vec<Node>),
    Leaf,
}

/// A node of the position tree.
#[derive(Debug, Clone)]
pub struct Node {
    pos: Pos,
    kind: Kind,
}

/// A loaded file: path, text, format and (when it parsed) its position tree.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as given (used in messages).
    pub path: PathBuf,
    /// Full text.
    pub text: String,
    /// Format.
    pub format: Format,
    tree: Option<Node>,
    lines: LineIndex,
    /// Problems of the file's structure found while building the tree.
    findings: Vec<Finding>,
}

/// A structural problem found before serde reads the file (serde must not
/// read it: it would overflow, take minutes, or miss the problem).
#[derive(Debug, Clone)]
enum Finding {
    /// Nested deeper than [`limits::MAX_DEPTH`].
    TooDeep(Pos),
    /// A YAML mapping key given twice.
    DuplicateKey {
        at: Pos,
        first: Pos,
        key: String,
        parent: Vec<Seg>,
    },
    /// A YAML alias used as a mapping key (`*k: value`): its name is not
    /// written where it stands, so a duplicate of it would go unseen and
    /// replace a value silently.
    AliasKey(Pos),
}

impl SourceFile {
    /// Wraps a file's text and builds its position tree (best effort: a file
    /// that does not parse has no tree, and serde reports its syntax error).
    ///
    /// The nesting limit is checked first ([`limits`]), so no recursive
    /// parser sees a file nested too deeply; such a file has no tree and
    /// [`SourceFile::structural_errors`] reports it.
    pub fn new(path: PathBuf, text: String, format: Format) -> Self {
        let lines = LineIndex::new(&text);
        let mut findings = Vec::new();
        let tree = match format {
            Format::Toml => match limits::toml_depth(&text) {
                Some(deep) => {
                    findings.push(Finding::TooDeep(lines.pos(&text, deep.offset, 1)));
                    None
                }
                None => toml_tree(&text, &lines),
            },
            Format::Yaml => yaml_tree(&text, &lines, &mut findings),
        };
        Self {
            path,
            text,
            format,
            tree,
            lines,
            findings,
        }
    }

    /// Errors in the file's structure that stop it from being read further:
    /// nesting deeper than [`limits::MAX_DEPTH`], duplicate YAML keys (TOML
    /// parsers report those themselves). Empty for a sound file.
    pub fn structural_errors(&self) -> Vec<Diagnostic> {
        // At most a file's cap of them is made (each shows its line), the
        // rest counted in one more.
        let most = limits::MAX_ERRORS_PER_FILE;
        let more = self.findings.len().saturating_sub(most);
        let mut out: Vec<Diagnostic> = self
            .findings
            .iter()
            .take(most)
            .map(|f| match f {
                Finding::TooDeep(pos) => Diagnostic::error(
                    self,
                    *pos,
                    format!("nested more than {} levels deep", limits::MAX_DEPTH),
                )
                .hint(limits::DEPTH_HINT),
                Finding::DuplicateKey {
                    at,
                    first,
                    key,
                    parent,
                } => {
                    let place = if parent.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("in `{}`", path_to_string(parent))
                    };
                    Diagnostic::error(self, *at, format!("duplicate key `{key}` {place}")).hint(
                        format!(
                            "`{key}` is already set at line {}, column {}; a key appears once in a mapping: remove one of them",
                            first.line, first.col
                        ),
                    )
                }
                Finding::AliasKey(at) => Diagnostic::error(
                    self,
                    *at,
                    "an alias used as a mapping key".to_string(),
                )
                .hint("write the key itself: a key named through an alias could repeat another and silently replace its value"),
            })
            .collect();
        if more > 0 {
            out.push(
                Diagnostic::file_error(
                    &self.path,
                    format!("and {more} more error(s) of the file's structure, not shown"),
                )
                .hint("the first ones are shown; fix them and validate again"),
            );
        }
        out
    }

    /// Position of the value at `path`, or of the deepest ancestor that exists.
    pub fn locate(&self, path: &[Seg]) -> Pos {
        self.find(path, false)
    }

    /// Position of the *key* at the end of `path` (for "unknown key" errors).
    pub fn locate_key(&self, path: &[Seg]) -> Pos {
        self.find(path, true)
    }

    fn find(&self, path: &[Seg], want_key: bool) -> Pos {
        let Some(mut node) = self.tree.as_ref() else {
            return Pos {
                line: 1,
                col: 1,
                len: 1,
            };
        };
        let mut best = node.pos;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let next = match (&node.kind, seg) {
                (Kind::Map(entries), Seg::Key(k)) => entries
                    .iter()
                    .find(|(name, _, _)| name == k)
                    .map(|(_, kp, n)| {
                        if last && want_key {
                            best = *kp;
                        }
                        n
                    }),
                (Kind::Seq(items), Seg::Index(i)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    if !(last && want_key) {
                        best = n.pos;
                    }
                }
                None => break,
            }
        }
        best
    }

    /// Converts a byte offset into a position.
    pub fn pos_of_offset(&self, offset: usize, len_bytes: usize) -> Pos {
        self.lines.pos(&self.text, offset, len_bytes)
    }

    /// The text of a line (1-based), without its newline (as `str::lines`
    /// gives it).
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.lines.line_text(&self.text, line)
    }
}

/// Where lines start, and how many characters precede every
/// [`LineIndex::BLOCK`]th byte: turns byte offsets into line and column in
/// logarithmic time. Without it, each of the many positions of a big file
/// would be found by scanning the text from its start (quadratic).
#[derive(Debug, Clone, Default)]
struct LineIndex {
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
    /// Characters before byte `k * BLOCK`.
    chars_before: Vec<usize>,
}

impl LineIndex {
    const BLOCK: usize = 1024;

    fn new(text: &str) -> Self {
        let b = text.as_bytes();
        let mut starts = vec![0];
        starts.extend(
            b.iter()
                .enumerate()
                .filter(|(_, c)| **c == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut chars_before = Vec::with_capacity(b.len() / Self::BLOCK + 1);
        let mut n = 0;
        for block in b.chunks(Self::BLOCK) {
            chars_before.push(n);
            n += count_chars(block);
        }
        chars_before.push(n);
        Self {
            starts,
            chars_before,
        }
    }

    /// Characters before byte `offset` (a char boundary).
    fn chars_to(&self, text: &str, offset: usize) -> usize {
        let k = offset / Self::BLOCK;
        self.chars_before[k] + count_chars(&text.as_bytes()[k * Self::BLOCK..offset])
    }

    fn pos(&self, text: &str, offset: usize, len_bytes: usize) -> Pos {
        let offset = offset.min(text.len());
        let offset = (0..=offset)
            .rev()
            .find(|o| text.is_char_boundary(*o))
            .unwrap_or(0);
        // Lines starting at or before `offset`.
        let line = self.starts.partition_point(|s| *s <= offset);
        let line_start = self.starts[line - 1];
        let col = if offset - line_start <= Self::BLOCK {
            count_chars(&text.as_bytes()[line_start..offset]) + 1
        } else {
            self.chars_to(text, offset) - self.chars_to(text, line_start) + 1
        };
        let end = (offset + len_bytes).min(text.len());
        let end = (offset..=end)
            .rev()
            .find(|o| text.is_char_boundary(*o))
            .unwrap_or(offset);
        let span = &text[offset..end];
        let len = span.split('\n').next().unwrap_or("").chars().count().max(1);
        Pos { line, col, len }
    }

    fn line_text<'t>(&self, text: &'t str, line: usize) -> Option<&'t str> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        if start >= text.len() {
            return None;
        }
        Some(match self.starts.get(line) {
            Some(next) => {
                let l = &text[start..next - 1];
                l.strip_suffix('\r').unwrap_or(l)
            }
            None => &text[start..],
        })
    }
}

/// Characters in UTF-8 bytes (those that are not continuation bytes).
fn count_chars(b: &[u8]) -> usize {
    b.iter().filter(|c| (**c as i8) >= -0x40).count()
}

#[cfg(test)]
fn offset_to_pos(text: &str, offset: usize, len_bytes: usize) -> Pos {
    LineIndex::new(text).pos(text, offset, len_bytes)
}

/// The position tree of a TOML file. Recursive, but only ever run on text
/// that passed [`limits::toml_depth`] (and `toml` itself stops at 80 levels),
/// so the recursion is at most [`limits::MAX_DEPTH`] deep.
fn toml_tree(text: &str, lines: &LineIndex) -> Option<Node> {
    use toml::de::{DeTable, DeValue};
    fn conv(text: &str, lines: &LineIndex, v: &toml::Spanned<DeValue<'_>>) -> Node {
        let span = v.span();
        let pos = lines.pos(text, span.start, span.end - span.start);
        let kind = match v.get_ref() {
            DeValue::Table(t) => Kind::Map(
                t.iter()
                    .map(|(k, v)| {
                        let ks = k.span();
                        (
                            k.get_ref().to_string(),
                            lines.pos(text, ks.start, ks.end - ks.start),
                            conv(text, lines, v),
                        )
                    })
                    .collect(),
            ),
            DeValue::Array(a) => Kind::Seq(a.iter().map(|v| conv(text, lines, v)).collect()),
            _ => Kind::Leaf,
        };
        Node { pos, kind }
    }
    let table = DeTable::parse(text).ok()?;
    let span = table.span();
    let root = toml::Spanned::new(span, DeValue::Table(table.into_inner()));
    Some(conv(text, lines, &root))
}

/// A collection being built by [`yaml_tree`].
enum Open {
    Seq(Pos, Vec<Node>),
    Map {
        pos: Pos,
        entries: Vec<(String, Pos, Node)>,
        /// The key read, waiting for its value.
        key: Option<(Option<String>, Pos)>,
        /// Scalar keys seen, and where.
        seen: HashMap<String, Pos>,
    },
}

/// The position tree of a YAML file, from saphyr's event stream, with an
/// explicit stack (no recursion: block nesting has no limit in saphyr). Stops
/// at the first level deeper than [`limits::MAX_DEPTH`]; records duplicate
/// keys. Only the first document has a tree; the others are checked too (the
/// deserializer reads them to report that there is more than one).
fn yaml_tree(text: &str, lines: &LineIndex, findings: &mut Vec<Finding>) -> Option<Node> {
    use saphyr_parser::{Event, Parser};
    let mut tree = YamlTree::default();
    for item in Parser::new_from_str(text) {
        let (ev, span) = match item {
            Ok(x) => x,
            Err(e) => {
                findings.extend(yaml_syntax_finding(text, lines, &e));
                return None;
            }
        };
        let leaf = || Node {
            pos: yaml_pos(&span),
            kind: Kind::Leaf,
        };
        let (node, scalar) = match ev {
            Event::DocumentStart(_) => {
                tree.documents += 1;
                continue;
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let seq = matches!(ev, Event::SequenceStart(..));
                if let Err(deep) = tree.open(seq, yaml_pos(&span)) {
                    findings.push(deep);
                    return None;
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match tree.close() {
                Some(node) => (node, None),
                None => continue,
            },
            Event::Scalar(s, ..) => (leaf(), Some(s.to_string())),
            Event::Alias(_) => {
                if tree.expects_key() {
                    findings.push(Finding::AliasKey(yaml_pos(&span)));
                }
                (leaf(), None)
            }
            _ => continue,
        };
        findings.extend(tree.attach(node, scalar));
    }
    tree.root
}

/// The position of a YAML span's start (columns from 1, in characters),
/// underlining the span.
pub(crate) fn yaml_pos(span: &saphyr_parser::Span) -> Pos {
    let len = span.end.index().saturating_sub(span.start.index());
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
        len: len.max(1),
    }
}

/// What a YAML file that saphyr rejects tells: too deep, or nothing (the
/// deserializer, on the same parser, reports the syntax error). A file whose
/// scanner gives up on deep flow nesting (it looks ahead for keys) is told
/// too deep at the level that crosses the limit, not at the scanner's stop.
fn yaml_syntax_finding(
    text: &str,
    lines: &LineIndex,
    e: &saphyr_parser::ScanError,
) -> Option<Finding> {
    if let Some(deep) = limits::yaml_flow_depth(text) {
        Some(Finding::TooDeep(lines.pos(text, deep.offset, 1)))
    } else if e.info() == "recursion limit exceeded" {
        let m = e.marker();
        Some(Finding::TooDeep(Pos {
            line: m.line(),
            col: m.col() + 1,
            len: 1,
        }))
    } else {
        None
    }
}

/// The state of [`yaml_tree`]: the collections open, the first document's
/// root once it is complete, and how many documents started.
#[derive(Default)]
struct YamlTree {
    stack: Vec<Open>,
    root: Option<Node>,
    documents: usize,
}

impl YamlTree {
    /// Opens a sequence or mapping at `pos`; too deep is a finding.
    fn open(&mut self, seq: bool, pos: Pos) -> Result<(), Finding> {
        if self.stack.len() >= limits::MAX_DEPTH {
            return Err(Finding::TooDeep(Pos { len: 1, ..pos }));
        }
        self.stack.push(if seq {
            Open::Seq(pos, Vec::new())
        } else {
            Open::Map {
                pos,
                entries: Vec::new(),
                key: None,
                seen: HashMap::new(),
            }
        });
        Ok(())
    }

    /// Closes the innermost collection into its node.
    fn close(&mut self) -> Option<Node> {
        Some(match self.stack.pop()? {
            Open::Seq(pos, items) => Node {
                pos,
                kind: Kind::Seq(items),
            },
            Open::Map { pos, entries, .. } => Node {
                pos,
                kind: Kind::Map(entries),
            },
        })
    }

    /// Attaches a finished node to its parent: an item, a mapping's key
    /// (`scalar` is its text) or the value of the key read. A key given twice
    /// is a finding.
    fn attach(&mut self, node: Node, scalar: Option<String>) -> Option<Finding> {
        let Some(top) = self.stack.last_mut() else {
            if self.documents <= 1 && self.root.is_none() {
                self.root = Some(node);
            }
            return None;
        };
        let (key, at, first) = match top {
            Open::Seq(_, items) => {
                items.push(node);
                return None;
            }
            Open::Map {
                entries, key, seen, ..
            } => match key.take() {
                None => {
                    *key = Some((scalar, node.pos));
                    return None;
                }
                Some((name, kpos)) => {
                    let duplicate = name.as_ref().and_then(|n| match seen.entry(n.clone()) {
                        Entry::Occupied(first) => Some((n.clone(), kpos, *first.get())),
                        Entry::Vacant(v) => {
                            v.insert(kpos);
                            None
                        }
                    });
                    entries.push((name.unwrap_or_default(), kpos, node));
                    duplicate?
                }
            },
        };
        Some(Finding::DuplicateKey {
            at,
            first,
            key,
            parent: self.parent_path(),
        })
    }

    /// Whether the next node is a mapping's key.
    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { key: None, .. }))
    }

    /// The path of the innermost open collection (the mapping holding a key
    /// just read).
    fn parent_path(&self) -> Vec<Seg> {
        self.stack[..self.stack.len() - 1]
            .iter()
            .map(|o| match o {
                Open::Seq(_, items) => Seg::Index(items.len()),
                Open::Map { key, .. } => Seg::Key(
                    key.as_ref()
                        .and_then(|(k, _)| k.clone())
                        .unwrap_or_default(),
                ),
            })
            .collect()
    }
}

/// Severity of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The plan is invalid.
    Error,
    /// The plan is valid but probably not what was meant.
    Warning,
}

/// One problem found in a file, with its place and a hint at the fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// File.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// Characters to underline.
    #[serde(skip)]
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The source line, for rendering: the part of it around the column
    /// ([`Diagnostic::with_source`]).
    #[serde(skip)]
    pub source_line: Option<String>,
    /// The column within `source_line` the carets start at (from 1).
    #[serde(skip)]
    pub snippet_column: usize,
}

/// `message` cut to [`MESSAGE_CHARS`](super::limits::MESSAGE_CHARS)
/// characters, `…` where cut: a message quotes the value it is about, and a
/// value can be 17 KB long.
fn clipped(message: String) -> String {
    let most = super::limits::MESSAGE_CHARS;
    match message.char_indices().nth(most) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message,
    }
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        let d = Self {
            severity: Severity::Error,
            file: file.path.clone(),
            line: pos.line,
            column: pos.col,
            len: pos.len,
            message: clipped(message.into()),
            hint: None,
            source_line: None,
            snippet_column: 0,
        };
        match file.line_text(pos.line) {
            Some(text) => d.with_source(text),
            None => d,
        }
    }

    /// Shows `text`, its line, under it: the part of at most
    /// [`SNIPPET_CHARS`](super::limits::SNIPPET_CHARS) characters around
    /// its column (`…` where it is cut), its carets no longer than that. A
    /// generated 280 KB line is not copied, nor printed, once per mistake.
    pub fn with_source(mut self, text: &str) -> Self {
        let most = super::limits::SNIPPET_CHARS;
        let at = self.column.saturating_sub(1);
        let count = text.chars().count();
        let start = if count <= most {
            0
        } else {
            at.saturating_sub(most / 3).min(count - most)
        };
        let end = (start + most).min(count);
        let mut shown: String = if start > 0 {
            "…".into()
        } else {
            String::new()
        };
        shown.extend(text.chars().skip(start).take(end - start));
        if end < count {
            shown.push('…');
        }
        self.snippet_column = at.saturating_sub(start) + 1 + usize::from(start > 0);
        self.len = self.len.min((end.saturating_sub(at)).max(1));
        self.source_line = Some(shown);
        self
    }

    /// An error about a file as a whole (unreadable, unknown extension).
    pub fn file_error(path: &Path, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            len: 0,
            message: clipped(message.into()),
            hint: None,
            source_line: None,
            snippet_column: 0,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Makes it a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Renders the diagnostic like a compiler does (`color` adds ANSI
    /// colours). What came from the file (the message quotes it, the
    /// source line is it, and the file's name) is cleaned for a terminal
    /// (`crate::escape::terminal`), so that the colours are the only
    /// escape sequences in the text.
    pub fn render(&self, color: bool) -> String {
        let clean = |s: &str| crate::escape::terminal(s).into_owned();
        let (red, yellow, blue, bold, reset) = if color {
            (
                "\x1b[31;1m",
                "\x1b[33;1m",
                "\x1b[34;1m",
                "\x1b[1m",
                "\x1b[0m",
            )
        } else {
            ("", "", "", "", "")
        };
        let (label, c) = match self.severity {
            Severity::Error => ("error", red),
            Severity::Warning => ("warning", yellow),
        };
        let mut out = format!("{c}{label}{reset}{bold}: {}{reset}\n", clean(&self.message));
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(
            out,
            "{pad}{blue}-->{reset} {}:{}:{}",
            clean(&self.file.display().to_string()),
            self.line,
            self.column
        );
        if let Some(src) = &self.source_line {
            let _ = writeln!(out, "{pad} {blue}|{reset}");
            let _ = writeln!(
                out,
                "{blue}{}{reset} {blue}|{reset} {}",
                self.line,
                clean(src)
            );
            let under = " ".repeat(self.snippet_column.saturating_sub(1));
            let carets = "^".repeat(self.len.max(1));
            let _ = writeln!(out, "{pad} {blue}|{reset} {under}{c}{carets}{reset}");
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "{pad} {blue}={reset} {bold}hint{reset}: {}", clean(h));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::useless_vec)] // `path!` builds the Vec that `locate` borrows.
mod tests {
    use super::*;

    #[test]
    fn toml_paths_locate_values_and_keys() {
        let text = "[plan]\nname = \"x\"\n\n[[dns]]\nid = \"a\"\n\n[[dns]]\nid = \"b\"\nfollows = \"db\"\n";
        let f = SourceFile::new("p.toml".into(), text.into(), Format::Toml);
        let p = f.locate(&path!["dns", 1, "follows"]);
        assert_eq!((p.line, p.col, p.len), (9, 11, 4));
        let k = f.locate_key(&path!["dns", 1, "follows"]);
        assert_eq!((k.line, k.col), (9, 1));
        // A missing leaf falls back to its deepest existing ancestor.
        let p = f.locate(&path!["dns", 1, "nothing"]);
        assert_eq!(p.line, 7);
    }

    #[test]
    fn yaml_paths_locate_values_and_keys() {
        let text = "plan:\n  name: x\ndns:\n  - id: a\n  - id: b\n    follows: db\n";
        let f = SourceFile::new("p.yaml".into(), text.into(), Format::Yaml);
        let p = f.locate(&path!["dns", 1, "follows"]);
        assert_eq!((p.line, p.col), (6, 14));
        let k = f.locate_key(&path!["dns", 1, "follows"]);
        assert_eq!((k.line, k.col), (6, 5));
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let p = offset_to_pos("é = 1\nab", 8, 1);
        assert_eq!((p.line, p.col), (2, 2));
    }

    #[test]
    fn rendering_shows_place_source_and_hint() {
        let f = SourceFile::new("p.toml".into(), "a = 1\nb = 2\n".into(), Format::Toml);
        let d = Diagnostic::error(&f, f.locate(&path!["b"]), "bad b").hint("fix b");
        let r = d.render(false);
        assert!(r.contains("--> p.toml:2:5"), "{r}");
        assert!(r.contains("2 | b = 2"), "{r}");
        assert!(r.contains("^"), "{r}");
        assert!(r.contains("hint: fix b"), "{r}");
    }
}
