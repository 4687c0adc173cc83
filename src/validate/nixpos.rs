//! Reading a Nix file without evaluating it: where every attribute is written, by its
//! attribute path from the file's value, and the value of the literal subset.
//!
//! One walk over the rnix syntax tree does both. It follows what a disko.nix typically
//! uses around its literal attribute sets: a function header (`{ lib, ... }:`), `let … in`,
//! `rec`, `//`, parentheses, identifiers bound by `let`, `rec` or a defaulted formal, and
//! the `lib.mkDefault`-style wrappers. Whatever needs real evaluation (calls, imports,
//! conditions on unknown values) becomes `null` in the value and records no positions.

use rnix::ast::{self, AstNode, AstToken, HasEntry, InterpolPart};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

/// A syntax error: where the parser stopped, what it found, and what would help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the source.
    pub offset: usize,
    pub message: String,
    pub help: Option<String>,
}

/// What a static read of a Nix file found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Attribute path (and list index, as a decimal string) → byte offset of the key (or
    /// of the list element).
    pub positions: BTreeMap<Vec<String>, usize>,
    /// The file's value as far as it is literal; `null` wherever it is not.
    pub value: Value,
    /// Whether the file is a function (`{ lib, ... }: …`).
    pub is_function: bool,
    /// The named arguments of the file's function: name, offset in its header, and
    /// whether it has a default.
    pub formals: Vec<Formal>,
}

/// One named argument of a function header (`disk` in `{ disk, lib ? null, ... }:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formal {
    pub name: String,
    pub offset: usize,
    pub has_default: bool,
}

/// Parses `text`; the first syntax error, if any. Deep input needs a deep stack: prefer
/// [`analyse_text`], which checks the input's shape and parses on a thread of its own.
pub fn parse(text: &str) -> Result<ast::Root, SyntaxError> {
    let parse = rnix::Root::parse(text);
    match parse.errors().first() {
        None => Ok(parse.tree()),
        Some(e) => Err(syntax_error(text, e)),
    }
}

/// Stack of the thread that parses and reads a file: the parser recurses once per nesting
/// level (up to 512) and once per operator of a right-associative chain.
const PARSE_STACK: usize = 64 << 20;

/// Parses and reads `text` on a thread with a stack deep enough for any input that
/// passes `check_shape`.
pub fn analyse_text(text: &str) -> Result<Analysis, SyntaxError> {
    check_shape(text)?;
    let work = || parse(text).map(|root| analyse(&root));
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("nix-parse".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, work)
        {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(SyntaxError {
                    offset: 0,
                    message: "internal error while reading the file".into(),
                    help: Some("please report this with the file".into()),
                })
            }),
            // No thread to be had: the shape check keeps the recursion modest.
            Err(_) => work(),
        }
    })
}

/// Tokens one chain of operators, selections, applications or negations may have at one
/// level; the parser needs stack, and for some shapes time, in proportion to it.
const MAX_CHAIN: usize = 1000;
/// The same, summed over the levels open at any point.
const MAX_OPEN_CHAIN: usize = 4000;
/// Brackets, strings and interpolations open at once.
const MAX_NESTING: usize = 400;
/// Characters in a run of letters, digits and `_.+-`.
const MAX_WORD: usize = 8 * 1024;

/// Rejects input whose shape would make the parser recurse past its stack or take
/// quadratic time: very long operator or application chains, or very deep nesting. No
/// disko configuration comes near these limits.
fn check_shape(text: &str) -> Result<(), SyntaxError> {
    use SyntaxKind::*;
    // The tokenizer looks ahead over every run of path characters for each token in it.
    let mut run_start = 0;
    for (i, c) in text.char_indices() {
        if !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '+' | '-') {
            run_start = i + c.len_utf8();
        } else if i - run_start >= MAX_WORD {
            return Err(SyntaxError {
                offset: run_start,
                message: format!("the file has a word longer than {MAX_WORD} characters"),
                help: None,
            });
        }
    }
    // Per open level: its opener and the chain length of the enclosing level.
    let mut stack: Vec<(SyntaxKind, usize)> = Vec::new();
    let mut open_sum = 0usize;
    let mut run = 0usize;
    let mut last_was_atom = false;
    let mut offset = 0usize;
    for (kind, tok) in rnix::tokenize(text) {
        let at = offset;
        offset += tok.len();
        let in_list = stack.last().is_some_and(|(k, _)| *k == TOKEN_L_BRACK);
        match kind {
            TOKEN_WHITESPACE | TOKEN_COMMENT => continue,
            TOKEN_L_BRACE | TOKEN_L_BRACK | TOKEN_L_PAREN | TOKEN_INTERPOL_START | TOKEN_STRING_START => {
                // The group is one atom of the enclosing chain.
                run = if in_list && last_was_atom { 1 } else { run + 1 };
                if run > MAX_CHAIN || open_sum + run > MAX_OPEN_CHAIN {
                    return Err(too_long(at));
                }
                stack.push((kind, run));
                open_sum += run;
                run = 0;
                last_was_atom = false;
                if stack.len() > MAX_NESTING {
                    return Err(SyntaxError {
                        offset: at,
                        message: format!("the expression nests more than {MAX_NESTING} levels deep"),
                        help: None,
                    });
                }
                continue;
            }
            TOKEN_R_BRACE | TOKEN_R_BRACK | TOKEN_R_PAREN | TOKEN_INTERPOL_END | TOKEN_STRING_END => {
                if let Some((_, saved)) = stack.pop() {
                    open_sum -= saved;
                    run = saved;
                }
                last_was_atom = true;
                continue;
            }
            TOKEN_SEMICOLON | TOKEN_COMMA | TOKEN_ASSIGN | TOKEN_COLON | TOKEN_IN | TOKEN_THEN
            | TOKEN_ELSE | TOKEN_ASSERT | TOKEN_WITH | TOKEN_IF | TOKEN_LET | TOKEN_INHERIT | TOKEN_AT
            | TOKEN_ELLIPSIS => {
                run = 0;
                last_was_atom = false;
            }
            TOKEN_STRING_CONTENT => continue,
            _ => {
                let atom = matches!(
                    kind,
                    TOKEN_IDENT
                        | TOKEN_INTEGER
                        | TOKEN_FLOAT
                        | TOKEN_URI
                        | TOKEN_PATH_ABS
                        | TOKEN_PATH_REL
                        | TOKEN_PATH_HOME
                        | TOKEN_PATH_SEARCH
                        | TOKEN_CUR_POS
                );
                // List elements are siblings, not a chain.
                run = if in_list && atom && last_was_atom { 1 } else { run + 1 };
                last_was_atom = atom;
            }
        }
        if run > MAX_CHAIN || open_sum + run > MAX_OPEN_CHAIN {
            return Err(too_long(at));
        }
    }
    Ok(())
}

