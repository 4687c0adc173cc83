//! A finding of `check`: rule code, severity, message, where, and what to do.

use super::source::SourceFile;
pub use crate::diagnostic::Severity;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// The file it is about; `None` for findings about the live host.
    pub file: Option<String>,
    /// 1-based; 0 when the finding has no place in a file.
    pub line: usize,
    pub column: usize,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a byte offset of `source` (or at its start when `offset` is `None`).
    pub fn at(
        code: &'static str,
        severity: Severity,
        source: &SourceFile,
        offset: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = source.position(offset.unwrap_or(0));
        Diagnostic {
            code,
            severity,
            message: message.into(),
            file: Some(source.path.clone()),
            line,
            column,
            help: None,
        }
    }

    /// A diagnostic about the running host rather than a file.
    pub fn live(code: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic { code, severity, message: message.into(), file: None, line: 0, column: 0, help: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// rustc-style text: `error[P101]: message`, the place, the source line with a caret,
/// and the help.
pub fn render_human(d: &Diagnostic, sources: &[&SourceFile]) -> String {
    let mut out = format!("{}[{}]: {}\n", d.severity, d.code, d.message);
    if let Some(file) = &d.file {
        let _ = writeln!(out, "  --> {file}:{}:{}", d.line, d.column);
        if let Some(src) = sources.iter().find(|s| &s.path == file) {
            let text = src.line_text(d.line);
            let gutter = d.line.to_string().len();
            let _ = writeln!(out, "{:gutter$} |", "");
            let _ = writeln!(out, "{} | {text}", d.line);
            let _ = writeln!(out, "{:gutter$} | {:>col$}", "", "^", col = d.column.max(1));
        }
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "  = help: {help}");
    }
    out
}
