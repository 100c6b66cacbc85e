//! Text made safe for where it goes: a terminal, Markdown, Slack's mrkdwn,
//! a spreadsheet's CSV cell.
//!
//! Much of what drctl shows did not come from drctl: a cloud's error
//! message, a name or a description written in a plan, a journal's text
//! (which a bucket writer may have edited), a sink's answer. Written as it
//! is, such text can drive a terminal (escape sequences that move the
//! cursor, rewrite earlier lines, set the window title or the clipboard),
//! turn a report's Markdown into links, images or HTML, ping a whole Slack
//! channel (`<!channel>`), or run a formula when a CSV file is opened in a
//! spreadsheet (`=HYPERLINK(...)`). Each function here escapes text for
//! one of these places; the printers call them where text leaves drctl
//! (the CLI's output macros, the report renderers, the Slack builder), so
//! each rule lives once.
//!
//! A ground floor: pure functions of strings, used by every floor above.

use std::borrow::Cow;

/// Whether `c` is stripped from terminal text: C0 controls but newline and
/// tab, DEL, C1 controls; the bidirectional overrides, isolates and marks
/// (LRM, RLM, ALM: each makes a terminal show text in another order than
/// it is); the zero-width characters and the word joiner, the byte order
/// mark and the invisible operators (text that is there but not seen);
/// and the tag characters (invisible text a reader's tools may still act
/// on).
fn is_stripped(c: char) -> bool {
    matches!(c,
        '\u{00}'..='\u{08}' | '\u{0B}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{061C}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}')
}

/// C1 controls that open a string ended by ST (or BEL): DCS, SOS, OSC, PM,
/// APC, and their 7-bit forms after ESC.
fn opens_string(c: char) -> bool {
    matches!(
        c,
        '\u{90}' | '\u{98}' | '\u{9D}' | '\u{9E}' | '\u{9F}' | 'P' | 'X' | ']' | '^' | '_'
    )
}

/// Text for a terminal: escape sequences (CSI, OSC, DCS and the other
/// strings, two-character escapes), C0 controls but newline and tab, DEL,
/// C1 controls and bidirectional overrides removed. A carriage return is
/// kept only right before a newline (CRLF line ends), where it cannot
/// overwrite what was written. Text with nothing to remove is borrowed.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_stripped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {
                if it.peek() == Some(&'\n') {
                    out.push('\r');
                }
            }
            '\u{1B}' => match it.next() {
                Some('[') => skip_csi(&mut it),
                Some(o) if opens_string(o) => skip_string(&mut it),
                // nF escapes: intermediates, then one final character.
                Some('\u{20}'..='\u{2F}') => {
                    while it.next_if(|c| ('\u{20}'..='\u{2F}').contains(c)).is_some() {}
                    it.next();
                }
                // Fp, Fe, Fs: one character after ESC, nothing more.
                _ => {}
            },
            '\u{9B}' => skip_csi(&mut it),
            o if opens_string(o) && !o.is_ascii() => skip_string(&mut it),
            c if is_stripped(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Skips a control sequence after its introducer: parameter and
/// intermediate bytes, then the final byte (`@` to `~`). A sequence cut
/// short by another control ends there.
fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = it.peek() {
        if !('\u{20}'..='\u{7E}').contains(&c) {
            return;
        }
        it.next();
        if ('\u{40}'..='\u{7E}').contains(&c) {
            return;
        }
    }
}

