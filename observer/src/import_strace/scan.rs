//! Low-level scanning of strace's argument text: where a call's argument list closes, and how it
//! splits into top-level arguments, skipping over strings, `[...]`, `{...}`, `(...)`, comments and
//! `-y` fd decorations (`3</etc/passwd>`).

/// What the scanner is inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Code,
    /// A quoted string; `true` right after a backslash.
    Str(bool),
    Comment,
    /// A `-y` decoration `<...>`, with its own bracket depth.
    Decoration(u32),
}

/// Byte offsets of top-level structure in `text`: `on_comma(i)` for a comma at depth 0, and the
/// offset of the first bracket that closes depth 0 (an unmatched `)`, `]` or `}`), if any.
fn walk(text: &str, mut on_comma: impl FnMut(usize)) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth: u32 = 0;
    let mut mode = Mode::Code;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match mode {
            Mode::Str(escaped) => {
                mode = match (escaped, b) {
                    (true, _) => Mode::Str(false),
                    (false, b'\\') => Mode::Str(true),
                    (false, b'"') => Mode::Code,
                    _ => Mode::Str(false),
                };
            }
            Mode::Comment => {
                if b == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    mode = Mode::Code;
                    i += 1;
                }
            }
            Mode::Decoration(inner) => match b {
                b'[' | b'(' | b'{' => mode = Mode::Decoration(inner + 1),
                b']' | b')' | b'}' => mode = Mode::Decoration(inner.saturating_sub(1)),
                b'>' if inner == 0 => mode = Mode::Code,
                _ => {}
            },
            Mode::Code => match b {
                b'"' => mode = Mode::Str(false),
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    mode = Mode::Comment;
                    i += 1;
                }
                // `3</path>` is a decoration; `1<<12` is a shift.
                b'<' if i > 0 && bytes[i - 1].is_ascii_digit() && bytes.get(i + 1) != Some(&b'<') => {
                    mode = Mode::Decoration(0);
                }
                b'<' if bytes.get(i + 1) == Some(&b'<') => i += 1,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    if depth == 0 {
                        return Some(i);
                    }
                    depth -= 1;
                }
                b',' if depth == 0 => on_comma(i),
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// The offset of the `)` that closes an argument list whose text starts at `text[0]` (just after
/// the opening parenthesis), or `None` when it does not close in `text`.
pub fn closing_paren(text: &str) -> Option<usize> {
    walk(text, |_| {}).filter(|&i| text.as_bytes()[i] == b')')
}

/// The top-level, comma-separated arguments of `text` (an argument list without its parentheses,
/// or the inside of a struct or array; an unmatched closing bracket ends it), trimmed. An empty
/// list gives no arguments.
pub fn split_args(text: &str) -> Vec<&str> {
    let mut cuts = Vec::new();
    let end = walk(text, |i| cuts.push(i)).unwrap_or(text.len());
    let text = &text[..end];
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        out.push(text[start..cut].trim());
        start = cut + 1;
    }
    let last = text[start..].trim();
    if !(out.is_empty() && last.is_empty()) {
        out.push(last);
    }
    out
}

/// `text` with `/* ... */` comments removed and trimmed: `0x7ffe /* 35 vars */` is `0x7ffe`.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_paren_skips_strings_structs_and_comments() {
        let args = r#""/bin/sh", ["sh", "-c", "echo ) ("], 0x7ffe /* 35 vars ) */) = 0"#;
        assert_eq!(&args[closing_paren(args).unwrap()..], ") = 0");
        let wait = "[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5206";
        assert_eq!(&wait[closing_paren(wait).unwrap()..], ") = 5206");
        assert_eq!(closing_paren("-1, "), None);
    }

    #[test]
    fn split_args_keeps_nested_commas_inside_their_argument() {
        let args = r#"{flags=CLONE_VM|CLONE_THREAD, child_tid=0x7f} => {parent_tid=[4164]}, 88"#;
        assert_eq!(
            split_args(args),
            vec!["{flags=CLONE_VM|CLONE_THREAD, child_tid=0x7f} => {parent_tid=[4164]}", "88"]
        );
        assert_eq!(split_args(r#""a,\"b", 3"#), vec![r#""a,\"b""#, "3"]);
        assert!(split_args("").is_empty());
        assert_eq!(split_args("NULL"), vec!["NULL"]);
    }

    #[test]
    fn fd_decorations_of_dash_y_may_hold_commas_and_parens() {
        assert_eq!(split_args("3</tmp/a,b (1)>, \"x\", 832"), vec!["3</tmp/a,b (1)>", "\"x\"", "832"]);
        assert_eq!(
            split_args("5<TCP:[127.0.0.1:80->127.0.0.1:5555]>, 0"),
            vec!["5<TCP:[127.0.0.1:80->127.0.0.1:5555]>", "0"]
        );
    }

    #[test]
    fn shifts_are_not_decorations() {
        assert_eq!(
            split_args("FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1, 2"),
            vec!["FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1", "2"]
        );
    }

    #[test]
    fn comments_are_stripped() {
        assert_eq!(strip_comments("0x7ffe7aa8fa58 /* 35 vars */"), "0x7ffe7aa8fa58");
        assert_eq!(strip_comments("0x7 /* P_??? */"), "0x7");
        assert_eq!(strip_comments("/* unterminated"), "");
    }
}
