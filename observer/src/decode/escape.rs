//! Text that cannot forge a line or drive a terminal: control characters escaped the way strace
//! escapes them inside strings (`\n`, `\t`, `\33`...). Paths, command names and other text a
//! traced program chooses pass through here before they reach a trace line, a report or a
//! terminal.
use std::{borrow::Cow, fmt::Write};

fn is_control(c: char) -> bool {
    c.is_control() // C0 (including \n, \t), DEL and the C1 range U+0080..U+009F
}

fn push_escaped(out: &mut String, c: char, next: Option<char>) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        '\r' => out.push_str("\\r"),
        _ => {
            let mut bytes = [0u8; 4];
            let encoded = c.encode_utf8(&mut bytes).as_bytes();
            for (i, b) in encoded.iter().enumerate() {
                // Like strace: the shortest octal form, unless a digit follows and would be read
                // as part of it.
                let followed_by_digit = i + 1 == encoded.len() && next.is_some_and(|n| ('0'..='7').contains(&n));
                if followed_by_digit {
                    let _ = write!(out, "\\{b:03o}");
                } else {
                    let _ = write!(out, "\\{b:o}");
                }
            }
        }
    }
}

fn escape_with(s: &str, backslash: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_control(c) || (backslash && c == '\\')) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if backslash && c == '\\' {
            out.push_str("\\\\");
        } else if is_control(c) {
            push_escaped(&mut out, c, chars.peek().copied());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A string a program chose (a path, a command name), as strace prints it inside quotes:
/// backslashes doubled, control characters escaped.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, true)
}

/// A whole line of output whose fields may already hold escapes: only control characters are
/// escaped, so nothing in it can end the line or reach the terminal as a control sequence.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    escape_with(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_escape_sequences_are_escaped_like_strace() {
        assert_eq!(escape("/tmp/a\nb\x1b[31m"), "/tmp/a\\nb\\33[31m");
        assert_eq!(escape("tab\there\r"), "tab\\there\\r");
        assert_eq!(escape("\x1b1"), "\\0331", "a digit after an octal escape gets three digits");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\u{9b}"), "\\302\\233", "C1 controls too, byte by byte");
        assert!(matches!(escape("/usr/bin/sleep"), Cow::Borrowed(_)));
    }

    #[test]
    fn whole_lines_keep_their_backslashes() {
        assert_eq!(escape_controls("exec /a\\nb as x\ny"), "exec /a\\nb as x\\ny");
    }
}
