//! Java `.properties` syntax, as `java.util.Properties.load` reads it and so
//! as ZooKeeper reads `zoo.cfg`.
//!
//! The rules (from the `java.util.Properties` documentation):
//!
//! * A *natural line* ends at `\n`, `\r` or `\r\n`.
//! * Leading whitespace (space, tab, form feed) of a line is skipped; a line
//!   that is then empty is blank, and one whose first character is `#` or `!`
//!   is a comment. Comments cannot be continued.
//! * A natural line ending in an odd number of backslashes continues on the
//!   next one: the backslash, the line terminator and the leading whitespace
//!   of the next line are dropped. The lines so joined form one *logical line*.
//!   (As in Java 9+, a continuation line is a comment if nothing came before
//!   it: `\` alone on a line followed by `# x`.)
//! * The key runs up to the first unescaped `=`, `:` or whitespace. Whitespace
//!   after the key is skipped, then one `=` or `:` if there is one, then
//!   whitespace again; the rest of the line is the value (trailing whitespace
//!   included: ZooKeeper trims it afterwards, see [`Entry::value`]).
//! * In keys and values `\t`, `\n`, `\r`, `\f` and `\uXXXX` are escapes; a
//!   backslash before any other character stands for that character.
//!
//! Unlike `Properties`, this keeps every entry in file order with the line it
//! starts on, so that later stages can name the line in their errors and
//! decide themselves what a repeated key means (Java keeps the last one).

use std::fmt;

/// One `key=value` entry of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, unescaped and trimmed as ZooKeeper trims it (`String.trim`).
    pub key: String,
    /// The value, unescaped and trimmed as ZooKeeper trims it.
    pub value: String,
    /// 1-based line number of the natural line the entry starts on.
    pub line: usize,
}

/// A syntax error in a properties file. Java's only one is a malformed
/// `\uXXXX` escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number of the logical line holding the error.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// `String.trim()`: removes every leading and trailing char <= U+0020.
pub(crate) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// A logical line: its raw characters (escapes not yet converted, continuation
/// joins done) and the natural line it starts on.
struct LogicalLine {
    chars: Vec<char>,
    line: usize,
}

/// Advances the natural line count past `chars[p]`: `\n`, `\r` and `\r\n`
/// each end one line.
fn bump(chars: &[char], p: usize, line: &mut usize) {
    match chars[p] {
        '\n' => *line += 1,
        '\r' if chars.get(p + 1) != Some(&'\n') => *line += 1,
        _ => {}
    }
}

/// Splits text into logical lines, dropping blank and comment lines, exactly
/// as `Properties.LineReader.readLine` of Java 9 and later does (which is
/// what ZooKeeper 3.8/3.9 run on). Two oddities of it are kept: a line that
/// a continuation left empty can still start a comment, and a file whose
/// last natural line is a lone `\` yields an empty entry.
fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut i = 0usize;
    let mut line = 1usize; // natural line of chars[i]
    let mut out = Vec::new();
    'lines: loop {
        let mut buf: Vec<char> = Vec::new();
        let mut start_line = line;
        let mut skip_white_space = true;
        let mut appended_line_begin = false;
        let mut preceding_backslash = false;
        loop {
            if i >= n {
                // End of input.
                if !buf.is_empty() {
                    if preceding_backslash {
                        buf.pop();
                    }
                    out.push(LogicalLine { chars: buf, line: start_line });
                }
                break 'lines;
            }
            let c = chars[i];
            let c_line = line;
            bump(&chars, i, &mut line);
            i += 1;
            if skip_white_space {
                if is_ws(c) {
                    continue;
                }
                if !appended_line_begin && (c == '\r' || c == '\n') {
                    continue;
                }
                skip_white_space = false;
                appended_line_begin = false;
            }
            if buf.is_empty() && (c == '#' || c == '!') {
                // A comment: skip through the end of the natural line.
                loop {
                    if i >= n {
                        break 'lines;
                    }
                    let d = chars[i];
                    bump(&chars, i, &mut line);
                    i += 1;
                    if d == '\r' || d == '\n' {
                        break;
                    }
                }
                skip_white_space = true;
                continue;
            }
            if c != '\n' && c != '\r' {
                if buf.is_empty() {
                    start_line = c_line;
                }
                buf.push(c);
                preceding_backslash = c == '\\' && !preceding_backslash;
                continue;
            }
            // End of a natural line.
            if buf.is_empty() {
                skip_white_space = true;
                continue;
            }
            if i >= n {
                // The line break was the last character: no continuation.
                if preceding_backslash {
                    buf.pop();
                }
                out.push(LogicalLine { chars: buf, line: start_line });
                break 'lines;
            }
            if preceding_backslash {
                buf.pop();
                skip_white_space = true;
                appended_line_begin = true;
                preceding_backslash = false;
                if c == '\r' && chars[i] == '\n' {
                    bump(&chars, i, &mut line);
                    i += 1;
                }
            } else {
                out.push(LogicalLine { chars: buf, line: start_line });
                continue 'lines;
            }
        }
    }
    out
}

