//! `explain`: the documentation of a `check` rule, from the rule catalogue itself.

use super::Format;
use crate::error::{Error, exit};
use crate::validate::rules::{self, CATALOGUE};
use clap::Args;

/// Explain a `check` rule: what it checks, why it matters, an example and the fix.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule code (e.g. P101) or name (e.g. fs-options-differ).
    #[arg(required_unless_present = "list")]
    pub code: Option<String>,

    /// List every rule with its code, severity and a one-line summary.
    #[arg(long, conflicts_with = "code")]
    pub list: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: ExplainArgs) -> Result<u8, Error> {
    if args.list {
        match args.format {
            Format::Human => {
                for r in CATALOGUE {
                    println!("{}  {:<7}  {:<28} {}", r.code, r.severity.as_str(), r.name, r.summary());
                }
            }
            Format::Json => {
                let list: Vec<_> = CATALOGUE
                    .iter()
                    .map(|r| {
                        serde_json::json!({"code": r.code, "name": r.name, "severity": r.severity, "summary": r.summary()})
                    })
                    .collect();
                println!("{}", serde_json::json!({ "rules": list }));
            }
        }
        return Ok(exit::OK);
    }
    let wanted = args.code.unwrap_or_default();
    let Some(rule) = rules::find(&wanted) else {
        let names = CATALOGUE.iter().flat_map(|r| [r.code, r.name]);
        let hint = crate::suggest::did_you_mean(&wanted, names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(Error::Usage(format!("no rule `{wanted}`{hint}; `explain --list` lists them")));
    };
    match args.format {
        Format::Human => {
            println!("{} {} ({})\n\n{}", rule.code, rule.name, rule.severity, rule.explanation())
        }
        Format::Json => println!(
            "{}",
            serde_json::json!({"code": rule.code, "name": rule.name, "severity": rule.severity, "doc": rule.explanation()})
        ),
    }
    Ok(exit::OK)
}
