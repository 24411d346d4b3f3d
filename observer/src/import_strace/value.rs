//! Reading one argument or result as strace printed it: integers (decimal, hex, octal, `NULL`,
//! `8192*1024`), `-y` fd decorations, flag expressions (`MAP_PRIVATE|MAP_STACK|0x40`,
//! `21<<MAP_HUGE_SHIFT`) through the shared decode tables, struct fields and quoted strings.
use super::scan::{split_args, strip_comments};
use crate::decode::{signal_by_name, value_of_name, Names};

/// An integer literal: `42`, `-1`, `0x7f00`, `0644`, `NULL`, or a product `8192*1024` (how strace
/// prints limits). A `-y` decoration (`3</etc/passwd>`) and comments are ignored.
pub fn int(text: &str) -> Option<i64> {
    let text = strip_comments(text);
    let text = strip_decoration(&text);
    if text == "NULL" {
        return Some(0);
    }
    if text.contains('*') {
        return text.split('*').try_fold(1i64, |acc, f| acc.checked_mul(int(f)?));
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()?
    } else {
        return None;
    };
    // Values above i64::MAX are addresses or unsigned sizes: keep their bits.
    let value = magnitude as i64;
    Some(if negative { value.wrapping_neg() } else { value })
}

/// An integer as the 64-bit register it came from (negative numbers sign-extended).
pub fn reg(text: &str) -> Option<u64> {
    int(text).map(|v| v as u64)
}

/// `3</etc/passwd>` is `3`: the number before a `-y` decoration.
fn strip_decoration(text: &str) -> &str {
    let text = text.trim();
    match text.find('<') {
        Some(i) if i > 0 && text.as_bytes()[i - 1].is_ascii_digit() && !text[i..].starts_with("<<") => text[..i].trim(),
        _ => text,
    }
}

/// One term of a flag expression: a number, a name of `names`, a signal name (clone's exit signal),
/// or `A<<B` of those.
fn term(text: &str, names: Names) -> Option<u64> {
    let text = text.trim();
    if let Some((value, shift)) = text.split_once("<<") {
        let shift = term(shift, names)?;
        return term(value, names)?.checked_shl(u32::try_from(shift).ok()?);
    }
    if let Some(v) = reg(text) {
        return Some(v);
    }
    if let Some(v) = value_of_name(names, text) {
        return Some(v);
    }
    if names == Names::Clone {
        return signal_by_name(text).filter(|_| text.starts_with("SIG")).map(|s| s as u64);
    }
    None
}

/// A flag expression in vocabulary `names`: `PROT_READ|PROT_WRITE`, `MAP_PRIVATE|0x40`,
/// `FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1`; `None` when any term is not understood.
pub fn flags(text: &str, names: Names) -> Option<u64> {
    let text = strip_comments(text);
    if text.is_empty() {
        return None;
    }
    text.split('|').try_fold(0u64, |acc, t| Some(acc | term(t, names)?))
}

/// A signal argument: `SIGKILL`, `0` or a number.
pub fn signal(text: &str) -> Option<u64> {
    let text = strip_comments(text);
    if text.starts_with("SIG") {
        return signal_by_name(&text).map(|s| s as u64);
    }
    reg(&text)
}

/// The value of `field=...` inside a struct `{a=1, field=..., ...}` (the first struct of `text`).
pub fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let text = text.trim();
    let open = text.find('{')?;
    let inner = &text[open + 1..];
    split_args(inner).into_iter().find_map(|part| {
        let (key, value) = part.split_once('=')?;
        (key.trim() == name).then(|| value.trim())
    })
}

/// The text of `name=...` when an argument is written `name=value` (clone's `flags=...`).
pub fn named(text: &str) -> Option<(&str, &str)> {
    let (key, value) = text.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then(|| (key, value.trim()))
}