/// `Properties.loadConvert`: resolves the escapes of a key or a value.
fn load_convert(chars: &[char], line: usize) -> Result<String, SyntaxError> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            // A lone trailing backslash (only possible at end of input) is dropped.
            break;
        };
        i += 1;
        match e {
            'u' => {
                let mut v: u32 = 0;
                for _ in 0..4 {
                    let d = chars
                        .get(i)
                        .and_then(|d| d.to_digit(16))
                        .ok_or_else(|| SyntaxError { line, message: "malformed \\uxxxx encoding".to_string() })?;
                    v = v * 16 + d;
                    i += 1;
                }
                // Java chars are UTF-16 code units; a lone surrogate cannot be
                // held in a Rust string, so it becomes U+FFFD. A surrogate
                // pair written as two escapes is joined.
                if (0xD800..0xDC00).contains(&v) {
                    if let Some(low) = low_surrogate_escape(chars, i) {
                        let cp = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        i += 6;
                        continue;
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
            }
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'n' => out.push('\n'),
            'f' => out.push('\u{c}'),
            other => out.push(other),
        }
    }
    Ok(out)
}

fn low_surrogate_escape(chars: &[char], i: usize) -> Option<u32> {
    if chars.get(i) != Some(&'\\') || chars.get(i + 1) != Some(&'u') {
        return None;
    }
    let mut v = 0u32;
    for k in 0..4 {
        v = v * 16 + chars.get(i + 2 + k)?.to_digit(16)?;
    }
    (0xDC00..0xE000).contains(&v).then_some(v)
}

