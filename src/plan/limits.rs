//! Limits that keep plan loading safe on hostile or broken input.
//!
//! Why: a plan file may come from anywhere (a generated file gone wrong, a
//! paste of the wrong file, a fuzzer), and `drctl plan validate` must answer
//! with a diagnostic, never a stack overflow (which aborts the process), a
//! hang or an out-of-memory kill. The parsers on the path differ:
//!
//! - `toml` stops at 80 levels by itself, in linear time;
//! - `saphyr-parser` (YAML: the position tree, and the values through
//!   [`super::yaml`]) stops at some depth of *flow* nesting (its scanner
//!   looks ahead for keys) but has no limit on *block* nesting (`- - - -
//!   ...`), and neither the tree we build from its events nor the
//!   deserializer may recurse without a bound.
//!
//! So every file goes through cheap, bounded checks first: a size limit
//! ([`MAX_FILE_BYTES`], checked before reading), and a nesting limit
//! ([`MAX_DEPTH`]), checked before any recursive reader sees the text. For
//! YAML the nesting is counted on saphyr's event stream (exact, block and
//! flow; it stops at the first level too deep), with the lexical scan
//! [`yaml_flow_depth`] placing the error where saphyr's scanner gives up
//! on deep flow nesting before the events reach the limit. For TOML,
//! [`toml_depth`] counts `[`/`{` outside strings, comments and table
//! headers, which is exact for TOML.
//!
//! YAML aliases ("billion laughs") are bounded by the deserializer: the
//! position tree does not expand them, a value nobody reads (an unknown
//! key's) is skipped without following them, and the events replayed
//! through aliases are counted against [`MAX_ALIAS_EVENTS`]; an alias inside
//! the node it names, and nesting deeper than [`MAX_DEPTH`] through aliases,
//! are errors too.

/// The largest plan or tiers file read: 1 MiB. A plan of 5,000 resources is
/// about 800 KiB (`benches/validate.rs`); a bigger file is not a plan (a
/// log, a dump), and refusing it up front bounds the memory and time the
/// checks below can take, and the parser's events and nodes with them (a
/// YAML event takes at least a byte or two of text: at most about half a
/// million of them, however the file is written).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The deepest nesting of tables, arrays, mappings and sequences accepted: 64
/// levels. A plan is at most 5 deep (`database` → `[0]` → `regions` → value);
/// 64 is below the limits of every parser on the path (toml 80, saphyr's
/// flow nesting), so a deep file is reported by this check, with one
/// message, before any of them gives up in its own words.
pub const MAX_DEPTH: usize = 64;

/// The most YAML events that aliases may replay in one file, all aliases
/// together: 100,000. A plan's anchors (a list of regions used by every
/// resource) replay a few events each, a few thousand in a plan of 10,000
/// resources; nine aliases of nine aliases of ... nine strings ("billion
/// laughs") would replay hundreds of millions.
pub const MAX_ALIAS_EVENTS: usize = 100_000;

/// The most errors `plan validate` reports of one file: the first 50, then
/// how many more. A generated file can hold thousands of one mistake (a
/// fuzzer's 10,000 bad evidence destinations on one line took minutes and
/// gigabytes); every observer loads every plan, so each file's report is
/// bounded in time, memory and output.
pub const MAX_ERRORS_PER_FILE: usize = 50;

/// The most characters of a source line a diagnostic shows around its
/// column: a plan's own lines are shorter; a 280 KB line is shown as the
/// part that holds the mistake.
pub const SNIPPET_CHARS: usize = 240;

/// The most characters of a diagnostic's message: it quotes the value it
/// is about, which a generated file can make any length.
pub const MESSAGE_CHARS: usize = 300;

/// The most evidence destinations a plan may name: a run writes its pack to
/// each, and two or three (one per cloud or region) is what a plan needs.
pub const MAX_DESTINATIONS: usize = 16;

/// The most drill blackout windows a plan may name.
pub const MAX_BLACKOUTS: usize = 32;

/// The hint of the "nested too deeply" diagnostic.
pub const DEPTH_HINT: &str = "a plan is at most 5 levels deep (database → [0] → regions → value); this is generated or corrupted input. drctl stops reading at 64 levels so that no file can exhaust its stack";

/// Where the nesting first exceeds [`MAX_DEPTH`]: the byte offset of the
/// bracket (or event) that opens level `MAX_DEPTH + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// Byte offset in the text.
    pub offset: usize,
}

/// Nesting of TOML arrays and inline tables: counts `[` and `{` outside
/// strings, comments and table headers (`[a]`, `[[a]]`). Returns the first
/// place deeper than [`MAX_DEPTH`]. Linear, no allocation.
pub fn toml_depth(text: &str) -> Option<TooDeep> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => i = skip_to_eol(b, i),
            b'"' | b'\'' => i = skip_toml_string(b, i),
            b'[' if depth == 0 && line_start => {
                // A table header: its brackets are not nesting. Skip to the
                // end of the line, over quoted keys.
                while i < b.len() && b[i] != b'\n' && b[i] != b'#' {
                    i = if b[i] == b'"' || b[i] == b'\'' {
                        skip_toml_string(b, i)
                    } else {
                        i + 1
                    };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(TooDeep { offset: i });
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
        line_start = false;
    }
    None
}

