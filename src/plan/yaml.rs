//! Plan and tiers YAML read through serde, on `saphyr-parser`'s events.
//!
//! Why our own deserializer: `serde_yaml_ng` reads through `unsafe-libyaml`,
//! a C-to-Rust translation of libyaml that is no longer maintained
//! (RUSTSEC-2024-0449). The position tree ([`super::source`]) already reads
//! every YAML file with `saphyr-parser`, a maintained pure-Rust parser, so
//! the values are read from the same events: one parser decides what a file
//! says, where each value is, and what is wrong with it (two parsers used to
//! disagree on broken files, [`super::limits`]). Plans need little of YAML
//! beyond the core schema: mappings, sequences, plain and quoted scalars,
//! and anchors.
//!
//! Hostile input is bounded here as in the position tree: nesting deeper than
//! [`limits::MAX_DEPTH`] (counting what aliases add), an alias inside the
//! node it names (a structure that never ends), and aliases that replay more
//! than [`limits::MAX_ALIAS_EVENTS`] events in all (a "billion laughs") are
//! errors at the alias, never a stack overflow, a hang or an out-of-memory
//! kill. A value nobody reads (an unknown key's) is skipped without
//! following its aliases.
//!
//! Scalars resolve by the YAML 1.2 core schema where the target type asks
//! for "anything" (`null`, `true`, `12`, `0x1f`, `1.5`, else a string); a
//! field that takes a string takes any scalar's text as written (`version:
//! 1.10` is `"1.10"`). Errors carry the position of the innermost value
//! they concern and its path (`dns[0].ttl: invalid type: ...`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use super::limits;
use super::source::{Pos, Seg, path_to_string, yaml_pos as pos_of};

/// A YAML file that does not read as the type wanted: what is wrong and,
/// when known, where and at which path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    pos: Option<Pos>,
    path: Vec<Seg>,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            pos: None,
            path: Vec::new(),
        }
    }

    /// Places the error at `pos` and `path`, unless an inner value placed
    /// it already.
    fn at(mut self, pos: Pos, path: &[Seg]) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            self.path = path.to_vec();
        }
        self
    }

    /// Where it is (line and column from 1), when known.
    pub fn pos(&self) -> Option<Pos> {
        self.pos
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", path_to_string(&self.path), self.message)
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }
}

/// A syntax error of the parser, in words and at the place to fix: the
/// parser stops where it sees the problem, which for a missing `:` is the
/// line after the key, and for an unclosed `{` or `[` is wherever the
/// collection should have ended. `open` is the start of the innermost
/// collection still open, if any, and whether it is a mapping.
fn syntax(e: &ScanError, text: &str, open: Option<(&Span, bool)>) -> Error {
    let m = e.marker();
    let stop = Pos {
        line: m.line().max(1),
        col: m.col() + 1,
        len: 1,
    };
    let info = e.info();
    let stopped = format!(
        "the parser stopped at line {} column {}",
        stop.line, stop.col
    );
    let (message, pos) = if info.contains("simple key") {
        (
            format!("a key without `:`, or a line that does not belong here ({stopped}: {info})"),
            previous_line(text, stop.line).unwrap_or(stop),
        )
    } else if let (true, Some((open, map))) = (info.contains("flow "), open) {
        let bracket = if map { "{" } else { "[" };
        (
            format!("this `{bracket}` is not closed ({stopped}: {info})"),
            Pos {
                len: 1,
                ..pos_of(open)
            },
        )
    } else if info.contains("quoted scalar") {
        (format!("{info}: is a closing quote missing?"), stop)
    } else {
        (info.to_string(), stop)
    };
    Error::new(message).at(pos, &[])
}

/// The start of the last line with content before line `line` (comments
/// and blank lines skipped).
fn previous_line(text: &str, line: usize) -> Option<Pos> {
    text.lines()
        .enumerate()
        .take(line.saturating_sub(1))
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#')
        })
        .last()
        .map(|(i, l)| Pos {
            line: i + 1,
            col: l.chars().take_while(|c| c.is_whitespace()).count() + 1,
            len: l.trim().chars().count().max(1),
        })
}

/// The first document of a YAML text as events, with the end of each
/// collection and the node of each anchor.
struct Doc<'a> {
    events: Vec<(Event<'a>, Span)>,
    /// For a collection's start, the index of its end; for any other
    /// event, its own index.
    ends: Vec<usize>,
    /// The event each anchor id names.
    anchors: HashMap<usize, usize>,
}