/// Parses properties text into its entries, in file order, repeated keys
/// included.
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries = Vec::new();
    for ll in logical_lines(text) {
        let chars = &ll.chars;
        let limit = chars.len();
        let mut key_len = 0;
        let mut value_start = limit;
        let mut has_sep = false;
        let mut preceding_backslash = false;
        while key_len < limit {
            let c = chars[key_len];
            if (c == '=' || c == ':') && !preceding_backslash {
                value_start = key_len + 1;
                has_sep = true;
                break;
            } else if is_ws(c) && !preceding_backslash {
                value_start = key_len + 1;
                break;
            }
            if c == '\\' {
                preceding_backslash = !preceding_backslash;
            } else {
                preceding_backslash = false;
            }
            key_len += 1;
        }
        while value_start < limit {
            let c = chars[value_start];
            if !is_ws(c) {
                if !has_sep && (c == '=' || c == ':') {
                    has_sep = true;
                } else {
                    break;
                }
            }
            value_start += 1;
        }
        let key = load_convert(&chars[..key_len], ll.line)?;
        let value = load_convert(&chars[value_start.min(limit)..], ll.line)?;
        entries.push(Entry { key: java_trim(&key).to_string(), value: java_trim(&value).to_string(), line: ll.line });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text).unwrap().into_iter().map(|e| (e.key, e.value, e.line)).collect()
    }

    fn e(k: &str, v: &str, l: usize) -> (String, String, usize) {
        (k.to_string(), v.to_string(), l)
    }

    #[test]
    fn separators() {
        assert_eq!(
            kv("a=1\nb: 2\nc 3\nd\t=\t4\ne :5\nf = : 6\ng\n"),
            vec![e("a", "1", 1), e("b", "2", 2), e("c", "3", 3), e("d", "4", 4), e("e", "5", 5), e("f", ": 6", 6), e("g", "", 7),]
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# comment\n! also comment\n\n   \n  # indented comment\nkey=value # not a comment\n";
        assert_eq!(kv(text), vec![e("key", "value # not a comment", 6)]);
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(kv("   key   =   value   \n"), vec![e("key", "value", 1)]);
        assert_eq!(kv("\t\u{c}key=v\t \r\n"), vec![e("key", "v", 1)]);
    }

    #[test]
    fn continuation_lines() {
        let text = "a=one \\\n    two\\\n\tthree\nb=x\n";
        assert_eq!(kv(text), vec![e("a", "one twothree", 1), e("b", "x", 4)]);
        // Even number of backslashes: an escaped backslash, no continuation.
        assert_eq!(kv("a=x\\\\\nb=y\n"), vec![e("a", "x\\", 1), e("b", "y", 2)]);
        // A continuation line starting with '#' is not a comment.
        assert_eq!(kv("a=1,\\\n  #2\n"), vec![e("a", "1,#2", 1)]);
        // The key itself can be continued.
        assert_eq!(kv("tick\\\n  Time=5\n"), vec![e("tickTime", "5", 1)]);
        // Continuation at end of input.
        assert_eq!(kv("a=1\\"), vec![e("a", "1", 1)]);
        // A continued line followed by an empty line ends there.
        assert_eq!(kv("a=1\\\n\nb=2"), vec![e("a", "1", 1), e("b", "2", 3)]);
    }

    #[test]
    fn java9_line_reader_quirks() {
        // A continuation that accumulated nothing lets the next line be a comment.
        assert_eq!(kv("\\\n#x=1\nb=2\n"), vec![e("b", "2", 3)]);
        assert_eq!(kv("  \\\n  ! x=1\n"), vec![]);
        // ... but after something, '#' is just text.
        assert_eq!(kv("a=\\\n#x\n"), vec![e("a", "#x", 1)]);
        // A lone backslash on the last line is an empty entry (as Java 17
        // reads it).
        assert_eq!(kv("a=1\n\\\n"), vec![e("a", "1", 1), e("", "", 2)]);
        assert_eq!(kv("a=1\n\\"), vec![e("a", "1", 1), e("", "", 2)]);
    }

    #[test]
    fn comments_cannot_continue() {
        assert_eq!(kv("# comment \\\nkey=v\n"), vec![e("key", "v", 2)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(kv("k\\=ey=v\\:al\\ ue\\t\\u0041\\q\n"), vec![e("k=ey", "v:al ue\tAq", 1)]);
        assert_eq!(kv("my\\ key = x\n"), vec![e("my key", "x", 1)]);
        assert_eq!(kv("k=\\uD83D\\uDE00\n"), vec![e("k", "\u{1F600}", 1)]);
        let err = parse("a=1\nb=\\u12G4\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("\\uxxxx"));
    }

    #[test]
    fn line_endings_and_numbers() {
        assert_eq!(kv("a=1\r\nb=2\rc=3\n\r\nd=4"), vec![e("a", "1", 1), e("b", "2", 2), e("c", "3", 3), e("d", "4", 5)]);
        assert_eq!(kv("a=1\\\r\n  2\r\nb=3\r\n"), vec![e("a", "12", 1), e("b", "3", 3)]);
    }

    #[test]
    fn repeated_keys_are_all_kept() {
        assert_eq!(kv("a=1\na=2\n"), vec![e("a", "1", 1), e("a", "2", 2)]);
    }

    #[test]
    fn empty_input() {
        assert!(kv("").is_empty());
        assert!(kv("\n\n  \n# x\n").is_empty());
    }
}