fn too_long(offset: usize) -> SyntaxError {
    SyntaxError {
        offset,
        message: format!(
            "the expression is too long to read: more than {MAX_CHAIN} operators, selections or arguments \
             in a row"
        ),
        help: Some("split it with `let` bindings".into()),
    }
}

/// Reads a parsed file: positions and the literal value.
pub fn analyse(root: &ast::Root) -> Analysis {
    let mut w = Walker::default();
    let mut env: Env = None;
    let mut expr = root.expr();
    let mut is_function = false;
    let mut formals = Vec::new();
    // `{ lib, disks ? [ … ], ... }: BODY`, possibly curried.
    while let Some(ast::Expr::Lambda(lambda)) = &expr {
        if !is_function && let Some(ast::Param::Pattern(p)) = lambda.param() {
            for entry in p.pat_entries() {
                let Some(ident) = entry.ident() else { continue };
                formals.push(Formal {
                    name: ident_name(&ident),
                    offset: offset_of(&ident),
                    has_default: entry.default().is_some(),
                });
            }
        }
        is_function = true;
        env = Some(Rc::new(lambda_scope(lambda, env)));
        expr = lambda.body();
    }
    let value = match expr {
        Some(e) => without_patterns(w.walk(&e, &env, &mut Vec::new())),
        None => Value::Null,
    };
    Analysis { positions: w.positions, value, is_function, formals }
}

// ---------------------------------------------------------------------------------------
// Syntax errors

fn syntax_error(text: &str, e: &rnix::ParseError) -> SyntaxError {
    use rnix::ParseError as P;
    let start = |r: &TextRange| usize::from(r.start()).min(text.len());
    let snippet = |r: &TextRange| {
        let s = text.get(usize::from(r.start())..usize::from(r.end())).unwrap_or("");
        let s: String = s.chars().take(40).collect();
        if s.trim().is_empty() { "whitespace".to_string() } else { format!("`{}`", s.trim()) }
    };
    match e {
        P::Unexpected(r) => SyntaxError {
            offset: start(r),
            message: format!("syntax error: unexpected {}", snippet(r)),
            help: None,
        },
        P::UnexpectedExtra(r) => SyntaxError {
            offset: start(r),
            message: format!("syntax error: unexpected {} after the end of the expression", snippet(r)),
            help: Some(if snippet(r).starts_with("`}") || snippet(r).starts_with("`]") {
                "a closing bracket without an opening one: remove it or add the missing opener".into()
            } else {
                "a Nix file holds exactly one expression".into()
            }),
        },
        P::UnexpectedWanted(_, r, wanted) => SyntaxError {
            offset: start(r),
            message: format!("syntax error: unexpected {}, expected {}", snippet(r), kinds_list(wanted)),
            help: None,
        },
        P::UnexpectedDoubleBind(r) => SyntaxError {
            offset: start(r),
            message: "syntax error: the function's argument set is bound twice (`@`)".into(),
            help: None,
        },
        P::DuplicatedArgs(r, name) => SyntaxError {
            offset: start(r),
            message: format!("syntax error: argument `{name}` is duplicated"),
            help: None,
        },
        P::UnexpectedEOF | P::UnexpectedEOFWanted(_) => {
            let wanted = match e {
                P::UnexpectedEOFWanted(k) => format!(", expected {}", kinds_list(k)),
                _ => String::new(),
            };
            match unclosed_opener(text) {
                Some((offset, opener)) => SyntaxError {
                    offset,
                    message: format!("syntax error: unexpected end of file{wanted}"),
                    help: Some(format!("this `{opener}` is never closed")),
                },
                None => SyntaxError {
                    offset: end_of_last_token(text),
                    message: format!("syntax error: unexpected end of file{wanted}"),
                    help: None,
                },
            }
        }
        P::RecursionLimitExceeded => SyntaxError {
            offset: 0,
            message: "syntax error: the expression is nested too deeply to read".into(),
            help: None,
        },
        other => SyntaxError { offset: 0, message: format!("syntax error: {other}"), help: None },
    }
}

fn kinds_list(kinds: &[SyntaxKind]) -> String {
    let mut names: Vec<String> = kinds.iter().map(|k| kind_name(*k)).collect();
    names.dedup();
    match names.len() {
        0 => "something else".into(),
        1 => names.remove(0),
        _ => format!("one of {}", names.join(", ")),
    }
}