impl<'a> Doc<'a> {
    fn read(text: &'a str) -> Result<Self, Error> {
        let mut events: Vec<(Event<'a>, Span)> = Vec::new();
        let mut ends = Vec::new();
        let mut anchors = HashMap::new();
        let mut documents = 0;
        // The collections open: where each ends, and where a syntax
        // error's `{` is. Deeper than the limit stops the reading.
        let mut open: Vec<usize> = Vec::new();
        for item in Parser::new_from_str(text) {
            let (ev, span) = item.map_err(|e| {
                let innermost = open.last().map(|&i| {
                    let (ev, span) = &events[i];
                    (span, matches!(ev, Event::MappingStart(..)))
                });
                syntax(&e, text, innermost)
            })?;
            let i = events.len();
            match &ev {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(Error::new(
                            "a second YAML document (after `---`): a plan or tiers file holds one",
                        )
                        .at(pos_of(&span), &[]));
                    }
                    continue;
                }
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {
                    continue;
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if *anchor > 0 {
                        anchors.insert(*anchor, i);
                    }
                    open.push(i);
                    if open.len() > limits::MAX_DEPTH {
                        return Err(too_deep(pos_of(&span)));
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some(start) = open.pop() {
                        ends[start] = i;
                    }
                }
                Event::Scalar(_, _, anchor, _) if *anchor > 0 => {
                    anchors.insert(*anchor, i);
                }
                _ => {}
            }
            events.push((ev, span));
            ends.push(i);
        }
        Ok(Self {
            events,
            ends,
            anchors,
        })
    }
}

fn too_deep(pos: Pos) -> Error {
    Error::new(format!(
        "nested more than {} levels deep",
        limits::MAX_DEPTH
    ))
    .at(pos, &[])
}

/// Deserializes the YAML `text` into a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    with_deserializer(text, |de| T::deserialize(de))
}

/// Reads `text` and hands its deserializer to `f` (which may wrap it, as
/// `serde_ignored` does to learn the unknown keys).
pub fn with_deserializer<T>(
    text: &str,
    f: impl FnOnce(&mut Deserializer<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut de = Deserializer {
        doc: Doc::read(text)?,
        at: 0,
        path: Vec::new(),
        depth: 0,
        replayed: 0,
    };
    f(&mut de)
}

/// The deserializer over one document's events.
pub struct Deserializer<'a> {
    doc: Doc<'a>,
    /// The next event to read.
    at: usize,
    /// The path of the value being read, for errors.
    path: Vec<Seg>,
    /// Collections open, aliases' included.
    depth: usize,
    /// Events replayed through aliases so far.
    replayed: usize,
}

/// What the next event is, owned (so that the deserializer can move on).
enum Next<'a> {
    /// The document has no node (an empty file).
    Nothing,
    Scalar(Cow<'a, str>, ScalarStyle, Option<Cow<'a, Tag>>),
    SeqStart,
    MapStart,
    End,
    Alias(usize),
}

/// A scalar as the core schema reads it.
enum Resolved {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

impl<'a> Deserializer<'a> {
    fn next(&self) -> Next<'a> {
        match self.doc.events.get(self.at) {
            None => Next::Nothing,
            Some((ev, _)) => match ev {
                Event::Scalar(text, style, _, tag) => {
                    Next::Scalar(text.clone(), *style, tag.clone())
                }
                Event::SequenceStart(..) => Next::SeqStart,
                Event::MappingStart(..) => Next::MapStart,
                Event::Alias(id) => Next::Alias(*id),
                _ => Next::End,
            },
        }
    }

    /// Where the next event is ((1, 1) past the end).
    fn here(&self) -> Pos {
        self.doc
            .events
            .get(self.at)
            .map(|(_, span)| pos_of(span))
            .unwrap_or(Pos {
                line: 1,
                col: 1,
                len: 1,
            })
    }