fn skip_to_eol(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

/// Skips a TOML string starting at `i` (a quote); returns the offset after it
/// (or of the newline ending an unterminated one-line string).
fn skip_toml_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let basic = q == b'"';
    if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
        // Multi-line: up to the closing triple quote.
        let mut j = i + 3;
        while j < b.len() {
            if basic && b[j] == b'\\' {
                j += 2;
            } else if b[j] == q && b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q) {
                return j + 3;
            } else {
                j += 1;
            }
        }
        return b.len();
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b'\n' {
        if basic && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    j.min(b.len())
}

/// Flow nesting of YAML (`[` and `{`), read lexically: a bracket counts where
/// a node starts or inside a flow collection, quoted scalars are skipped where
/// a node starts, block scalars (`|`, `>`) and comments are skipped. This is
/// an approximation of the YAML grammar, used only when saphyr rejected the
/// file (so there is no exact count), to report deeply nested flow
/// collections at the level that crosses the limit. Linear, no allocation.
pub fn yaml_flow_depth(text: &str) -> Option<TooDeep> {
    let b = text.as_bytes();
    let ws = |i: usize| matches!(b.get(i), None | Some(b' ' | b'\t' | b'\r' | b'\n'));
    let mut depth = 0usize;
    // Whether a node may start here (line start, after an indicator).
    let mut node_start = true;
    let mut line_indent = 0usize;
    let mut at_indent = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            node_start = true;
            line_indent = 0;
            at_indent = true;
            i += 1;
            continue;
        }
        if c == b' ' || c == b'\t' || c == b'\r' {
            if at_indent {
                line_indent += 1;
            }
            i += 1;
            continue;
        }
        at_indent = false;
        let after_ws = i == 0 || ws(i - 1);
        match c {
            b'#' if after_ws => {
                i = skip_to_eol(b, i);
                continue;
            }
            b'\'' | b'"' if node_start => {
                i = skip_yaml_quoted(b, i);
                node_start = false;
                continue;
            }
            b'[' | b'{' if node_start || depth > 0 => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(TooDeep { offset: i });
                }
                node_start = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                node_start = false;
            }
            b',' if depth > 0 => node_start = true,
            b':' if depth > 0 || ws(i + 1) => node_start = true,
            b'-' | b'?' if node_start && ws(i + 1) => {}
            b'&' | b'!' if node_start => {
                while i < b.len() && !ws(i) {
                    i += 1;
                }
                continue;
            }
            b'|' | b'>' if node_start && depth == 0 => {
                i = skip_block_scalar(b, i, line_indent);
                continue;
            }
            _ => node_start = false,
        }
        i += 1;
    }
    None
}

/// Skips a YAML block scalar whose indicator (`|`, `>`) is at `i`, on a line
/// indented by `indent`: its lines are the blank ones and those indented
/// more. Returns the offset of the newline that ends it (or the end).
fn skip_block_scalar(b: &[u8], i: usize, indent: usize) -> usize {
    let mut i = skip_to_eol(b, i);
    while i < b.len() {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        let blank = j >= b.len() || b[j] == b'\n' || b[j] == b'\r';
        if !blank && j - start <= indent {
            break;
        }
        i = skip_to_eol(b, j);
    }
    i
}

/// Skips a YAML quoted scalar starting at `i`; returns the offset after it.
fn skip_yaml_quoted(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if q == b'"' && b[j] == b'\\' {
            j += 2;
        } else if b[j] == q {
            if q == b'\'' && b.get(j + 1) == Some(&b'\'') {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}1{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn toml_counts_arrays_and_inline_tables_only() {
        let ok = format!("a = {}\n", nested("[", "]", MAX_DEPTH));
        assert_eq!(toml_depth(&ok), None);
        let deep = format!("a = {}\n", nested("[", "]", MAX_DEPTH + 1));
        assert_eq!(
            toml_depth(&deep),
            Some(TooDeep {
                offset: 4 + MAX_DEPTH
            })
        );
        let deep = format!("a = {}\n", nested("{a = ", "}", MAX_DEPTH + 1));
        assert!(toml_depth(&deep).is_some());
        // Brackets in strings, comments and headers are not nesting.
        let many = "[".repeat(100);
        for text in [
            format!("a = \"{many}\"\n"),
            format!("a = '{many}'\n"),
            format!("a = \"\"\"\n{many}\n\"\"\"\n"),
            format!("a = '''{many}'''\n"),
            format!("# {many}\n"),
            format!("[\"{many}\"]\n"),
            format!("a = \"\\\"{many}\"\n"),
        ] {
            assert_eq!(toml_depth(&text), None, "{text}");
        }
    }

    #[test]
    fn yaml_flow_counts_flow_collections_only() {
        let ok = format!("a: {}\n", nested("[", "]", MAX_DEPTH));
        assert_eq!(yaml_flow_depth(&ok), None);
        let deep = format!("a: {}\n", nested("{a: ", "}", MAX_DEPTH + 1));
        assert!(yaml_flow_depth(&deep).is_some());
        let deep = format!("- {}\n", "[".repeat(MAX_DEPTH + 1));
        assert!(yaml_flow_depth(&deep).is_some());
        let many = "[".repeat(100);
        for text in [
            format!("a: \"{many}\"\n"),
            format!("a: '{many}'\n"),
            format!("a: x{many}\n"),
            format!("# {many}\n"),
            format!("a: |\n  {many}\n  {many}\nb: 1\n"),
            format!("a: [\"{many}\", '{many}']\n"),
        ] {
            assert_eq!(yaml_flow_depth(&text), None, "{text}");
        }
    }
}