fn kind_name(kind: SyntaxKind) -> String {
    use SyntaxKind::*;
    let s = match kind {
        TOKEN_SEMICOLON => "`;`",
        TOKEN_ASSIGN => "`=`",
        TOKEN_L_BRACE => "`{`",
        TOKEN_R_BRACE => "`}`",
        TOKEN_L_BRACK => "`[`",
        TOKEN_R_BRACK => "`]`",
        TOKEN_L_PAREN => "`(`",
        TOKEN_R_PAREN => "`)`",
        TOKEN_COLON => "`:`",
        TOKEN_COMMA => "`,`",
        TOKEN_DOT => "`.`",
        TOKEN_IN => "`in`",
        TOKEN_THEN => "`then`",
        TOKEN_ELSE => "`else`",
        TOKEN_IDENT => "an identifier",
        TOKEN_STRING_END => "the end of the string",
        TOKEN_INTERPOL_END => "`}` closing `${`",
        TOKEN_STRING_START => "a string",
        TOKEN_INTEGER | TOKEN_FLOAT => "a number",
        TOKEN_PATH_ABS | TOKEN_PATH_REL | TOKEN_PATH_HOME | TOKEN_PATH_SEARCH => "a path",
        TOKEN_URI => "a URI",
        TOKEN_REC => "`rec`",
        TOKEN_LET => "`let`",
        TOKEN_IF => "`if`",
        TOKEN_WITH => "`with`",
        TOKEN_ASSERT => "`assert`",
        TOKEN_INHERIT => "`inherit`",
        TOKEN_OR => "`or`",
        TOKEN_QUESTION => "`?`",
        TOKEN_AT => "`@`",
        TOKEN_ELLIPSIS => "`...`",
        TOKEN_INVERT => "`!`",
        TOKEN_SUB => "`-`",
        other => {
            let name = format!("{other:?}");
            let name = name.trim_start_matches("TOKEN_").trim_start_matches("NODE_");
            return name.to_lowercase().replace('_', " ");
        }
    };
    s.to_string()
}

/// The innermost bracket still open at the end of the file, with its offset.
fn unclosed_opener(text: &str) -> Option<(usize, &'static str)> {
    use SyntaxKind::*;
    let mut stack: Vec<(usize, SyntaxKind)> = Vec::new();
    let mut offset = 0;
    for (kind, tok) in rnix::tokenize(text) {
        match kind {
            TOKEN_L_BRACE | TOKEN_L_BRACK | TOKEN_L_PAREN | TOKEN_INTERPOL_START => {
                stack.push((offset, kind))
            }
            TOKEN_R_BRACE | TOKEN_R_BRACK | TOKEN_R_PAREN | TOKEN_INTERPOL_END => {
                stack.pop();
            }
            TOKEN_STRING_START => stack.push((offset, kind)),
            TOKEN_STRING_END if stack.last().is_some_and(|(_, k)| *k == TOKEN_STRING_START) => {
                stack.pop();
            }
            _ => {}
        }
        offset += tok.len();
    }
    let (offset, kind) = stack.pop()?;
    let name = match kind {
        TOKEN_L_BRACE => "{",
        TOKEN_L_BRACK => "[",
        TOKEN_L_PAREN => "(",
        TOKEN_INTERPOL_START => "${",
        _ => match text.get(offset..offset + 2) {
            Some("''") => "''",
            _ => "\"",
        },
    };
    Some((offset, name))
}

fn end_of_last_token(text: &str) -> usize {
    text.trim_end().len()
}

// ---------------------------------------------------------------------------------------
// Scopes

type Env = Option<Rc<Scope>>;

/// Names bound by one `let`, `rec` or function header.
struct Scope {
    vars: HashMap<String, Var>,
    parent: Env,
}

enum Var {
    /// The `let`/`rec` bindings whose first key is this name (usually one), evaluated in
    /// the scope that holds them.
    Items(Vec<Item>),
    /// A function argument with a default, evaluated in the function's scope.
    Default(ast::Expr),
    /// A function argument without a default: not known statically.
    Unknown,
}

/// One binding of an attribute set or `let`: `a.b.c = VALUE;` or an inherited name.
#[derive(Clone)]
struct Item {
    keys: Vec<Key>,
    value: ItemValue,
}

#[derive(Clone)]
struct Key {
    name: String,
    offset: usize,
}

#[derive(Clone)]
enum ItemValue {
    Expr(ast::Expr),
    /// `inherit name;`: the name from the enclosing scope.
    Inherit,
    /// `inherit (from) name;`
    InheritFrom(ast::Expr),
}

/// The syntax node of an AST node (the method's trait comes from rowan, through rnix's).
fn syn<N: AstNode>(node: &N) -> &SyntaxNode {
    node.syntax()
}

fn offset_of(node: &impl AstNode) -> usize {
    usize::from(syn(node).text_range().start())
}

fn items_of(node: &impl HasEntry) -> Vec<Item> {
    let mut items = Vec::new();
    for entry in node.entries() {
        match entry {
            ast::Entry::AttrpathValue(apv) => {
                let (Some(path), Some(value)) = (apv.attrpath(), apv.value()) else { continue };
                let keys: Option<Vec<Key>> = path.attrs().map(|a| key_of(&a)).collect();
                if let Some(keys) = keys.filter(|k| !k.is_empty()) {
                    items.push(Item { keys, value: ItemValue::Expr(value) });
                }
            }
            ast::Entry::Inherit(inherit) => {
                let from = inherit.from().and_then(|f| f.expr());
                for attr in inherit.attrs() {
                    if let Some(key) = key_of(&attr) {
                        let value = match &from {
                            Some(f) => ItemValue::InheritFrom(f.clone()),
                            None => ItemValue::Inherit,
                        };
                        items.push(Item { keys: vec![key], value });
                    }
                }
            }
        }
    }
    items
}

/// Stands for an interpolation in the name of an interpolated key (`"${name}-root"` is
/// `"\0-root"`): such keys have positions (matched with [`matches_key`]) but no value.
pub const INTERPOLATED: char = '\0';

/// The name of a key; an interpolated one as a pattern with [`INTERPOLATED`].
fn key_of(attr: &ast::Attr) -> Option<Key> {
    let name = attr_name(attr).or_else(|| key_pattern(attr))?;
    Some(Key { name, offset: offset_of(attr) })
}

/// An interpolated key's literal parts, with [`INTERPOLATED`] for each interpolation.
fn key_pattern(attr: &ast::Attr) -> Option<String> {
    let s = match attr {
        ast::Attr::Str(s) => s.clone(),
        ast::Attr::Dynamic(d) => match d.expr()? {
            ast::Expr::Str(s) => s,
            _ => return Some(INTERPOLATED.to_string()),
        },
        ast::Attr::Ident(_) => return None,
    };
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            InterpolPart::Literal(l) => out.push_str(&l.replace(INTERPOLATED, "")),
            InterpolPart::Interpolation(_) => out.push(INTERPOLATED),
        }
    }
    Some(out)
}

