//! Errors that reach the user: what went wrong, where, and what to do.

use std::fmt;
use std::path::PathBuf;

/// Exit codes, as README.md documents them for every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const ENVIRONMENT: u8 = 3;
}

/// A problem in an input file, placed at a line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to do about it, e.g. a did-you-mean.
    pub help: Option<String>,
    /// The offending source line, for a caret display.
    pub source_line: Option<String>,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}:{}:{}", self.file, self.line, self.column)?;
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string().len();
            write!(f, "\n{:gutter$} |", "")?;
            write!(f, "\n{} | {}", self.line, src)?;
            write!(f, "\n{:gutter$} | {:>col$}", "", "^", col = self.column)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// Every failure the command line reports, each mapped to its exit code.
#[derive(Debug)]
pub enum Error {
    /// Bad input: a malformed or invalid file, or contradicting flags. Exit 2.
    Input(InputError),
    /// Bad command-line use not caught by clap. Exit 2.
    Usage(String),
    /// An I/O failure on a named path. Exit 3.
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    /// Would overwrite a file the user owns. Exit 2.
    WouldOverwrite(Vec<PathBuf>),
    /// The environment does not let us do the job: no Podman socket, permission denied,
    /// something that is not Podman. The message says what to do. Exit 3.
    Environment(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Usage(_) | Error::WouldOverwrite(_) => exit::USAGE,
            Error::Io { .. } | Error::Environment(_) => exit::ENVIRONMENT,
        }
    }

    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(e) => e.fmt(f),
            Error::Usage(msg) => write!(f, "error: {msg}"),
            Error::Environment(msg) => write!(f, "error: {msg}"),
            Error::Io { path, action, source } => {
                write!(f, "error: cannot {action} {}: {source}", path.display())
            }
            Error::WouldOverwrite(paths) => {
                writeln!(f, "error: refusing to overwrite existing files:")?;
                for p in paths {
                    writeln!(f, "  {}", p.display())?;
                }
                write!(
                    f,
                    "  = help: pass --force to replace them; each old file is first kept as \
                     FILE.YYYYMMDDTHHMMSSZ.bak (FILE.YYYYMMDDTHHMMSSZ.N.bak when that name is taken), \
                     and the output names every backup"
                )
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e)
    }
}