/// Skips a control string (OSC, DCS, ...) up to and with its terminator:
/// BEL, ST (`ESC \`) or the C1 ST. An unterminated string runs to the end
/// of the text: all of it was meant for the terminal.
fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = it.next() {
        match c {
            '\u{07}' | '\u{9C}' => return,
            '\u{1B}' => {
                it.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// One line of text: terminal controls removed, line breaks and tabs made
/// spaces (a value written inside a line of a document must not start a
/// new block of it).
fn one_line(s: &str) -> String {
    terminal(s)
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect()
}

/// Text for inline Markdown (CommonMark and GitHub's): one line, with the
/// characters that make emphasis, code, links, images, HTML, tables,
/// strikethrough, entities and headings escaped by a backslash, and a
/// list marker or a thematic break at its start escaped too, so that the
/// text reads as written wherever it stands (a table cell, a list item, a
/// line of its own). A bare web address (`https://`, `http://`, `ftp://`,
/// `www.`) and an `@` (a mention, an email address) get a zero-width
/// space inside them, written as its entity (`&#8203;`, which a renderer
/// shows as nothing and the terminal cleaner leaves, so a report printed
/// to a terminal or piped to a file keeps it), so that neither GitHub's
/// autolinks nor its mentions (which no backslash stops: they are found in
/// the rendered text) make a link or a ping of text a report only quotes.
pub fn markdown(s: &str) -> String {
    let line = one_line(s);
    let line = line.trim_start();
    let mut out = String::with_capacity(line.len() + 8);
    // What makes a block at the start of a line: a list item (`- `, `+ `,
    // `1. `, `1) `) or a thematic break or setext underline (`---`, `===`).
    let spaced = |i: usize| line[i..].chars().next().is_none_or(char::is_whitespace);
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let rule = !line.is_empty() && line.chars().all(|c| matches!(c, '-' | '=' | ' '));
    for (i, c) in line.char_indices() {
        let special = matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!'
        );
        let marker = i == 0 && matches!(c, '-' | '+' | '=') && (rule || spaced(1));
        let numbered = digits > 0 && i == digits && matches!(c, '.' | ')') && spaced(i + 1);
        if special || marker || numbered {
            out.push('\\');
        }
        out.push(c);
        if c == '@' || (c == ':' && linked(&line[..i], &line[i + 1..])) {
            out.push_str(ZWSP);
        }
        if c == 'w'
            && line[..=i].to_ascii_lowercase().ends_with("www")
            && line[i + 1..].starts_with('.')
        {
            out.push_str(ZWSP);
        }
    }
    out
}

/// A zero-width space as a Markdown entity: invisible when rendered,
/// plain ASCII where the report is printed.
const ZWSP: &str = "&#8203;";

/// Whether the `:` between `before` and `after` is a web address's (a
/// scheme GitHub links on its own, then `//`).
fn linked(before: &str, after: &str) -> bool {
    let scheme = before.to_ascii_lowercase();
    after.starts_with("//") && ["http", "https", "ftp"].iter().any(|s| scheme.ends_with(s))
}

/// Text for inside a Markdown code span (`` `run-1` ``): one line, and no
/// backtick (which would end the span); nothing else is read there.
pub fn markdown_code(s: &str) -> String {
    one_line(s).replace('`', "'")
}

/// Text for Slack's mrkdwn: one line, `&`, `<` and `>` as the entities
/// Slack requires (so no `<!channel>`, `<@user>` or `<url|label>` can be
/// made), and each formatting character (`*`, `_`, `~`, `` ` ``) preceded by
/// a zero-width space, so that none opens bold, italics, strikethrough or
/// code (Slack has no escape of its own for them).
pub fn slack(s: &str) -> String {
    let line = one_line(s);
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' => {
                out.push('\u{200B}');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text for inside a Slack code span (`` `drctl runs resume ...` ``): one
/// line, the entities Slack requires, and no backtick (which would end
/// the span); formatting characters need nothing there.
pub fn slack_code(s: &str) -> String {
    one_line(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// A CSV cell that a spreadsheet will not read as a formula: a cell
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'`
/// first (OWASP's advice for CSV injection). The CSV writer still quotes
/// the cell as its content requires.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_loses_every_escape_sequence_and_control() {
        let cases = [
            ("plain text", "plain text"),
            ("keeps\nlines\tand tabs", "keeps\nlines\tand tabs"),
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b[2J\x1b[Hcleared", "cleared"),
            ("\x1b[?1049h", ""),
            // OSC: window title, hyperlink, clipboard; BEL or ST ends them.
            ("\x1b]0;owned\x07title", "title"),
            ("\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("\x1b]52;c;Y3VybCBldmls\x07x", "x"),
            // DCS, two-character escapes, nF escapes.
            ("\x1bPq#0;2;0\x1b\\after", "after"),
            ("\x1bcreset", "reset"),
            ("\x1b(Bascii", "ascii"),
            // C1 forms of CSI and OSC.
            ("\u{9b}31mx", "x"),
            ("\u{9d}0;t\u{9c}y", "y"),
            // C0, DEL, C1, a lone CR (overwrites the line), backspace.
            ("a\x00b\x07c\x08d\x7fe\u{85}f", "abcdef"),
            ("ok\rFAKE", "okFAKE"),
            ("crlf\r\nkept", "crlf\r\nkept"),
            // Bidi overrides show text in another order.
            ("abc\u{202e}fed", "abcfed"),
            // An escape cut short at the end.
            ("end\x1b", "end"),
            ("end\x1b[12", "end"),
            ("\x1b]unterminated title", ""),
            ("unicode ✓ é 漢", "unicode ✓ é 漢"),
        ];
        for (given, want) in cases {
            assert_eq!(terminal(given), want, "{given:?}");
        }
        assert!(matches!(terminal("nothing to do"), Cow::Borrowed(_)));
    }

    #[test]
    fn markdown_text_reads_as_written() {
        assert_eq!(markdown("us-east-1 payments"), "us-east-1 payments");
        assert_eq!(
            markdown("*bold* _it_ `code` [x](http://e) ![i](u) <img src=x> a|b ~s~ &amp;"),
            "\\*bold\\* \\_it\\_ \\`code\\` \\[x\\](http:&#8203;//e) \\!\\[i\\](u) \\<img src=x\\> a\\|b \\~s\\~ \\&amp;"
        );
        assert_eq!(markdown("# not a heading"), "\\# not a heading");
        assert_eq!(markdown("- not a list"), "\\- not a list");
        assert_eq!(markdown("12. not a list"), "12\\. not a list");
        assert_eq!(markdown("---"), "\\---");
        assert_eq!(markdown("    not code"), "not code");
        assert_eq!(
            markdown("line one\n# line two\r\n| cell"),
            "line one \\# line two  \\| cell"
        );
        assert_eq!(markdown("back\\slash"), "back\\\\slash");
        assert_eq!(markdown("\x1b[31mred"), "red");
        assert_eq!(markdown("a - b 1. c"), "a - b 1. c", "only at the start");
        assert_eq!(markdown("301.0s --approve -x"), "301.0s --approve -x");
        assert_eq!(markdown("==="), "\\===");
        assert_eq!(markdown("1) item"), "1\\) item");
        assert_eq!(markdown_code("run`x`\n1"), "run'x' 1");
    }

    /// Regression (issue 39): quoted text made links and pings in a
    /// Markdown report: a bare address and an `@` are broken up by a
    /// zero-width space (its entity: it survives the terminal cleaner, so
    /// a report printed or piped keeps it), invisible to a reader, so
    /// GitHub links and pings nothing; other schemes (`s3://`, `gs://`)
    /// read as written.
    #[test]
    fn regression_markdown_text_made_links_and_mentions() {
        let z = ZWSP;
        assert_eq!(
            markdown(
                "see https://evil.example/x, HTTP://e, www.evil.example, ping @channel or a@b.io"
            ),
            format!(
                "see https:{z}//evil.example/x, HTTP:{z}//e, www{z}.evil.example, ping @{z}channel or a@{z}b.io"
            )
        );
        assert_eq!(
            markdown("s3://bucket/key gs://b/k"),
            "s3://bucket/key gs://b/k"
        );
        assert_eq!(markdown("wwwx.example a:b"), "wwwx.example a:b");
    }

    /// Regression (issue 39): bidirectional marks, zero-width and tag
    /// characters reached the terminal.
    #[test]
    fn regression_invisible_and_reordering_characters_reached_the_terminal() {
        for c in [
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{200B}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{E007F}',
        ] {
            assert_eq!(terminal(&format!("a{c}b")), "ab", "{:?}", c);
        }
        assert_eq!(terminal("é ü 日本"), "é ü 日本");
    }

    #[test]
    fn slack_text_can_neither_mention_link_nor_format() {
        assert_eq!(
            slack("<!channel> <@U123> <https://evil|click> a & b"),
            "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil|click&gt; a &amp; b"
        );
        let z = '\u{200B}';
        assert_eq!(
            slack("*bold* _it_ ~s~ `c`"),
            format!("{z}*bold{z}* {z}_it{z}_ {z}~s{z}~ {z}`c{z}`")
        );
        assert_eq!(slack("two\n&gt; lines"), "two &amp;gt; lines");
        assert_eq!(slack("plain us-east-1"), "plain us-east-1");
        assert_eq!(
            slack_code("drctl runs resume `x` <a> & b"),
            "drctl runs resume 'x' &lt;a&gt; &amp; b"
        );
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_compute_are_guarded() {
        for f in [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(csv_cell(f), format!("'{f}"), "{f:?}");
        }
        for ok in ["payments", "2025-01-01T00:00:00Z", "12.5", "", "a=b"] {
            assert!(matches!(csv_cell(ok), Cow::Borrowed(_)), "{ok:?}");
        }
    }
}
