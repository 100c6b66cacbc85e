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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
}

impl SourceFile {
    /// Wraps a file's text and builds its position tree (best effort: a file
    /// that does not parse has no tree, and serde reports its syntax error).
    pub fn new(path: PathBuf, text: String, format: Format) -> Self {
        let tree = match format {
            Format::Toml => toml_tree(&text),
            Format::Yaml => yaml_tree(&text),
        };
        Self {
            path,
            text,
            format,
            tree,
        }
    }

    /// Wraps a file's text without parsing it (for a diagnostic about a file
    /// no parser should see).
    pub fn unparsed(path: PathBuf, text: String, format: Format) -> Self {
        Self {
            path,
            text,
            format,
            tree: None,
        }
    }

    /// Keys that a mapping holds twice: (key, first position, second
    /// position). YAML parsers keep the last value silently; a plan that
    /// says two things of one key is an error.
    pub fn duplicate_keys(&self) -> Vec<(String, Pos, Pos)> {
        let mut out = Vec::new();
        let mut stack: Vec<&Node> = self.tree.iter().collect();
        while let Some(n) = stack.pop() {
            match &n.kind {
                Kind::Map(entries) => {
                    let mut seen: std::collections::HashMap<&str, Pos> = Default::default();
                    for (k, kpos, v) in entries {
                        if let Some(first) = seen.get(k.as_str()) {
                            out.push((k.clone(), *first, *kpos));
                        } else {
                            seen.insert(k, *kpos);
                        }
                        stack.push(v);
                    }
                }
                Kind::Seq(items) => stack.extend(items),
                Kind::Leaf => {}
            }
        }
        out.sort_by_key(|(_, _, p)| (p.line, p.col));
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
        offset_to_pos(&self.text, offset, len_bytes)
    }

    /// The text of a line (1-based), without its newline.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }
}

fn offset_to_pos(text: &str, offset: usize, len_bytes: usize) -> Pos {
    let offset = offset.min(text.len());
    let offset = (0..=offset)
        .rev()
        .find(|o| text.is_char_boundary(*o))
        .unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    let end = (offset + len_bytes).min(text.len());
    let end = (offset..=end)
        .rev()
        .find(|o| text.is_char_boundary(*o))
        .unwrap_or(offset);
    let span = &text[offset..end];
    let len = span.split('\n').next().unwrap_or("").chars().count().max(1);
    Pos { line, col, len }
}

fn toml_tree(text: &str) -> Option<Node> {
    use toml::de::{DeTable, DeValue};
    fn conv(text: &str, v: &toml::Spanned<DeValue<'_>>) -> Node {
        let span = v.span();
        let pos = offset_to_pos(text, span.start, span.end - span.start);
        let kind = match v.get_ref() {
            DeValue::Table(t) => Kind::Map(
                t.iter()
                    .map(|(k, v)| {
                        let ks = k.span();
                        (
                            k.get_ref().to_string(),
                            offset_to_pos(text, ks.start, ks.end - ks.start),
                            conv(text, v),
                        )
                    })
                    .collect(),
            ),
            DeValue::Array(a) => Kind::Seq(a.iter().map(|v| conv(text, v)).collect()),
            _ => Kind::Leaf,
        };
        Node { pos, kind }
    }
    let table = DeTable::parse(text).ok()?;
    let span = table.span();
    let root = toml::Spanned::new(span, DeValue::Table(table.into_inner()));
    Some(conv(text, &root))
}

