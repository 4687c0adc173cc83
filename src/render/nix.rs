//! A small writer for Nix values whose output is already in alejandra's format, so that
//! running the formatter over a generated file changes nothing.

use std::fmt::Write;

/// A Nix value as we generate it.
#[derive(Debug, Clone, PartialEq)]
pub enum Nix {
    Str(String),
    Int(i64),
    List(Vec<Nix>),
    /// Attributes in order, each with optional comment lines above it.
    Attrs(Vec<Attr>),
    /// An indented string (`'' … ''`), written one line per line.
    Lines(String),
    /// Verbatim Nix, for references such as `lib.mkForce "x"` (never user input).
    Raw(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub comments: Vec<String>,
    /// The attribute path, e.g. `["disko", "devices"]` for `disko.devices`.
    pub path: Vec<String>,
    pub value: Nix,
}

impl Attr {
    pub fn new(path: &str, value: Nix) -> Self {
        Attr { comments: Vec::new(), path: path.split('.').map(String::from).collect(), value }
    }

    /// An attribute whose single key is taken literally (it may contain dots).
    pub fn key(key: &str, value: Nix) -> Self {
        Attr { comments: Vec::new(), path: vec![key.to_string()], value }
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comments.push(comment.into());
        self
    }
}

pub fn s(text: impl Into<String>) -> Nix {
    Nix::Str(text.into())
}

pub fn list_of_strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Nix {
    Nix::List(items.into_iter().map(|i| Nix::Str(i.into())).collect())
}

/// A Nix string literal with everything that Nix would interpret escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_identifier(key: &str) -> bool {
    const KEYWORDS: &[&str] = &["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"];
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&key)
}

fn key(k: &str) -> String {
    if is_identifier(k) { k.to_string() } else { quote(k) }
}

/// Writes `value` as a whole file (top-level value, trailing newline).
pub fn to_file(header: &[String], value: &Nix) -> String {
    let mut out = String::new();
    for line in header {
        comment_line(&mut out, 0, line);
    }
    write_value(&mut out, value, 0);
    out.push('\n');
    out
}

fn comment_line(out: &mut String, indent: usize, line: &str) {
    pad(out, indent);
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        let _ = writeln!(out, "# {line}");
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn is_scalar(v: &Nix) -> bool {
    matches!(v, Nix::Str(_) | Nix::Int(_) | Nix::Raw(_))
}

fn write_value(out: &mut String, value: &Nix, indent: usize) {
    match value {
        Nix::Str(t) => out.push_str(&quote(t)),
        Nix::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Nix::Raw(r) => out.push_str(r),
        Nix::List(items) if items.is_empty() => out.push_str("[]"),
        // alejandra keeps a list of one scalar on one line and breaks all longer ones.
        Nix::List(items) if items.len() == 1 && is_scalar(&items[0]) => {
            out.push('[');
            write_value(out, &items[0], indent);
            out.push(']');
        }
        Nix::List(items) => {
            out.push_str("[\n");
            for item in items {
                pad(out, indent + 2);
                write_value(out, item, indent + 2);
                out.push('\n');
            }
            pad(out, indent);
            out.push(']');
        }
        Nix::Attrs(attrs) if attrs.is_empty() => out.push_str("{}"),
        Nix::Attrs(attrs) => {
            out.push_str("{\n");
            for a in attrs {
                for c in &a.comments {
                    comment_line(out, indent + 2, c);
                }
                pad(out, indent + 2);
                let path: Vec<String> = a.path.iter().map(|k| key(k)).collect();
                out.push_str(&path.join("."));
                out.push_str(" = ");
                write_value(out, &a.value, indent + 2);
                out.push_str(";\n");
            }
            pad(out, indent);
            out.push('}');
        }
        Nix::Lines(text) => {
            out.push_str("''\n");
            for line in text.lines() {
                if !line.trim().is_empty() {
                    pad(out, indent + 2);
                    out.push_str(&escape_indented(line));
                }
                out.push('\n');
            }
            pad(out, indent);
            out.push_str("''");
        }
    }
}

/// Escapes the two sequences an indented string interprets: `''` and `${`.
fn escape_indented(line: &str) -> String {
    line.replace("''", "'''").replace("${", "''${")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_nix_would_interpret() {
        assert_eq!(quote(r#"a"b\c${d}$e"#), r#""a\"b\\c\${d}$e""#);
        assert_eq!(key("@root"), "\"@root\"");
        assert_eq!(key("ESP"), "ESP");
        assert_eq!(key("in"), "\"in\"");
    }

    #[test]
    fn escapes_indented_strings() {
        assert_eq!(escape_indented("echo ${x} ''"), "echo ''${x} '''");
    }
}