/// A quoted C string as strace escapes it (`"a\"b\n\0\x41"`), unescaped to bytes; `None` when
/// `text` does not start with a quote. A trailing `...` (cut by `-s`) is ignored.
pub fn string(text: &str) -> Option<Vec<u8>> {
    let bytes = text.trim().as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some(out),
            b'\\' if i + 1 < bytes.len() => {
                i += 1;
                match bytes[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'x' => {
                        let hex: String = bytes[i + 1..]
                            .iter()
                            .take(2)
                            .take_while(|b| b.is_ascii_hexdigit())
                            .map(|&b| b as char)
                            .collect();
                        out.push(u8::from_str_radix(&hex, 16).unwrap_or(0));
                        i += hex.len();
                    }
                    b'0'..=b'7' => {
                        let oct: String = bytes[i..]
                            .iter()
                            .take(3)
                            .take_while(|b| (b'0'..=b'7').contains(b))
                            .map(|&b| b as char)
                            .collect();
                        out.push(u8::from_str_radix(&oct, 8).unwrap_or(0));
                        i += oct.len() - 1;
                    }
                    other => out.push(other),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// The strings of an array argument (`["sh", "-c", "x"...]`); elements that are not strings
/// (`...`, pointers) are left out, and one strace cut short (`-s`) keeps its `...`.
pub fn strings(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    let inner = text.strip_prefix('[')?;
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    let element = |e: &str| {
        let mut s = String::from_utf8_lossy(&string(e)?).into_owned();
        if e.ends_with("\"...") {
            s.push_str("...");
        }
        Some(s)
    };
    Some(split_args(inner).into_iter().filter_map(element).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_in_every_base_strace_prints() {
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("-1"), Some(-1));
        assert_eq!(int("0x7ff4443ce000"), Some(0x7ff4_443c_e000));
        assert_eq!(int("0644"), Some(0o644));
        assert_eq!(int("0"), Some(0));
        assert_eq!(int("NULL"), Some(0));
        assert_eq!(int("40960*1024"), Some(41_943_040));
        assert_eq!(int("0xffffffffffffffff"), Some(-1));
        assert_eq!(int("0x7ffe7aa8fa58 /* 35 vars */"), Some(0x7ffe_7aa8_fa58));
        assert_eq!(int("SIGCHLD"), None);
        assert_eq!(int(""), None);
        assert_eq!(int("99999999999999999999999"), None);
    }

    #[test]
    fn fd_decorations_are_dropped() {
        assert_eq!(int("3</etc/passwd>"), Some(3));
        assert_eq!(int("5<socket:[1234]>"), Some(5));
    }

    #[test]
    fn flag_expressions_use_the_decode_tables() {
        assert_eq!(flags("PROT_READ|PROT_WRITE", Names::Prot), Some(3));
        assert_eq!(flags("PROT_NONE", Names::Prot), Some(0));
        assert_eq!(flags("MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK", Names::Mmap), Some(0x20022));
        assert_eq!(
            flags("MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT", Names::Mmap),
            Some(0x22 | 0x40000 | 21 << 26)
        );
        assert_eq!(flags("MAP_SHARED|0x40000000", Names::Mmap), Some(0x4000_0001));
        assert_eq!(flags("CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD", Names::Clone), Some(0x0120_0011));
        assert_eq!(flags("FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME", Names::FutexOp), Some(9 | 128 | 256));
        assert_eq!(flags("FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1", Names::FutexVal3), Some(4 << 24 | 1));
        assert_eq!(flags("0x7 /* P_??? */", Names::WaitidType), Some(7));
        assert_eq!(flags("MAP_NOPE", Names::Mmap), None);
        assert_eq!(flags("", Names::Mmap), None);
        assert_eq!(flags("1<<99", Names::Mmap), None);
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal("SIGKILL"), Some(9));
        assert_eq!(signal("0"), Some(0));
        assert_eq!(signal("SIGNOPE"), None);
    }

    #[test]
    fn struct_fields_and_named_arguments() {
        let rlim = "{rlim_cur=40960*1024, rlim_max=RLIM64_INFINITY}";
        assert_eq!(field(rlim, "rlim_cur"), Some("40960*1024"));
        assert_eq!(field(rlim, "rlim_max"), Some("RLIM64_INFINITY"));
        assert_eq!(field(rlim, "nope"), None);
        assert_eq!(field("{flags=CLONE_VM, exit_signal=0} => {parent_tid=[4164]}", "flags"), Some("CLONE_VM"));
        assert_eq!(named("flags=CLONE_VM|SIGCHLD"), Some(("flags", "CLONE_VM|SIGCHLD")));
        assert_eq!(named("\"a=b\""), None);
    }

    #[test]
    fn strings_are_unescaped_and_arrays_read() {
        assert_eq!(string(r#""a\"b\n\x41\101\0""#), Some(b"a\"b\nAA\0".to_vec()));
        assert_eq!(string(r#""/usr/bin/prlimit""#), Some(b"/usr/bin/prlimit".to_vec()));
        assert_eq!(string("\"cut\"..."), Some(b"cut".to_vec()));
        assert_eq!(string("0x1234"), None);
        assert_eq!(
            strings(r#"["prlimit", "--data=41943040", "./threads", "8"]"#).unwrap(),
            ["prlimit", "--data=41943040", "./threads", "8"]
        );
        assert_eq!(strings(r#"["a", ...]"#).unwrap(), ["a"]);
        assert_eq!(
            strings(r#"["sh", "-c", "for i in $(seq 300); do ls -la /"...]"#).unwrap(),
            ["sh", "-c", "for i in $(seq 300); do ls -la /..."]
        );
        assert_eq!(strings("0x7ffd0000"), None);
    }
}