/// Whether an attribute name matches a key pattern (each [`INTERPOLATED`] matches any text).
pub fn matches_key(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split(INTERPOLATED).collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The value without the attributes whose names are interpolation patterns: what they
/// are called is only known by evaluation.
fn without_patterns(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| !k.contains(INTERPOLATED))
                .map(|(k, v)| (k, without_patterns(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_patterns).collect()),
        other => other,
    }
}

fn attr_name(attr: &ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(i) => Some(ident_name(i)),
        ast::Attr::Str(s) => literal_string(s),
        ast::Attr::Dynamic(d) => match d.expr()? {
            ast::Expr::Str(s) => literal_string(&s),
            _ => None,
        },
    }
}

fn ident_name(i: &ast::Ident) -> String {
    match i.ident_token() {
        Some(t) => t.text().to_string(),
        None => syn(i).text().to_string(),
    }
}

/// A string without interpolation.
fn literal_string(s: &ast::Str) -> Option<String> {
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            InterpolPart::Literal(l) => out.push_str(&l),
            InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}

/// The scope of `let` or `rec { }`: each first key name → its bindings.
fn item_scope(items: &[Item], parent: Env) -> Scope {
    let mut vars: HashMap<String, Var> = HashMap::new();
    for item in items {
        let name = item.keys[0].name.clone();
        match vars.entry(name).or_insert_with(|| Var::Items(Vec::new())) {
            Var::Items(v) => v.push(item.clone()),
            _ => unreachable!("item scopes hold only items"),
        }
    }
    Scope { vars, parent }
}

fn lambda_scope(lambda: &ast::Lambda, parent: Env) -> Scope {
    let mut vars = HashMap::new();
    match lambda.param() {
        Some(ast::Param::Pattern(p)) => {
            for entry in p.pat_entries() {
                let Some(ident) = entry.ident() else { continue };
                let var = match entry.default() {
                    Some(d) => Var::Default(d),
                    None => Var::Unknown,
                };
                vars.insert(ident_name(&ident), var);
            }
            if let Some(bind) = p.pat_bind().and_then(|b| b.ident()) {
                vars.insert(ident_name(&bind), Var::Unknown);
            }
        }
        Some(ast::Param::IdentParam(p)) => {
            if let Some(i) = p.ident() {
                vars.insert(ident_name(&i), Var::Unknown);
            }
        }
        None => {}
    }
    Scope { vars, parent }
}

fn lookup<'a>(env: &'a Env, name: &str) -> Option<(&'a Rc<Scope>, &'a Var)> {
    let mut cur = env.as_ref();
    while let Some(scope) = cur {
        if let Some(var) = scope.vars.get(name) {
            return Some((scope, var));
        }
        cur = scope.parent.as_ref();
    }
    None
}

/// Something whose value can be walked: an expression in a scope, or the bindings that
/// share a key prefix (`a.b = …; a.c = …;` seen from `a`).
#[derive(Clone)]
enum Target {
    Expr(ast::Expr, Env),
    Group {
        items: Vec<Item>,
        /// Index of the key these items share; their value starts after it.
        depth: usize,
        env: Env,
        /// Where `inherit name;` looks.
        outer: Env,
    },
}

impl Target {
    /// Identity for cycle detection.
    fn id(&self) -> (usize, usize, usize) {
        match self {
            Target::Expr(e, env) => (offset_of(e), usize::from(syn(e).text_range().end()), env_id(env)),
            Target::Group { items, depth, env, .. } => {
                (items.first().map_or(0, |i| i.keys[0].offset), *depth + 1_000_000, env_id(env))
            }
        }
    }
}

fn env_id(env: &Env) -> usize {
    env.as_ref().map_or(0, |s| Rc::as_ptr(s) as usize)
}

// ---------------------------------------------------------------------------------------
// The walk

/// Nesting deeper than this reads as `null` (the parser already stops at 512).
const MAX_DEPTH: usize = 160;
/// Steps of the walk; beyond, everything reads as `null` (guards against exponential
/// sharing such as `let a = [x x]; b = [a a]; …`).
const MAX_STEPS: usize = 500_000;
/// Positions are recorded down to this path length (disko's deepest useful paths have
/// about 15 components).
const MAX_RECORDED_DEPTH: usize = 48;

#[derive(Default)]
struct Walker {
    positions: BTreeMap<Vec<String>, usize>,
    /// False while computing a value only (a condition, the base of a selection).
    quiet: bool,
    depth: usize,
    steps: usize,
    active: HashSet<(usize, usize, usize)>,
}

/// Functions whose (last) argument is the value: `lib.mkDefault X` and friends.
const TRANSPARENT_1: &[&str] = &[
    "mkDefault",
    "mkForce",
    "mkOptionDefault",
    "mkImageMediaOverride",
    "mkVMOverride",
    "mkBefore",
    "mkAfter",
];
const TRANSPARENT_2: &[&str] = &["mkOverride", "mkOrder"];

impl Walker {
    fn record(&mut self, path: &[String], offset: usize) {
        if !self.quiet && path.len() <= MAX_RECORDED_DEPTH {
            self.positions.entry(path.to_vec()).or_insert(offset);
        }
    }

    /// The value of a target, recording positions below `path`; a target already being
    /// walked (a cycle) is `null`.
    fn walk_target(&mut self, t: &Target, path: &mut Vec<String>) -> Value {
        let id = t.id();
        if !self.active.insert(id) {
            return Value::Null;
        }
        let v = match t {
            Target::Expr(e, env) => self.walk(e, env, path),
            Target::Group { items, depth, env, outer } => self.group_value(items, *depth, env, outer, path),
        };
        self.active.remove(&id);
        v
    }

    fn walk(&mut self, expr: &ast::Expr, env: &Env, path: &mut Vec<String>) -> Value {
        self.steps += 1;
        if self.depth >= MAX_DEPTH || self.steps > MAX_STEPS {
            return Value::Null;
        }
        self.depth += 1;
        let v = self.walk_inner(expr, env, path);
        self.depth -= 1;
        v
    }