    /// Reads one node with `f`: an alias is followed to its node (counted
    /// against the replay budget), and an error without a place is placed
    /// at this node.
    fn node<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        let here = self.here();
        let back = match self.next() {
            Next::Alias(id) => Some(self.follow(id).map_err(|e| e.at(here, &self.path))?),
            _ => None,
        };
        let out = f(self).map_err(|e| e.at(here, &self.path));
        if let Some(back) = back {
            self.at = back;
        }
        out
    }

    /// Moves to the node alias `id` names; returns where to come back to.
    fn follow(&mut self, id: usize) -> Result<usize, Error> {
        let Some(&start) = self.doc.anchors.get(&id) else {
            return Err(Error::new("an alias to an unknown anchor"));
        };
        let end = self.doc.ends[start];
        if start < self.at && self.at <= end {
            return Err(Error::new(
                "an alias inside the node its anchor names: the structure would never end",
            ));
        }
        self.replayed = self.replayed.saturating_add(end - start + 1);
        if self.replayed > limits::MAX_ALIAS_EVENTS {
            return Err(Error::new(format!(
                "aliases expand to more than {} YAML events (a \"billion laughs\"?): a plan needs a few anchors at most",
                limits::MAX_ALIAS_EVENTS
            )));
        }
        let back = self.at + 1;
        self.at = start;
        Ok(back)
    }

    /// Skips the node at hand without following its aliases.
    fn skip(&mut self) {
        self.at = self.doc.ends.get(self.at).copied().unwrap_or(self.at) + 1;
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > limits::MAX_DEPTH {
            return Err(too_deep(self.here()));
        }
        Ok(())
    }

    /// The value of a collection read by `visit`, which must read it to
    /// its end.
    fn collection<T>(
        &mut self,
        visit: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.at += 1;
        self.enter()?;
        let out = visit(self)?;
        self.depth -= 1;
        match self.next() {
            Next::End => {
                self.at += 1;
                Ok(out)
            }
            _ => Err(Error::new("more entries than expected")),
        }
    }

    fn any<'de, V: Visitor<'de>>(&mut self, v: V) -> Result<V::Value, Error> {
        match self.next() {
            Next::Nothing => v.visit_unit(),
            Next::Scalar(text, style, tag) => {
                let r = resolve(&text, style, tag.as_deref())?;
                self.at += 1;
                match r {
                    Resolved::Null => v.visit_unit(),
                    Resolved::Bool(b) => v.visit_bool(b),
                    Resolved::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                        (Ok(i), _) => v.visit_i64(i),
                        (_, Ok(u)) => v.visit_u64(u),
                        _ => v.visit_i128(i),
                    },
                    Resolved::Float(f) => v.visit_f64(f),
                    Resolved::Str => v.visit_str(&text),
                }
            }
            Next::SeqStart => self.collection(|de| v.visit_seq(Seq { de, index: 0 })),
            Next::MapStart => self.collection(|de| v.visit_map(Map { de, key: None })),
            Next::End | Next::Alias(_) => Err(Error::new("a value was expected here")),
        }
    }

    fn string<'de, V: Visitor<'de>>(&mut self, v: V) -> Result<V::Value, Error> {
        match self.next() {
            Next::Scalar(text, ..) => {
                self.at += 1;
                v.visit_str(&text)
            }
            _ => self.any(v),
        }
    }
}

/// Whether `tag` is the core schema's `name` (`!!name`).
fn core(tag: &Tag, name: &str) -> bool {
    (tag.is_yaml_core_schema() || tag.handle == "!!") && tag.suffix == name
}

/// A scalar read by the YAML 1.2 core schema; a quoted one is a string, and
/// a core tag (`!!str`, `!!int`, ...) says what it must be.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Resolved, Error> {
    if let Some(tag) = tag {
        let want = |r: Option<Resolved>, what: &str| {
            r.ok_or_else(|| Error::new(format!("`{text}` is not {what} (tag {tag})")))
        };
        return if core(tag, "str") {
            Ok(Resolved::Str)
        } else if core(tag, "null") {
            want(null(text).then_some(Resolved::Null), "null")
        } else if core(tag, "bool") {
            want(boolean(text).map(Resolved::Bool), "a boolean")
        } else if core(tag, "int") {
            want(int(text).map(Resolved::Int), "an integer")
        } else if core(tag, "float") {
            want(
                float(text)
                    .or_else(|| int(text).map(|i| i as f64))
                    .map(Resolved::Float),
                "a number",
            )
        } else {
            Err(Error::new(format!(
                "the tag {tag} is not one of YAML's core schema: a plan needs none"
            )))
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Resolved::Str);
    }
    Ok(if null(text) {
        Resolved::Null
    } else if let Some(b) = boolean(text) {
        Resolved::Bool(b)
    } else if let Some(i) = int(text) {
        Resolved::Int(i)
    } else if let Some(f) = float(text) {
        Resolved::Float(f)
    } else {
        Resolved::Str
    })
}

