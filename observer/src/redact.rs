//! Which environment values are kept out of what observer writes: the value of every variable
//! whose name looks like it holds a secret (a broad rule), and, inside any value, the credentials
//! of a URL (`scheme://user:password@host`) and of `name=value` pairs with such a name
//! (`?password=...`, `Password=...;`). docs/security.md states the rule.

pub const REDACTED: &str = "<redacted>";

/// Parts of a name (compared case-insensitively) that mark a value secret. Broad on purpose: a
/// path hidden by mistake (`XAUTHORITY`, `KEYMAP`) costs little, a password kept costs much.
const SECRET_PARTS: [&str; 8] = ["PASS", "PWD", "SECRET", "TOKEN", "KEY", "COOKIE", "CREDENTIAL", "AUTH"];

/// Variables with a secret part that hold no secret: the working directories.
const NOT_SECRET: [&str; 2] = ["PWD", "OLDPWD"];

/// Whether a `name=value` key (`Pwd=` of a connection string too) looks like it holds a secret.
fn secret_key(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_PARTS.iter().any(|part| upper.contains(part))
}

/// Whether the environment variable `name` looks like it holds a secret.
pub fn secret_name(name: &str) -> bool {
    !NOT_SECRET.iter().any(|n| n.eq_ignore_ascii_case(name)) && secret_key(name)
}

/// The value of variable `name` as observer may write it.
pub fn value(name: &str, value: &str) -> String {
    if secret_name(name) {
        return REDACTED.to_string();
    }
    secret_pairs(&url_credentials(value))
}

/// `scheme://<redacted>@host...`: everything between `://` and the last `@` before the URL ends
/// (at whitespace or the next `://`) is the userinfo, however odd its characters.
fn url_credentials(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let end = after
            .find("://")
            .map(|next| after[..next].rfind(|c: char| !c.is_ascii_alphanumeric() && !"+-.".contains(c)).unwrap_or(0))
            .unwrap_or(after.len());
        let end = after[..end].find(char::is_whitespace).unwrap_or(end);
        match after[..end].rfind('@') {
            Some(userinfo_end) if userinfo_end > 0 => {
                out.push_str(REDACTED);
                rest = &after[userinfo_end..];
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// Characters that end a `name=value` pair inside a value (query strings, connection strings,
/// option lists).
fn ends_pair(c: char) -> bool {
    c.is_whitespace() || "&;,?".contains(c)
}

/// `name=<redacted>` for every pair in `value` whose name looks secret.
fn secret_pairs(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq].rfind(ends_pair).map_or(0, |i| i + 1);
        let value_len = rest[eq + 1..].find(ends_pair).unwrap_or(rest.len() - eq - 1);
        out.push_str(&rest[..=eq]);
        if secret_key(&rest[key_start..eq]) && value_len > 0 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[eq + 1..eq + 1 + value_len]);
        }
        rest = &rest[eq + 1 + value_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_secret_lose_their_values_whatever_their_case() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "github_token",
            "DbPassword",
            "MY_PASSWD",
            "PGPASS",
            "PGPASSWORD",
            "MYSQL_PWD",
            "SESSION_COOKIE",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "ssh_keyfile",
            "BASIC_AUTH",
            "HTTP_AUTHORIZATION",
        ] {
            assert_eq!(value(name, "s3cr3t"), REDACTED, "{name}");
        }
        for name in ["PATH", "HOME", "PWD", "OLDPWD", "LANG", "DATABASE_URL"] {
            assert_eq!(value(name, "/usr/bin"), "/usr/bin", "{name}");
        }
    }

    #[test]
    fn url_credentials_are_cut_and_the_rest_of_the_url_kept() {
        assert_eq!(value("DATABASE_URL", "postgres://app:hunter2@db/prod"), "postgres://<redacted>@db/prod");
        assert_eq!(value("REPO", "https://ghp_abc@github.com/o/r.git"), "https://<redacted>@github.com/o/r.git");
        assert_eq!(value("URL", "redis://:p@ss/w#rd@cache:6379/0"), "redis://<redacted>@cache:6379/0");
        assert_eq!(
            value("PROXIES", "http://u:p@proxy:3128,https://v:q@other:443 ftp://host/a@b"),
            "http://<redacted>@proxy:3128,https://<redacted>@other:443 ftp://<redacted>@b"
        );
        assert_eq!(value("SITE", "https://example.org/path"), "https://example.org/path");
    }

    #[test]
    fn secret_pairs_inside_values_are_cut() {
        assert_eq!(
            value("DSN", "host=db port=5432 user=app password=hunter2 sslmode=off"),
            "host=db port=5432 user=app password=<redacted> sslmode=off"
        );
        assert_eq!(value("CONN", "Server=db;Pwd=x;Database=app"), "Server=db;Pwd=<redacted>;Database=app");
        assert_eq!(
            value("HOOK", "https://h/x?user=a&access_token=t0k&page=2"),
            "https://h/x?user=a&access_token=<redacted>&page=2"
        );
        assert_eq!(value("JAVA_OPTS", "-Dkey.store.pass=abc -Xmx1g"), "-Dkey.store.pass=<redacted> -Xmx1g");
        assert_eq!(value("LS_COLORS", "rs=0:di=01;34"), "rs=0:di=01;34");
    }
}