    fn walk_inner(&mut self, expr: &ast::Expr, env: &Env, path: &mut Vec<String>) -> Value {
        match expr {
            ast::Expr::Paren(p) => self.walk_opt(p.expr(), env, path),
            ast::Expr::Root(r) => self.walk_opt(r.expr(), env, path),
            ast::Expr::AttrSet(set) => {
                let items = items_of(set);
                if set.rec_token().is_some() {
                    let scope: Env = Some(Rc::new(item_scope(&items, env.clone())));
                    self.walk_items(&items, 0, &scope, env, path)
                } else {
                    self.walk_items(&items, 0, env, env, path)
                }
            }
            ast::Expr::LetIn(l) => {
                let items = items_of(l);
                let scope: Env = Some(Rc::new(item_scope(&items, env.clone())));
                self.walk_opt(l.body(), &scope, path)
            }
            ast::Expr::List(list) => Value::Array(self.walk_list(list, env, path, 0)),
            ast::Expr::Str(s) => Value::String(self.string_value(s, env)),
            ast::Expr::Literal(l) => literal_value(l),
            ast::Expr::Ident(i) => {
                let name = ident_name(i);
                match self.resolve_ident(&name, env) {
                    Some(t) => self.walk_target(&t, path),
                    None if lookup(env, &name).is_some() => Value::Null,
                    None => match name.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => Value::Null,
                    },
                }
            }
            ast::Expr::Select(sel) => self.walk_select(sel, env, path),
            ast::Expr::Apply(apply) => self.walk_apply(apply, env, path),
            ast::Expr::BinOp(op) => self.walk_binop(op, env, path),
            ast::Expr::UnaryOp(op) => {
                let v = self.quietly(|w| w.walk_opt(op.expr(), env, &mut Vec::new()));
                match (op.operator(), v) {
                    (Some(ast::UnaryOpKind::Invert), Value::Bool(b)) => Value::Bool(!b),
                    (Some(ast::UnaryOpKind::Negate), Value::Number(n)) => {
                        if let Some(i) = n.as_i64() {
                            i.checked_neg().map_or(Value::Null, Value::from)
                        } else {
                            n.as_f64().map_or(Value::Null, |f| Value::from(-f))
                        }
                    }
                    _ => Value::Null,
                }
            }
            // A nested function (a NixOS module written as one) reads as its body, as the
            // file's own function does: that is where its attributes are written.
            ast::Expr::Lambda(l) => {
                let scope: Env = Some(Rc::new(lambda_scope(l, env.clone())));
                self.walk_opt(l.body(), &scope, path)
            }
            ast::Expr::With(w) => self.walk_opt(w.body(), env, path),
            ast::Expr::Assert(a) => self.walk_opt(a.body(), env, path),
            ast::Expr::IfElse(ie) => {
                let cond = self.quietly(|w| w.walk_opt(ie.condition(), env, &mut Vec::new()));
                match cond {
                    Value::Bool(true) => self.walk_opt(ie.body(), env, path),
                    Value::Bool(false) => self.walk_opt(ie.else_body(), env, path),
                    // Either branch may be the value: no positions, as for any unknown.
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        }
    }

    fn walk_opt(&mut self, expr: Option<ast::Expr>, env: &Env, path: &mut Vec<String>) -> Value {
        match expr {
            Some(e) => self.walk(&e, env, path),
            None => Value::Null,
        }
    }

    fn quietly<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let was = std::mem::replace(&mut self.quiet, true);
        let v = f(self);
        self.quiet = was;
        v
    }