fn yaml_tree(text: &str) -> Option<Node> {
    use saphyr_parser::{Event, Parser, Span};
    let events: Vec<(Event<'_>, Span)> = Parser::new_from_str(text)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    fn pos(span: &Span) -> Pos {
        let len = span.end.index().saturating_sub(span.start.index());
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
            len: len.max(1),
        }
    }
    fn node(events: &[(Event<'_>, Span)], i: &mut usize) -> Option<Node> {
        let (ev, span) = events.get(*i)?;
        *i += 1;
        match ev {
            Event::Scalar(..) | Event::Alias(_) => Some(Node {
                pos: pos(span),
                kind: Kind::Leaf,
            }),
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                while !matches!(events.get(*i)?.0, Event::SequenceEnd) {
                    items.push(node(events, i)?);
                }
                *i += 1;
                Some(Node {
                    pos: pos(span),
                    kind: Kind::Seq(items),
                })
            }
            Event::MappingStart(..) => {
                let mut entries = Vec::new();
                while !matches!(events.get(*i)?.0, Event::MappingEnd) {
                    let (kev, kspan) = events.get(*i)?;
                    let key = match kev {
                        Event::Scalar(s, ..) => s.to_string(),
                        _ => String::new(),
                    };
                    let kpos = pos(kspan);
                    let value = node(events, i).and_then(|_| node(events, i))?;
                    entries.push((key, kpos, value));
                }
                *i += 1;
                Some(Node {
                    pos: pos(span),
                    kind: Kind::Map(entries),
                })
            }
            _ => node(events, i),
        }
    }
    let mut i = 0;
    // Skip StreamStart / DocumentStart; take the first document's root.
    while let Some((ev, _)) = events.get(i) {
        match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => i += 1,
            _ => break,
        }
    }
    node(&events, &mut i)
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
    /// The source line, for rendering.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(file: &SourceFile, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.path.clone(),
            line: pos.line,
            column: pos.col,
            len: pos.len,
            message: message.into(),
            hint: None,
            source_line: file.line_text(pos.line).map(str::to_string),
        }
    }

    /// An error about a file as a whole (unreadable, unknown extension).
    pub fn file_error(path: &Path, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            len: 0,
            message: message.into(),
            hint: None,
            source_line: None,
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

    /// Renders the diagnostic like a compiler does (`color` adds ANSI colours).
    pub fn render(&self, color: bool) -> String {
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
        let mut out = format!("{c}{label}{reset}{bold}: {}{reset}\n", self.message);
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(
            out,
            "{pad}{blue}-->{reset} {}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        );
        if let Some(src) = &self.source_line {
            let _ = writeln!(out, "{pad} {blue}|{reset}");
            let _ = writeln!(out, "{blue}{}{reset} {blue}|{reset} {src}", self.line);
            let under = " ".repeat(self.column.saturating_sub(1));
            let carets = "^".repeat(self.len.max(1));
            let _ = writeln!(out, "{pad} {blue}|{reset} {under}{c}{carets}{reset}");
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "{pad} {blue}={reset} {bold}hint{reset}: {h}");
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

/// Deepest nesting of `[` and `{` a plan may have. Real plans nest three or
/// four levels; the parsers recurse once per level, so a hostile file of
/// 100,000 levels would overflow the stack or (YAML) take minutes. Checked
/// by a linear scan before any parser runs.
pub const MAX_NESTING: usize = 64;

/// Largest plan file read, in bytes (a plan of 10,000 resources is about
/// 2 MiB).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Where `text` nests `[`/`{` deeper than [`MAX_NESTING`], if it does:
/// brackets inside quoted strings and comments do not count. A linear scan,
/// so hostile input costs what its size costs, never a stack.
pub fn too_deep(text: &str, format: Format) -> Option<Pos> {
    if format == Format::Yaml
        && let Some(pos) = yaml_too_deep(text)
    {
        return Some(pos);
    }
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                // A comment runs to the end of the line.
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                // TOML multi-line strings open with three quotes.
                let triple = format == Format::Toml && bytes[i..].starts_with(&[q, q, q]);
                i += if triple { 3 } else { 1 };
                while i < bytes.len() {
                    if triple && bytes[i..].starts_with(&[q, q, q]) {
                        i += 3;
                        break;
                    }
                    if !triple && bytes[i] == q {
                        // YAML doubles a single quote to escape it.
                        if q == b'\'' && format == Format::Yaml && bytes.get(i + 1) == Some(&b'\'')
                        {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    } else if !triple && bytes[i] == b'\n' && format == Format::Toml {
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(offset_to_pos(text, i, 1));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// YAML nests by indentation and by `- - -` on one line too: count the
/// depth on the parser's event stream (a state machine, not a recursion),
/// stopping at the first collection past the limit. A syntax error ends the
/// scan; the deserializer reports it.
fn yaml_too_deep(text: &str) -> Option<Pos> {
    use saphyr_parser::{Event, Parser};
    let mut depth = 0usize;
    for item in Parser::new_from_str(text) {
        let Ok((ev, span)) = item else { return None };
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(Pos {
                        line: span.start.line(),
                        col: span.start.col() + 1,
                        len: 1,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let text = format!(
            "a = \"{}\" # {}\nb = [1]\n",
            "[".repeat(500),
            "{".repeat(500)
        );
        assert_eq!(too_deep(&text, Format::Toml), None);
        let yaml = format!("a: '{}'''\nb: [1]\n", "[".repeat(500));
        assert_eq!(too_deep(&yaml, Format::Yaml), None);
    }

    #[test]
    fn the_first_bracket_past_the_limit_is_named() {
        let text = format!(
            "a = {}{}",
            "[".repeat(MAX_NESTING + 5),
            "]".repeat(MAX_NESTING + 5)
        );
        let pos = too_deep(&text, Format::Toml).unwrap();
        assert_eq!((pos.line, pos.col), (1, 5 + MAX_NESTING));
        // In YAML the document's own mapping is the first level.
        let yaml = format!(
            "a: {}{}",
            "[".repeat(MAX_NESTING + 5),
            "]".repeat(MAX_NESTING + 5)
        );
        let pos = too_deep(&yaml, Format::Yaml).unwrap();
        assert_eq!((pos.line, pos.col), (1, 3 + MAX_NESTING));
    }
}