fn null(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

fn boolean(t: &str) -> Option<bool> {
    match t {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`.
fn int(t: &str) -> Option<i128> {
    if let Some(h) = t.strip_prefix("0x") {
        return i128::from_str_radix(h, 16).ok().filter(|_| !h.is_empty());
    }
    if let Some(o) = t.strip_prefix("0o") {
        return i128::from_str_radix(o, 8).ok().filter(|_| !o.is_empty());
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?.inf`, `.nan`.
fn float(t: &str) -> Option<f64> {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let negative = t.starts_with('-');
    match body {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        ".nan" | ".NaN" | ".NAN" if body.len() == t.len() => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok_mantissa = digits(whole)
        && digits(fraction)
        && (!whole.is_empty() || !fraction.is_empty())
        && (mantissa.contains('.') || exponent.is_some());
    let ok_exponent = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (ok_mantissa && ok_exponent)
        .then(|| t.parse().ok())
        .flatten()
}

/// A sequence's items.
struct Seq<'x, 'a> {
    de: &'x mut Deserializer<'a>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if matches!(self.de.next(), Next::End | Next::Nothing) {
            return Ok(None);
        }
        self.de.path.push(Seg::Index(self.index));
        let out = seed.deserialize(&mut *self.de);
        self.de.path.pop();
        self.index += 1;
        out.map(Some)
    }
}

/// A mapping's entries.
struct Map<'x, 'a> {
    de: &'x mut Deserializer<'a>,
    /// The key just read, for the value's path.
    key: Option<String>,
}

impl<'de> de::MapAccess<'de> for Map<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if matches!(self.de.next(), Next::End | Next::Nothing) {
            return Ok(None);
        }
        self.key = match self.de.next() {
            Next::Scalar(text, ..) => Some(text.into_owned()),
            _ => None,
        };
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.de
            .path
            .push(Seg::Key(self.key.take().unwrap_or_else(|| "?".into())));
        let out = seed.deserialize(&mut *self.de);
        self.de.path.pop();
        out
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.node(|de| de.any(v))
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.node(|de| de.string(v))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.node(|de| match de.next() {
            Next::Nothing => v.visit_none(),
            Next::Scalar(text, ScalarStyle::Plain, None) if null(&text) => {
                de.at += 1;
                v.visit_none()
            }
            _ => v.visit_some(de),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.node(|de| match de.next() {
            // An empty file reads as an empty mapping: the missing keys are
            // then named.
            Next::Nothing => v.visit_map(Map { de, key: None }),
            _ => de.any(v),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.node(|de| match de.next() {
            Next::Scalar(text, ..) => {
                de.at += 1;
                v.visit_enum(text.into_owned().into_deserializer())
            }
            Next::SeqStart => Err(de::Error::invalid_type(Unexpected::Seq, &v)),
            Next::MapStart => Err(de::Error::invalid_type(Unexpected::Map, &v)),
            _ => Err(de::Error::invalid_type(Unexpected::Unit, &v)),
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        // An unknown key's value: skipped, aliases not followed.
        if !matches!(self.next(), Next::Nothing | Next::End) {
            self.skip();
        }
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 bytes byte_buf
        unit unit_struct seq tuple tuple_struct
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        name: String,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        list: Vec<String>,
        #[serde(default)]
        maybe: Option<String>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Mode {
        PromoteReplica,
    }

    #[test]
    fn plain_quoted_and_anchored_values_read_as_serde_expects() {
        let t: T = from_str(
            "name: 1.10\ncount: 0x1f\nlist: &l [a, 'b', \"c\"]\nmaybe: ~\nmode: promote-replica\n",
        )
        .unwrap();
        assert_eq!(
            t,
            T {
                name: "1.10".into(),
                count: 31,
                list: vec!["a".into(), "b".into(), "c".into()],
                maybe: None,
                mode: Some(Mode::PromoteReplica),
            }
        );
        let m: BTreeMap<String, Vec<String>> = from_str("a: &x [p, q]\nb: *x\n").unwrap();
        assert_eq!(m["b"], ["p", "q"]);
        let any: serde_json::Value =
            from_str("a: [1, -2, 1.5, true, null, '1', x, .inf, 1e3]\n").unwrap();
        assert_eq!(
            any["a"].to_string(),
            "[1,-2,1.5,true,null,\"1\",\"x\",null,1000.0]"
        );
    }

    #[test]
    fn errors_name_the_path_and_the_place_of_the_value() {
        let e = from_str::<T>("name: x\ncount: many\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "count: invalid type: string \"many\", expected u32"
        );
        let p = e.pos().unwrap();
        assert_eq!((p.line, p.col), (2, 8));
        let e = from_str::<T>("name: x\nlist: [a, [b]]\n").unwrap_err();
        assert!(
            e.to_string().starts_with("list[1]: invalid type: sequence"),
            "{e}"
        );
        assert_eq!(e.pos().map(|p| (p.line, p.col)), Some((2, 11)));
        let e = from_str::<T>("count: 1\n").unwrap_err();
        assert_eq!(e.to_string(), "missing field `name`");
        let e = from_str::<T>("").unwrap_err();
        assert_eq!(e.to_string(), "missing field `name`");
        let e = from_str::<T>("name: x\nmode: sideways\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("mode: unknown variant `sideways`"),
            "{e}"
        );
        let e = from_str::<T>("name: x\n---\nname: y\n").unwrap_err();
        assert!(e.to_string().contains("second YAML document"), "{e}");
        assert_eq!(e.pos().map(|p| p.line), Some(2));
        let e = from_str::<T>("name: \"x\n").unwrap_err();
        assert!(e.pos().is_some(), "a syntax error is placed: {e}");
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        for (t, want) in [
            ("12", "i"),
            ("-12", "i"),
            ("+12", "i"),
            ("0o17", "i"),
            ("0x", "s"),
            ("1.5", "f"),
            (".5", "f"),
            ("1.", "f"),
            ("1e3", "f"),
            ("1e", "s"),
            ("-.inf", "f"),
            (".nan", "f"),
            ("-.nan", "s"),
            ("1.2.3", "s"),
            ("yes", "s"),
            ("True", "b"),
            ("~", "n"),
            ("", "n"),
            ("12ab", "s"),
            (".", "s"),
        ] {
            let got = match resolve(t, ScalarStyle::Plain, None).unwrap() {
                Resolved::Null => "n",
                Resolved::Bool(_) => "b",
                Resolved::Int(_) => "i",
                Resolved::Float(_) => "f",
                Resolved::Str => "s",
            };
            assert_eq!(got, want, "{t:?}");
        }
        assert!(matches!(
            resolve("12", ScalarStyle::DoubleQuoted, None).unwrap(),
            Resolved::Str
        ));
    }

    /// "Billion laughs": nine levels of nine aliases each, 9^9 strings if
    /// expanded. Read where a value is wanted, it stops at the replay
    /// budget with an error at an alias; under a key nobody reads, it is
    /// skipped without expanding.
    #[test]
    fn an_alias_bomb_is_an_error_at_an_alias_not_a_hang() {
        let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let t0 = std::time::Instant::now();
        let e = from_str::<BTreeMap<String, Vec<serde_json::Value>>>(&bomb).unwrap_err();
        assert!(e.to_string().contains("billion laughs"), "{e}");
        assert!(e.pos().is_some_and(|p| p.line >= 2), "at an alias: {e:?}");
        // Ignored: no expansion, no error.
        #[derive(serde::Deserialize)]
        struct Nothing {}
        from_str::<Nothing>(&bomb).unwrap();
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn an_alias_inside_its_own_node_is_an_error() {
        let e = from_str::<serde_json::Value>("a: &a [x, *a]\n").unwrap_err();
        assert!(e.to_string().contains("never end"), "{e}");
        assert_eq!(e.pos().map(|p| (p.line, p.col)), Some((1, 11)));
    }

    /// Aliases nesting collections in collections: deeper than the limit
    /// through aliases is the nesting error, not a stack overflow.
    #[test]
    fn nesting_through_aliases_is_bounded_too() {
        let mut text = String::from("l0: &l0 [x]\n");
        for i in 1..80 {
            text.push_str(&format!("l{i}: &l{i} [*l{}]\n", i - 1));
        }
        let e = from_str::<serde_json::Value>(&text).unwrap_err();
        assert!(e.to_string().contains("nested more than 64"), "{e}");
        // And in the text itself: reading stops at the level over the limit.
        let e = from_str::<serde_json::Value>(&format!("{}1\n", "- ".repeat(100_000))).unwrap_err();
        assert!(e.to_string().contains("nested more than 64"), "{e}");
        assert_eq!(e.pos().map(|p| (p.line, p.col)), Some((1, 129)));
    }
}