    fn walk_list(&mut self, list: &ast::List, env: &Env, path: &mut Vec<String>, base: usize) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, item) in list.items().enumerate() {
            path.push((base + i).to_string());
            self.record(path, offset_of(&item));
            out.push(self.walk(&item, env, path));
            path.pop();
        }
        out
    }

    /// The attribute set made by `items` from key index `depth` on.
    fn walk_items(
        &mut self,
        items: &[Item],
        depth: usize,
        env: &Env,
        outer: &Env,
        path: &mut Vec<String>,
    ) -> Value {
        let mut order: Vec<&str> = Vec::new();
        let mut groups: HashMap<&str, Vec<Item>> = HashMap::new();
        for item in items.iter().filter(|i| i.keys.len() > depth) {
            let name = item.keys[depth].name.as_str();
            groups
                .entry(name)
                .or_insert_with(|| {
                    order.push(name);
                    Vec::new()
                })
                .push(item.clone());
        }
        let mut map = Map::new();
        for name in order {
            let group = &groups[name];
            path.push(name.to_string());
            self.record(path, group[0].keys[depth].offset);
            let t = Target::Group { items: group.clone(), depth, env: env.clone(), outer: outer.clone() };
            let v = self.walk_target(&t, path);
            path.pop();
            map.insert(name.to_string(), v);
        }
        Value::Object(map)
    }

    /// The value of items that share their key at `depth`: a direct value, the nested
    /// keys below it, or both merged (`a = { x = 1; }; a.y = 2;`).
    fn group_value(
        &mut self,
        items: &[Item],
        depth: usize,
        env: &Env,
        outer: &Env,
        path: &mut Vec<String>,
    ) -> Value {
        let direct = items.iter().find(|i| i.keys.len() == depth + 1);
        let nested: Vec<Item> = items.iter().filter(|i| i.keys.len() > depth + 1).cloned().collect();
        let mut value = match direct {
            Some(item) => match &item.value {
                ItemValue::Expr(e) => self.walk(e, env, path),
                ItemValue::Inherit => match self.resolve_ident(&item.keys[depth].name, outer) {
                    Some(t) => self.walk_target(&t, path),
                    None => Value::Null,
                },
                ItemValue::InheritFrom(from) => {
                    let name = item.keys[depth].name.clone();
                    self.select_value(from, env, &[name], None, path)
                }
            },
            None => Value::Object(Map::new()),
        };
        if !nested.is_empty() {
            let sub = self.walk_items(&nested, depth + 1, env, outer, path);
            if let (Value::Object(m), Value::Object(s)) = (&mut value, sub) {
                for (k, v) in s {
                    m.entry(k).or_insert(v);
                }
            }
        }
        value
    }

    fn resolve_ident(&mut self, name: &str, env: &Env) -> Option<Target> {
        let (scope, var) = lookup(env, name)?;
        let scope_env: Env = Some(scope.clone());
        match var {
            Var::Items(items) => Some(Target::Group {
                items: items.clone(),
                depth: 0,
                env: scope_env,
                outer: scope.parent.clone(),
            }),
            Var::Default(e) => Some(Target::Expr(e.clone(), scope_env)),
            Var::Unknown => None,
        }
    }

    /// Finds, in the syntax tree, the expression `attrs` selects from `t`.
    fn resolve(&mut self, t: Target, attrs: &[String], fuel: usize) -> Option<Target> {
        if attrs.is_empty() {
            return Some(t);
        }
        let fuel = fuel.checked_sub(1)?;
        match t {
            Target::Expr(e, env) => match e {
                ast::Expr::Paren(p) => self.resolve(Target::Expr(p.expr()?, env), attrs, fuel),
                ast::Expr::Ident(i) => {
                    let t = self.resolve_ident(&ident_name(&i), &env)?;
                    self.resolve(t, attrs, fuel)
                }
                ast::Expr::AttrSet(set) => {
                    let items = items_of(&set);
                    let inner: Env = if set.rec_token().is_some() {
                        Some(Rc::new(item_scope(&items, env.clone())))
                    } else {
                        env.clone()
                    };
                    let group: Vec<Item> = items.into_iter().filter(|i| i.keys[0].name == attrs[0]).collect();
                    if group.is_empty() {
                        return None;
                    }
                    let t = Target::Group { items: group, depth: 0, env: inner, outer: env };
                    self.resolve(t, &attrs[1..], fuel)
                }
                ast::Expr::LetIn(l) => {
                    let scope: Env = Some(Rc::new(item_scope(&items_of(&l), env)));
                    self.resolve(Target::Expr(l.body()?, scope), attrs, fuel)
                }
                ast::Expr::Select(sel) => {
                    let names = static_attrpath(&sel.attrpath()?)?;
                    if sel.default_expr().is_some() {
                        return None;
                    }
                    let base = self.resolve(Target::Expr(sel.expr()?, env), &names, fuel)?;
                    self.resolve(base, attrs, fuel)
                }
                ast::Expr::BinOp(op) if op.operator() == Some(ast::BinOpKind::Update) => {
                    let rhs = self.resolve(Target::Expr(op.rhs()?, env.clone()), attrs, fuel);
                    rhs.or_else(|| self.resolve(Target::Expr(op.lhs()?, env), attrs, fuel))
                }
                ast::Expr::Apply(apply) => {
                    let (name, args) = self.call_of(&apply, &env)?;
                    let inner = transparent_arg(&name, &args)?;
                    self.resolve(Target::Expr(inner, env), attrs, fuel)
                }
                _ => None,
            },
            Target::Group { items, depth, env, outer } => {
                let sub: Vec<Item> = items
                    .iter()
                    .filter(|i| i.keys.len() > depth + 1 && i.keys[depth + 1].name == attrs[0])
                    .cloned()
                    .collect();
                if !sub.is_empty() {
                    return self.resolve(
                        Target::Group { items: sub, depth: depth + 1, env, outer },
                        &attrs[1..],
                        fuel,
                    );
                }
                let direct = items.iter().find(|i| i.keys.len() == depth + 1)?;
                match &direct.value {
                    ItemValue::Expr(e) => self.resolve(Target::Expr(e.clone(), env), attrs, fuel),
                    ItemValue::Inherit => {
                        let t = self.resolve_ident(&direct.keys[depth].name, &outer)?;
                        self.resolve(t, attrs, fuel)
                    }
                    ItemValue::InheritFrom(from) => {
                        let mut names = vec![direct.keys[depth].name.clone()];
                        names.extend_from_slice(attrs);
                        self.resolve(Target::Expr(from.clone(), env), &names, fuel)
                    }
                }
            }
        }
    }

    fn walk_select(&mut self, sel: &ast::Select, env: &Env, path: &mut Vec<String>) -> Value {
        let (Some(base), Some(attrpath)) = (sel.expr(), sel.attrpath()) else { return Value::Null };
        let Some(names) = static_attrpath(&attrpath) else { return Value::Null };
        self.select_value(&base, env, &names, sel.default_expr(), path)
    }

    /// `base.names` (or `default` when it is missing).
    fn select_value(
        &mut self,
        base: &ast::Expr,
        env: &Env,
        names: &[String],
        default: Option<ast::Expr>,
        path: &mut Vec<String>,
    ) -> Value {
        if let Some(t) = self.resolve(Target::Expr(base.clone(), env.clone()), names, 64) {
            return self.walk_target(&t, path);
        }
        let base_value = self.quietly(|w| w.walk(base, env, &mut Vec::new()));
        let mut cur = &base_value;
        for n in names {
            match cur.get(n) {
                Some(v) => cur = v,
                None => {
                    return match (&default, cur) {
                        (Some(d), Value::Object(_)) => self.walk(d, env, path),
                        _ => Value::Null,
                    };
                }
            }
        }
        cur.clone()
    }

    /// The function name and arguments of a call to a known `lib` function: `lib.NAME a b`,
    /// `lib.modules.NAME a`, or `NAME a` with NAME not bound to a function of the file.
    fn call_of(&mut self, apply: &ast::Apply, env: &Env) -> Option<(String, Vec<ast::Expr>)> {
        let mut args = vec![apply.argument()?];
        let mut head = apply.lambda()?;
        while let ast::Expr::Apply(a) = &head {
            args.push(a.argument()?);
            head = a.lambda()?;
        }
        while let ast::Expr::Paren(p) = &head {
            head = p.expr()?;
        }
        args.reverse();
        let name = match &head {
            ast::Expr::Select(sel) if sel.default_expr().is_none() => {
                static_attrpath(&sel.attrpath()?)?.pop()?
            }
            ast::Expr::Ident(i) => {
                let name = ident_name(i);
                if let Some(t) = self.resolve_ident(&name, env) {
                    // Bound by the file: only a name that is not the file's own function.
                    if let Target::Expr(ast::Expr::Lambda(_), _) = t {
                        return None;
                    }
                    if let Target::Group { items, .. } = &t
                        && items.iter().any(|i| matches!(&i.value, ItemValue::Expr(ast::Expr::Lambda(_))))
                    {
                        return None;
                    }
                }
                name
            }
            _ => return None,
        };
        Some((name, args))
    }

    fn walk_apply(&mut self, apply: &ast::Apply, env: &Env, path: &mut Vec<String>) -> Value {
        let Some((name, args)) = self.call_of(apply, env) else { return Value::Null };
        if let Some(inner) = transparent_arg(&name, &args) {
            return self.walk(&inner, env, path);
        }
        match (name.as_str(), args.as_slice()) {
            ("mkIf" | "optionalAttrs" | "optionals" | "optionalString", [cond, value]) => {
                let c = self.quietly(|w| w.walk(cond, env, &mut Vec::new()));
                match c {
                    Value::Bool(true) => self.walk(value, env, path),
                    Value::Bool(false) => match name.as_str() {
                        "optionals" => Value::Array(Vec::new()),
                        "optionalString" => Value::String(String::new()),
                        _ => Value::Object(Map::new()),
                    },
                    _ => {
                        self.walk(value, env, path);
                        Value::Null
                    }
                }
            }
            ("optional", [cond, value]) => {
                let c = self.quietly(|w| w.walk(cond, env, &mut Vec::new()));
                match c {
                    Value::Bool(true) => {
                        path.push("0".into());
                        self.record(path, offset_of(value));
                        let v = self.walk(value, env, path);
                        path.pop();
                        Value::Array(vec![v])
                    }
                    Value::Bool(false) => Value::Array(Vec::new()),
                    _ => Value::Null,
                }
            }
            ("mkMerge", [list]) => {
                let mut inner = list.clone();
                while let ast::Expr::Paren(p) = &inner {
                    match p.expr() {
                        Some(e) => inner = e,
                        None => return Value::Null,
                    }
                }
                let values: Vec<Value> = match &inner {
                    ast::Expr::List(l) => {
                        // Later definitions win, so they are recorded first.
                        let items: Vec<ast::Expr> = l.items().collect();
                        let mut vs: Vec<Value> =
                            items.iter().rev().map(|e| self.walk(e, env, path)).collect();
                        vs.reverse();
                        vs
                    }
                    other => match self.quietly(|w| w.walk(other, env, &mut Vec::new())) {
                        Value::Array(vs) => vs,
                        _ => return Value::Null,
                    },
                };
                values.into_iter().fold(Value::Object(Map::new()), merge_definitions)
            }
            _ => Value::Null,
        }
    }

    fn walk_binop(&mut self, op: &ast::BinOp, env: &Env, path: &mut Vec<String>) -> Value {
        let (Some(lhs), Some(rhs)) = (op.lhs(), op.rhs()) else { return Value::Null };
        match op.operator() {
            Some(ast::BinOpKind::Update) => {
                // The right side wins, so its positions are recorded first.
                let r = self.walk(&rhs, env, path);
                let l = self.walk(&lhs, env, path);
                match (l, r) {
                    (Value::Object(mut l), Value::Object(r)) => {
                        l.extend(r);
                        Value::Object(l)
                    }
                    _ => Value::Null,
                }
            }
            Some(ast::BinOpKind::Concat) => {
                let l = self.walk(&lhs, env, path);
                let Value::Array(mut l) = l else {
                    self.quietly(|w| w.walk(&rhs, env, &mut Vec::new()));
                    return Value::Null;
                };
                // Positions of the right side's elements are shifted by the left's length.
                let outer = std::mem::take(&mut self.positions);
                let r = self.walk(&rhs, env, path);
                let inner = std::mem::replace(&mut self.positions, outer);
                for (mut k, off) in inner {
                    if k.len() > path.len()
                        && k[..path.len()] == path[..]
                        && let Ok(i) = k[path.len()].parse::<usize>()
                    {
                        k[path.len()] = (i + l.len()).to_string();
                    }
                    self.positions.entry(k).or_insert(off);
                }
                match r {
                    Value::Array(r) => {
                        l.extend(r);
                        Value::Array(l)
                    }
                    _ => Value::Null,
                }
            }
            Some(ast::BinOpKind::Add) => {
                let (l, r) = self
                    .quietly(|w| (w.walk(&lhs, env, &mut Vec::new()), w.walk(&rhs, env, &mut Vec::new())));
                match (l, r) {
                    (Value::String(a), Value::String(b)) => Value::String(a + &b),
                    (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                        (Some(a), Some(b)) => a.checked_add(b).map_or(Value::Null, Value::from),
                        _ => Value::Null,
                    },
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        }
    }

    /// A string's text; an interpolation of a known string is filled in, any other is kept
    /// as its `${…}` source text.
    fn string_value(&mut self, s: &ast::Str, env: &Env) -> String {
        let mut out = String::new();
        for part in s.normalized_parts() {
            match part {
                InterpolPart::Literal(l) => out.push_str(&l),
                InterpolPart::Interpolation(i) => {
                    let v = match i.expr() {
                        Some(e) => self.quietly(|w| w.walk(&e, env, &mut Vec::new())),
                        None => Value::Null,
                    };
                    match v {
                        Value::String(t) => out.push_str(&t),
                        _ => out.push_str(&syn(&i).text().to_string()),
                    }
                }
            }
        }
        out
    }
}

/// The argument that is the value of `lib.mkDefault X`, `lib.mkOverride N X`, ….
fn transparent_arg(name: &str, args: &[ast::Expr]) -> Option<ast::Expr> {
    match args {
        [x] if TRANSPARENT_1.contains(&name) => Some(x.clone()),
        [_, x] if TRANSPARENT_2.contains(&name) => Some(x.clone()),
        _ => None,
    }
}

/// The names of an attribute path without interpolation.
fn static_attrpath(p: &ast::Attrpath) -> Option<Vec<String>> {
    p.attrs().map(|a| attr_name(&a)).collect()
}

fn literal_value(l: &ast::Literal) -> Value {
    match l.kind() {
        ast::LiteralKind::Integer(i) => i.value().map_or(Value::Null, Value::from),
        ast::LiteralKind::Float(f) => {
            f.value().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
        }
        ast::LiteralKind::Uri(u) => Value::String(u.syntax().text().to_string()),
    }
}

/// How module definitions combine (and how the evaluation stub's `mkMerge` does it):
/// attribute sets merge recursively, lists concatenate, anything else: the later wins.
pub fn merge_definitions(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => merge_definitions(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (Value::Array(mut a), Value::Array(b)) => {
            a.extend(b);
            Value::Array(a)
        }
        (_, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pos(a: &Analysis, path: &[&str]) -> Option<usize> {
        a.positions.get(&path.iter().map(|s| s.to_string()).collect::<Vec<_>>()).copied()
    }

    #[test]
    fn dotted_keys_record_every_prefix() {
        let text = "{ disko.devices = { x = { a.b.c = 1; }; }; }";
        let a = analyse_text(text).unwrap();
        assert_eq!(pos(&a, &["disko"]), Some(2));
        assert_eq!(pos(&a, &["disko", "devices"]), Some(8));
        assert_eq!(pos(&a, &["disko", "devices", "x", "a"]), text.find("a.b"));
        assert_eq!(pos(&a, &["disko", "devices", "x", "a", "b"]), text.find("b.c"));
        assert_eq!(pos(&a, &["disko", "devices", "x", "a", "b", "c"]), text.find("c ="));
        assert_eq!(a.value, json!({"disko": {"devices": {"x": {"a": {"b": {"c": 1}}}}}}));
    }

    #[test]
    fn let_bindings_are_followed_into_their_definition() {
        let text = "let\n  opts = [ \"noatime\" \"nodatacow\" ];\nin { a.mountOptions = opts; }";
        let a = analyse_text(text).unwrap();
        assert_eq!(a.value, json!({"a": {"mountOptions": ["noatime", "nodatacow"]}}));
        assert_eq!(pos(&a, &["a", "mountOptions", "1"]), text.find("\"nodatacow\""));
    }

    #[test]
    fn functions_wrappers_updates_and_strings() {
        let text = r#"{ lib, disks ? [ "/dev/sda" ], ... }:
let base = { x = 1; y = 2; }; name = "root";
in rec {
  a = lib.mkDefault "v";
  b = lib.mkForce (base // { y = 3; });
  c = disks;
  d = "${name}-${lib.foo}";
  e = ''
    first
      second
  '';
  f = [ 1 ] ++ [ 2.5 true null ];
  g = import ./x.nix;
  h = a;
  "@q" = -1;
  i = base.y;
  j = lib.mkOverride 50 { z = 0; };
  k = lib.mkMerge [ { l = [ "a" ]; } { l = [ "b" ]; } ];
}"#;
        let a = analyse_text(text).unwrap();
        assert!(a.is_function);
        assert_eq!(
            a.value,
            json!({
                "a": "v", "b": {"x": 1, "y": 3}, "c": ["/dev/sda"], "d": "root-${lib.foo}",
                "e": "first\n  second\n", "f": [1, 2.5, true, null], "g": null, "h": "v", "@q": -1,
                "i": 2, "j": {"z": 0}, "k": {"l": ["a", "b"]}
            })
        );
        assert_eq!(pos(&a, &["b", "y"]), text.find("y = 3"));
        assert_eq!(pos(&a, &["b", "x"]), text.find("x = 1"));
        assert_eq!(pos(&a, &["f", "1"]), text.find("2.5"));
        assert_eq!(pos(&a, &["@q"]), text.find("\"@q\""));
        assert_eq!(pos(&a, &["g"]), text.find("g ="));
    }

    #[test]
    fn cycles_and_unknowns_read_as_null() {
        let a = analyse_text("let a = { b = a; c = a.c; }; in a").unwrap();
        assert_eq!(a.value, json!({"b": null, "c": null}));
        let a = analyse_text("{ x = f 1; y = if c then 1 else 2; \"${k}\" = 3; }").unwrap();
        assert_eq!(a.value, json!({"x": null, "y": null}));
        let a = analyse_text("let x = [ x x ]; in x").unwrap();
        assert_eq!(a.value, json!([null, null]));
        let a = analyse_text("{ y = if c then { a = 1; } else { }; z = if !false then { b = 2; } else 3; w = with lib; { q = 1; }; }")
            .unwrap();
        assert_eq!(a.value, json!({"y": null, "z": {"b": 2}, "w": {"q": 1}}));
        assert_eq!(pos(&a, &["y", "a"]), None);
        assert!(pos(&a, &["z", "b"]).is_some() && pos(&a, &["w", "q"]).is_some());
    }

    #[test]
    fn syntax_errors_are_placed() {
        let e = parse("{ a = ; }").unwrap_err();
        assert_eq!(e.offset, 6);
        let e = parse("{ a = 1; } }").unwrap_err();
        assert_eq!(e.offset, 11);
        let e = parse("{\n  a = {\n    b = 1;\n  };\n").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("end of file"), "{}", e.message);
    }

    #[test]
    fn merging_definitions() {
        let v = merge_definitions(json!({"a": [1], "b": {"c": 1}}), json!({"a": [2], "b": {"d": 2}, "e": 3}));
        assert_eq!(v, json!({"a": [1, 2], "b": {"c": 1, "d": 2}, "e": 3}));
    }
}
