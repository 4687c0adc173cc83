//! Loading a disko.nix into the shared [`Layout`], with the position of every attribute.
//!
//! The file is parsed with rnix first (a syntax error is placed at its line and column),
//! read statically for the positions of its attributes ([`super::nixpos`]), and then
//! either evaluated by `nix-instantiate` or, without Nix, read statically for its literal
//! value. The value is converted into a [`Layout`] by [`json_to_layout_at`], which also
//! collects option names disko does not know.

use super::nixpos;
use super::source::SourceFile;
use crate::error::{Error, InputError};
use crate::layout::{Btrfs, Compression, Content, Disk, Filesystem, Layout, Partition, Subvolume};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A loaded disko configuration.
#[derive(Debug, Clone)]
pub struct DiskoFile {
    pub source: SourceFile,
    pub layout: Layout,
    /// True when nix-instantiate evaluated the file; false when it was read statically.
    pub evaluated: bool,
    /// The configuration's value as JSON (evaluated, or read statically). Evaluated, it
    /// holds only the devices, at [`DiskoFile::devices_path`].
    pub value: serde_json::Value,
    /// Byte offsets of attributes by their path from the file's value.
    pub positions: Positions,
    /// Option names disko does not know: the attribute path of the key and the disko type
    /// it was under (see [`known_options`]).
    pub unknown: Vec<(Vec<String>, String)>,
    /// The attribute path the configuration was taken from (`--attr`), empty for the file's
    /// value itself.
    pub attr: Vec<String>,
    /// What decides the mount order at boot.
    pub boot: Boot,
    /// Devices and contents that were not analysed, with the reason: attribute path, reason.
    pub skipped: Vec<(Vec<String>, String)>,
    /// Arguments the file's function requires that were not given: when there are any,
    /// the file was read statically. Name and offset in the function header.
    pub missing_args: Vec<(String, usize)>,
    /// Attribute paths whose value could not be evaluated (it throws, e.g. a default such
    /// as `device ? throw "…"`); they read as absent.
    pub unevaluated: Vec<Vec<String>>,
}

/// What NixOS mounts first: `/`, or, with `/` on tmpfs (or on another filesystem), the
/// mounts the initrd makes before switching root (`neededForBoot`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boot {
    /// `/` is a `nodev` tmpfs.
    pub tmpfs_root: bool,
    /// Mountpoints declared `fileSystems."…".neededForBoot = true` in the same file.
    pub needed_for_boot: Vec<String>,
}

/// Mountpoints NixOS always mounts in the initrd (nixpkgs `pathsNeededForBoot`).
pub const PATHS_NEEDED_FOR_BOOT: &[&str] =
    &["/", "/nix", "/nix/store", "/var", "/var/log", "/var/lib", "/var/lib/nixos", "/etc", "/usr"];

impl Boot {
    /// Whether NixOS mounts `mountpoint` in the initrd.
    pub fn needed_for_boot(&self, mountpoint: &str) -> bool {
        let m = if mountpoint.len() > 1 { mountpoint.trim_end_matches('/') } else { mountpoint };
        PATHS_NEEDED_FOR_BOOT.contains(&m)
            || self.needed_for_boot.iter().any(|n| n.trim_end_matches('/') == m)
    }
}

impl DiskoFile {
    /// The attribute path of the devices in [`DiskoFile::value`]: `["disko", "devices"]`,
    /// or empty when the file's value is the devices attribute set itself (after
    /// [`DiskoFile::attr`]).
    pub fn devices_path(&self) -> Vec<String> {
        devices_of(&self.value, &self.attr)
            .map(|(_, p)| p)
            .unwrap_or_else(|| [self.attr.clone(), vec!["disko".into(), "devices".into()]].concat())
    }

    /// How many btrfs filesystems and subvolumes were analysed, and the other filesystems.
    pub fn coverage(&self) -> Coverage {
        let mut c = Coverage::default();
        for p in self.layout.disks.iter().flat_map(|d| &d.partitions) {
            match &p.content {
                Content::Btrfs(b) => {
                    c.btrfs += 1;
                    c.subvolumes += b.subvolumes.len();
                }
                Content::Filesystem(f) if f.format == "btrfs" => c.btrfs += 1,
                Content::Filesystem(_) => c.other_filesystems += 1,
            }
        }
        c
    }
}

/// What a check looked at in a disko file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// btrfs filesystems (disko `btrfs`, or a `filesystem` with `format = "btrfs"`).
    pub btrfs: usize,
    pub subvolumes: usize,
    /// Filesystems of other formats (vfat, ext4, …): only their mountpoints are checked.
    pub other_filesystems: usize,
}

/// A function argument given on the command line, as disko's own CLI takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NixArg {
    /// `--arg NAME EXPR`: a Nix expression.
    Expr(String),
    /// `--argstr NAME VALUE`: a string.
    Str(String),
}

/// How to load a disko file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub mode: NixMode,
    /// Arguments for a function-style file, by name.
    pub args: Vec<(String, NixArg)>,
    /// Where the configuration is, e.g. `["flake", "diskoConfigurations", "host"]`.
    pub attr: Vec<String>,
}

/// Where attributes are written: attribute path → byte offset of the key.
///
/// Paths start at the file's value (for a function, at its body's value), e.g.
/// `["disko", "devices", "disk", "main"]`; every prefix of a dotted key has its own entry.
/// List elements are keyed by their index as a decimal string (`[…, "mountOptions", "1"]`)
/// and point at the element. A value taken from a `let` binding points into the binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    pub entries: std::collections::BTreeMap<Vec<String>, usize>,
}

impl Positions {
    /// The offset of `path`, or of its longest prefix that has one. A component written
    /// as an interpolated key (`"${name}-root"`) matches the names it can stand for.
    pub fn of(&self, path: &[&str]) -> Option<usize> {
        (0..=path.len()).rev().find_map(|n| {
            let key: Vec<String> = path[..n].iter().map(|s| s.to_string()).collect();
            self.entries.get(&key).copied().or_else(|| self.by_pattern(&path[..n]))
        })
    }

    /// The offset of an entry whose interpolated components match `path` (the one with
    /// the most literal components).
    fn by_pattern(&self, path: &[&str]) -> Option<usize> {
        self.entries
            .iter()
            .filter(|(k, _)| {
                k.len() == path.len()
                    && k.iter().any(|c| c.contains(nixpos::INTERPOLATED))
                    && k.iter().zip(path).all(|(c, p)| nixpos::matches_key(c, p))
            })
            .max_by_key(|(k, _)| k.iter().filter(|c| !c.contains(nixpos::INTERPOLATED)).count())
            .map(|(_, offset)| *offset)
    }

    /// As [`Positions::of`], for a path of owned strings (such as `Btrfs::attr_path`).
    pub fn of_path<S: AsRef<str>>(&self, path: &[S]) -> Option<usize> {
        let path: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
        self.of(&path)
    }

    /// The offset of exactly `path`, without falling back to a prefix.
    pub fn exact<S: AsRef<str>>(&self, path: &[S]) -> Option<usize> {
        let key: Vec<String> = path.iter().map(|s| s.as_ref().to_string()).collect();
        self.entries.get(&key).copied()
    }
}

/// How to read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NixMode {
    /// Evaluate when `nix-instantiate` is on PATH, else read statically.
    #[default]
    Auto,
    /// Evaluate with `nix-instantiate`; without it, fail.
    Evaluate,
    /// Read the literal subset of the file without Nix.
    Static,
}

/// How long an evaluation may take.
const EVAL_TIMEOUT: Duration = Duration::from_secs(20);

/// Loads a disko.nix from a file.
pub fn load(path: &Path, mode: NixMode) -> Result<DiskoFile, Error> {
    load_with(path, &LoadOptions { mode, ..LoadOptions::default() })
}

/// Loads a disko.nix from a file, with function arguments and an attribute path.
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<DiskoFile, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let name = path.display().to_string();
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]).into_owned();
            let source = SourceFile::new(&name, valid.clone());
            return Err(input_error(
                &source,
                source.position(valid.len()),
                "the file is not valid UTF-8".into(),
                Some("Nix files are UTF-8 text".into()),
            ));
        }
    };
    load_from(text, name, options, Some(path))
}

/// Loads a disko.nix from text; `name` is what diagnostics call the file. Evaluation, when
/// it happens, reads the text from a temporary file (so relative imports do not resolve).
pub fn load_text(text: &str, name: &str, mode: NixMode) -> Result<DiskoFile, Error> {
    load_from(text.to_string(), name.to_string(), &LoadOptions { mode, ..LoadOptions::default() }, None)
}

fn load_from(
    text: String,
    name: String,
    options: &LoadOptions,
    path: Option<&Path>,
) -> Result<DiskoFile, Error> {
    let source = SourceFile::new(name, text);
    let analysis = nixpos::analyse_text(&source.text).map_err(|e| {
        let (line, column) = source.position(e.offset);
        input_error(&source, (line, column), e.message, e.help)
    })?;
    let nix = match options.mode {
        NixMode::Static => None,
        NixMode::Auto => find_nix_instantiate(),
        NixMode::Evaluate => Some(find_nix_instantiate().ok_or_else(|| {
            Error::Environment(
                "cannot evaluate the disko configuration: `nix-instantiate` is not on PATH; install Nix, \
                 or read the file without evaluating it"
                    .into(),
            )
        })?),
    };
    let given = |n: &str| ["lib", "pkgs", "config"].contains(&n) || options.args.iter().any(|(a, _)| a == n);
    let missing_args: Vec<(String, usize)> = analysis
        .formals
        .iter()
        .filter(|f| !f.has_default && !given(&f.name))
        .map(|f| (f.name.clone(), f.offset))
        .collect();
    let evaluation = match nix {
        Some(nix) if missing_args.is_empty() => Some(evaluate(&nix, &source, path, options, &analysis)?),
        _ => None,
    };
    let (value, evaluated, needed, unevaluated) = match evaluation {
        Some(e) => (e.value, true, e.needed_for_boot, e.unevaluated),
        None => {
            let needed = needed_for_boot_of(&analysis.value, &options.attr);
            (analysis.value.clone(), false, needed, Vec::new())
        }
    };
    let value = unwrap_module_wrappers(value);
    if devices_of(&value, &options.attr).is_none() {
        return Err(no_configuration(&source, &analysis.value, &options.attr));
    }
    let (layout, unknown, skipped) = json_to_layout_at(&value, &options.attr);
    let mut positions = analysis.positions;
    alias_wrapper_positions(&mut positions, &analysis.value);
    let boot = Boot { tmpfs_root: tmpfs_root(&value, &options.attr), needed_for_boot: needed };
    Ok(DiskoFile {
        source,
        layout,
        evaluated,
        value,
        positions: Positions { entries: positions },
        unknown,
        attr: options.attr.clone(),
        boot,
        skipped,
        missing_args,
        unevaluated,
    })
}

/// The error for a file without a disko configuration, with the attribute paths that hold
/// one (for `--attr`) when the file's literal value shows any.
fn no_configuration(source: &SourceFile, literal: &Value, attr: &[String]) -> Error {
    let candidates = configuration_candidates(literal);
    let at = if attr.is_empty() { String::new() } else { format!(" at `{}`", attr.join(".")) };
    let legacy =
        value_at(literal, attr).and_then(|v| v.get("type")).and_then(Value::as_str) == Some("devices");
    let help = match candidates.as_slice() {
        [] if legacy => {
            "this is disko's first format (`type = \"devices\"; content = { … }`), which disko no \
                         longer reads: write it as `disko.devices.disk.NAME = { … }`"
                .to_string()
        }
        [] => "a disko configuration sets `disko.devices` (or is the devices attribute set itself: \
               `{ disk = …; }`); nothing else is checked. A NixOS module that imports the disko \
               configuration from another file is checked by giving that file"
            .to_string(),
        [one] => format!("a configuration is at `{}`: pass `--attr {}`", one.join("."), one.join(".")),
        many => format!(
            "configurations are at {}: pick one with --attr",
            many.iter().map(|p| format!("`{}`", p.join("."))).collect::<Vec<_>>().join(", ")
        ),
    };
    Error::Input(InputError {
        file: source.path.clone(),
        line: 1,
        column: 1,
        message: format!(
            "no disko configuration{at}: the file sets no `disko.devices`, so nothing was checked"
        ),
        help: Some(help),
        source_line: None,
    })
}

/// Attribute paths (up to four levels deep, not the root) whose value is a disko
/// configuration: sets `disko.devices`, or is a devices attribute set.
pub fn configuration_candidates(value: &Value) -> Vec<Vec<String>> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some(o) = v.as_object() else { return };
        if !path.is_empty() && devices_of(v, &[]).is_some() {
            out.push(path.clone());
            return;
        }
        if path.len() >= 4 {
            return;
        }
        for (k, child) in o {
            path.push(k.clone());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// The value at an attribute path.
fn value_at<'a>(value: &'a Value, attr: &[String]) -> Option<&'a Value> {
    attr.iter().try_fold(value, |v, k| v.as_object()?.get(k))
}

/// `fileSystems."…".neededForBoot = true` in a (literal) value.
fn needed_for_boot_of(value: &Value, attr: &[String]) -> Vec<String> {
    let Some(fs) = value_at(value, attr).and_then(|v| v.get("fileSystems")).and_then(Value::as_object) else {
        return Vec::new();
    };
    fs.iter()
        .filter(|(_, v)| v.get("neededForBoot") == Some(&Value::Bool(true)))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Whether the configuration mounts a tmpfs (`nodev` with `fsType = "tmpfs"`) at `/`.
fn tmpfs_root(value: &Value, attr: &[String]) -> bool {
    let Some((devices, _)) = devices_of(value, attr) else { return false };
    let Some(nodev) = devices.get("nodev").and_then(Value::as_object) else { return false };
    nodev.iter().any(|(name, v)| {
        let mountpoint = v.get("mountpoint").and_then(Value::as_str).unwrap_or(name);
        mountpoint == "/" && v.get("fsType").and_then(Value::as_str) == Some("tmpfs")
    })
}

/// Resolves the module system's wrappers when they are written out as attribute sets
/// (`{ _type = "merge"; contents = [ … ]; }`, `"if"`, `"override"`, `"order"`), as
/// `lib.mkMerge`, `lib.mkIf`, `lib.mkForce` and `lib.mkBefore` build them. An `if` whose
/// condition is false removes the attribute it is the value of.
pub fn unwrap_module_wrappers(value: Value) -> Value {
    fn resolve(v: Value) -> Option<Value> {
        match v {
            Value::Object(mut o) => match o.get("_type").and_then(Value::as_str) {
                Some("merge") => {
                    let contents = match o.remove("contents") {
                        Some(Value::Array(items)) => items,
                        _ => Vec::new(),
                    };
                    Some(
                        contents
                            .into_iter()
                            .filter_map(resolve)
                            .fold(Value::Object(Map::new()), nixpos::merge_definitions),
                    )
                }
                Some("if") => {
                    if o.get("condition") == Some(&Value::Bool(true)) {
                        resolve(o.remove("content").unwrap_or(Value::Null))
                    } else {
                        None
                    }
                }
                Some("override" | "order") => resolve(o.remove("content").unwrap_or(Value::Null)),
                _ => Some(Value::Object(
                    o.into_iter().filter_map(|(k, v)| resolve(v).map(|v| (k, v))).collect(),
                )),
            },
            Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(resolve).collect())),
            other => Some(other),
        }
    }
    resolve(value).unwrap_or(Value::Null)
}

/// Adds, for every position below a written-out module wrapper, the path the value has
/// once [`unwrap_module_wrappers`] resolved it: `…, "contents", "1", X` of a merge is also
/// `…, X`, and `…, "content", X` of an `if`, `override` or `order` is also `…, X`.
fn alias_wrapper_positions(positions: &mut std::collections::BTreeMap<Vec<String>, usize>, literal: &Value) {
    let mut aliases = Vec::new();
    for (path, offset) in positions.iter() {
        let mut node = Some(literal);
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        let mut changed = false;
        while i < path.len() {
            let wrapper = node.and_then(|n| n.get("_type")).and_then(Value::as_str);
            match (wrapper, path[i].as_str()) {
                (Some("merge"), "contents") if i + 1 < path.len() => {
                    node = node
                        .and_then(|n| n.get("contents"))
                        .and_then(|c| c.get(path[i + 1].parse::<usize>().ok()?));
                    i += 2;
                    changed = true;
                    continue;
                }
                (Some("if" | "override" | "order"), "content") => {
                    node = node.and_then(|n| n.get("content"));
                    i += 1;
                    changed = true;
                    continue;
                }
                _ => {}
            }
            node = node.and_then(|n| match n {
                Value::Object(o) => o.get(&path[i]),
                Value::Array(a) => path[i].parse::<usize>().ok().and_then(|k| a.get(k)),
                _ => None,
            });
            out.push(path[i].clone());
            i += 1;
        }
        if changed {
            aliases.push((out, *offset));
        }
    }
    for (path, offset) in aliases {
        positions.entry(path).or_insert(offset);
    }
}

fn input_error(
    source: &SourceFile,
    (line, column): (usize, usize),
    message: String,
    help: Option<String>,
) -> Error {
    let text = source.line_text(line);
    Error::Input(InputError {
        file: source.path.clone(),
        line,
        column,
        message,
        help,
        source_line: (!text.is_empty()).then(|| text.to_string()),
    })
}

/// `nix-instantiate` on PATH, if any.
pub fn find_nix_instantiate() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("nix-instantiate")).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------------------
// Evaluation

/// A stand-in for the part of nixpkgs' `lib` that disko configurations commonly use, so a
/// `{ lib, ... }:` file evaluates without a nixpkgs channel. The `mk*` functions of the
/// module system return their value (`mkIf false` gives `{ }`, `mkMerge` merges attribute
/// sets recursively and concatenates lists, as module definitions merge).
pub const LIB_STUB: &str = r#"rec {
  id = x: x;
  const = x: _: x;
  trace = _: v: v;
  traceVal = v: v;
  traceValSeq = v: v;
  traceSeq = _: v: v;
  traceIf = _: _: v: v;
  warn = _: v: v;
  warnIf = _: _: v: v;
  throwIf = cond: msg: v: if cond then throw msg else v;
  assertMsg = cond: msg: cond || throw msg;
  genList = builtins.genList;
  mkDefault = v: v;
  mkForce = v: v;
  mkOverride = _priority: v: v;
  mkOptionDefault = v: v;
  mkImageMediaOverride = v: v;
  mkVMOverride = v: v;
  mkBefore = v: v;
  mkAfter = v: v;
  mkOrder = _priority: v: v;
  mkIf = cond: v: if cond then v else { };
  mergeDefinitions = a: b:
    if builtins.isAttrs a && builtins.isAttrs b then
      a // builtins.mapAttrs (n: v: if a ? ${n} then mergeDefinitions a.${n} v else v) b
    else if builtins.isList a && builtins.isList b then a ++ b
    else b;
  mkMerge = defs: builtins.foldl' mergeDefinitions { } defs;
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };
  optionalString = cond: s: if cond then s else "";
  mapAttrs = builtins.mapAttrs;
  mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
  mapAttrsToList = f: set: map (n: f n set.${n}) (builtins.attrNames set);
  filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap
    (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ])
    (builtins.attrNames set));
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  listToAttrs = builtins.listToAttrs;
  nameValuePair = name: value: { inherit name value; };
  attrNames = builtins.attrNames;
  attrValues = builtins.attrValues;
  hasAttr = builtins.hasAttr;
  getAttr = builtins.getAttr;
  attrByPath = attrPath: default: set:
    if attrPath == [ ] then set
    else if builtins.isAttrs set && set ? ${builtins.head attrPath}
    then attrByPath (builtins.tail attrPath) default set.${builtins.head attrPath}
    else default;
  recursiveUpdate = lhs: rhs:
    lhs // builtins.mapAttrs
      (n: v: if builtins.isAttrs v && lhs ? ${n} && builtins.isAttrs lhs.${n} then recursiveUpdate lhs.${n} v else v)
      rhs;
  map = builtins.map;
  filter = builtins.filter;
  concatMap = builtins.concatMap;
  concatLists = builtins.concatLists;
  flatten = x: if builtins.isList x then builtins.concatMap flatten x else [ x ];
  foldl' = builtins.foldl';
  foldl = op: nul: list: builtins.foldl' op nul list;
  foldr = op: nul: list:
    let len = builtins.length list;
        go = n: if n == len then nul else op (builtins.elemAt list n) (go (n + 1));
    in go 0;
  elem = builtins.elem;
  elemAt = builtins.elemAt;
  head = builtins.head;
  tail = builtins.tail;
  last = list: builtins.elemAt list (builtins.length list - 1);
  length = builtins.length;
  range = first: last: if first > last then [ ] else builtins.genList (n: first + n) (last - first + 1);
  imap0 = f: list: builtins.genList (n: f n (builtins.elemAt list n)) (builtins.length list);
  imap1 = f: list: builtins.genList (n: f (n + 1) (builtins.elemAt list n)) (builtins.length list);
  unique = builtins.foldl' (acc: e: if builtins.elem e acc then acc else acc ++ [ e ]) [ ];
  any = builtins.any;
  all = builtins.all;
  toString = builtins.toString;
  hasPrefix = pref: str: builtins.substring 0 (builtins.stringLength pref) str == pref;
  hasSuffix = suff: str:
    let ls = builtins.stringLength str; lf = builtins.stringLength suff;
    in ls >= lf && builtins.substring (ls - lf) lf str == suff;
  removePrefix = pref: str:
    if hasPrefix pref str
    then builtins.substring (builtins.stringLength pref) (builtins.stringLength str) str
    else str;
  removeSuffix = suff: str:
    if hasSuffix suff str
    then builtins.substring 0 (builtins.stringLength str - builtins.stringLength suff) str
    else str;
  concatStrings = builtins.concatStringsSep "";
  concatStringsSep = builtins.concatStringsSep;
  concatMapStrings = f: list: builtins.concatStringsSep "" (map f list);
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);
  escapeRegex = builtins.replaceStrings
    [ "\\" "[" "]" "{" "}" "(" ")" "^" "$" "?" "*" "+" "|" "." ]
    [ "\\\\" "\\[" "\\]" "\\{" "\\}" "\\(" "\\)" "\\^" "\\$" "\\?" "\\*" "\\+" "\\|" "\\." ];
  splitString = sep: s: builtins.filter builtins.isString (builtins.split (escapeRegex sep) s);
  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  toLower = builtins.replaceStrings upperChars lowerChars;
  toUpper = builtins.replaceStrings lowerChars upperChars;
  isString = builtins.isString;
  isList = builtins.isList;
  isAttrs = builtins.isAttrs;
  isInt = builtins.isInt;
  isBool = builtins.isBool;
  isFunction = builtins.isFunction;
  trivial = { inherit id const toString; };
  modules = { inherit mkDefault mkForce mkOverride mkOptionDefault mkIf mkMerge mkBefore mkAfter mkOrder; };
  lists = {
    inherit optional optionals elem elemAt head tail last length range imap0 imap1 unique flatten
      concatMap concatLists filter foldl foldl' foldr any all;
  };
  attrsets = {
    inherit optionalAttrs mapAttrs mapAttrs' mapAttrsToList filterAttrs genAttrs listToAttrs
      nameValuePair attrNames attrValues attrByPath recursiveUpdate hasAttr getAttr;
  };
  strings = {
    inherit optionalString hasPrefix hasSuffix removePrefix removeSuffix concatStrings
      concatStringsSep concatMapStrings concatMapStringsSep splitString toLower toUpper escapeRegex;
  };
}"#;

/// The marker the evaluation puts where a value throws (`device ? throw "…"`).
const UNEVALUATED: &str = "<podfs: unevaluated>";

/// The expression evaluated for the file at `file`: import it, call it when it is a
/// function with the arguments it asks for among `lib` (the stub), `pkgs = { }`,
/// `config = { }` and `args` (arguments with defaults keep them), take the configuration
/// at `attr` (calling it the same way when it is a module function), and evaluate only its devices (`disko.devices`, or the value itself when it
/// is the devices attribute set) and `fileSystems.*.neededForBoot`, nothing else of a
/// NixOS module. What JSON cannot hold (functions) becomes `null`, paths strings, and a
/// value that throws the marker `UNEVALUATED`.
pub fn eval_expression(file: &Path, args: &[(String, NixArg)], attr: &[String], part: EvalPart) -> String {
    use crate::render::nix::quote;
    let file = quote(&file.to_string_lossy());
    let args: String = args
        .iter()
        .map(|(name, a)| match a {
            NixArg::Expr(e) => format!("{} = ({e});\n", quote(name)),
            NixArg::Str(s) => format!("{} = {};\n", quote(name), quote(s)),
        })
        .collect();
    let attr: String = attr.iter().map(|a| format!("{} ", quote(a))).collect();
    let kinds: String = DEVICE_KINDS.iter().map(|k| format!("\"{k}\" ")).collect();
    format!(
        "let\n\
         lib = {LIB_STUB};\n\
         available = {{ inherit lib; pkgs = {{ }}; config = {{ }}; }} // {{\n{args}}};\n\
         f = import {file};\n\
         value = if builtins.isFunction f then f (builtins.intersectAttrs (builtins.functionArgs f) available) else f;\n\
         attrPath = [ {attr}];\n\
         call = v: if builtins.isFunction v then v (builtins.intersectAttrs (builtins.functionArgs v) available) else v;\n\
         root = call (builtins.foldl' (v: n: if builtins.isAttrs v && v ? ${{n}} then v.${{n}} else null) value attrPath);\n\
         isDevices = v: builtins.isAttrs v && builtins.any (k: v ? ${{k}}) [ {kinds}];\n\
         hasDisko = builtins.isAttrs root && root ? disko && builtins.isAttrs root.disko && root.disko ? devices;\n\
         devicesAt = if hasDisko then [ \"disko\" \"devices\" ] else if isDevices root && !(root ? disko) then [ ] else null;\n\
         clean = v: let t = builtins.tryEval v; in\n\
         if !t.success then \"{UNEVALUATED}\"\n\
         else if builtins.isFunction t.value then null\n\
         else if builtins.isAttrs t.value then builtins.mapAttrs (_: clean) t.value\n\
         else if builtins.isList t.value then map clean t.value\n\
         else if builtins.isPath t.value then builtins.toString t.value\n\
         else t.value;\n\
         fileSystems = let t = builtins.tryEval (if builtins.isAttrs root && root ? fileSystems then root.fileSystems else {{ }}); in\n\
         if t.success && builtins.isAttrs t.value then t.value else {{ }};\n\
         neededForBoot = builtins.filter (n: let t = builtins.tryEval (fileSystems.${{n}}.neededForBoot or false); in t.success && t.value == true)\n\
         (builtins.attrNames fileSystems);\n\
         in {}\n",
        match part {
            EvalPart::Devices =>
                "{ inherit devicesAt; \
                                  devices = if devicesAt == null then null else clean (builtins.foldl' (v: n: v.${n}) root devicesAt); }",
            EvalPart::NeededForBoot => "neededForBoot",
        }
    )
}

/// What one evaluation computes: the devices, or (separately, as a NixOS module's
/// `fileSystems` may need a real `config` and fail) the `neededForBoot` mountpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalPart {
    Devices,
    NeededForBoot,
}

/// What an evaluation gave.
struct Evaluation {
    /// The devices at their place (under `attr`, then `disko.devices` or not), or `null`.
    value: Value,
    needed_for_boot: Vec<String>,
    unevaluated: Vec<Vec<String>>,
}

/// Evaluates the file (or, for text without a file, a temporary copy of it).
fn evaluate(
    nix: &Path,
    source: &SourceFile,
    path: Option<&Path>,
    options: &LoadOptions,
    analysis: &nixpos::Analysis,
) -> Result<Evaluation, Error> {
    let _temp;
    let file: PathBuf = match path {
        Some(p) => std::path::absolute(p).map_err(|e| Error::io(p, "resolve", e))?,
        None => {
            let dir = TempDir::new()?;
            let file = dir.0.join("disko.nix");
            std::fs::write(&file, &source.text).map_err(|e| Error::io(&file, "write", e))?;
            _temp = dir;
            file
        }
    };
    let expression = |part| eval_expression(&file, &options.args, &options.attr, part);
    let out: Value = run_nix(nix, source, &file, &expression(EvalPart::Devices), analysis)?;
    // A failure here is not the configuration's: the static reading stands in.
    let needed_for_boot = match run_nix(nix, source, &file, &expression(EvalPart::NeededForBoot), analysis) {
        Ok(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => needed_for_boot_of(&analysis.value, &options.attr),
    };
    let devices_at: Option<Vec<String>> = out
        .get("devicesAt")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect());
    let value = match devices_at {
        None => Value::Null,
        Some(at) => {
            let place: Vec<String> = [options.attr.clone(), at].concat();
            let devices = out.get("devices").cloned().unwrap_or(Value::Null);
            place.iter().rev().fold(devices, |v, k| Value::Object(Map::from_iter([(k.clone(), v)])))
        }
    };
    let mut unevaluated = Vec::new();
    collect_unevaluated(&value, &mut Vec::new(), &mut unevaluated);
    Ok(Evaluation { value: strip_unevaluated(value), needed_for_boot, unevaluated })
}

fn collect_unevaluated(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::String(s) if s == UNEVALUATED => out.push(path.clone()),
        Value::Object(o) => {
            for (k, child) in o {
                path.push(k.clone());
                collect_unevaluated(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                collect_unevaluated(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The value with every attribute that could not be evaluated removed (list elements
/// become `null`).
fn strip_unevaluated(v: Value) -> Value {
    match v {
        Value::String(s) if s == UNEVALUATED => Value::Null,
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| v.as_str() != Some(UNEVALUATED))
                .map(|(k, v)| (k, strip_unevaluated(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_unevaluated).collect()),
        other => other,
    }
}

/// Runs `nix-instantiate --eval --strict --json` on an expression; its JSON value.
fn run_nix(
    nix: &Path,
    source: &SourceFile,
    file: &Path,
    expression: &str,
    analysis: &nixpos::Analysis,
) -> Result<Value, Error> {
    let mut child = Command::new(nix)
        .args(["--eval", "--strict", "--json", "--readonly-mode", "-E"])
        .arg(expression)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(nix, "run", e))?;
    // Read both pipes while waiting, so a large value cannot fill a pipe and stall Nix.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > EVAL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Error::io(nix, "wait for", e)),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let Some(status) = status else {
        return Err(input_error(
            source,
            (1, 1),
            format!("evaluating the file did not finish within {} s", EVAL_TIMEOUT.as_secs()),
            Some(
                "the file must evaluate to a disko configuration; an endless recursion never does. \
                  Reading it without evaluation still checks its literal parts"
                    .into(),
            ),
        ));
    };
    if !status.success() {
        return Err(eval_error(source, file, &err, analysis));
    }
    serde_json::from_slice(&out)
        .map_err(|e| input_error(source, (1, 1), format!("nix-instantiate printed no JSON value: {e}"), None))
}

/// An evaluation failure as an input error, placed where Nix's message points into the
/// file (`at FILE:LINE:COL`), else at line 1.
fn eval_error(source: &SourceFile, file: &Path, stderr: &str, analysis: &nixpos::Analysis) -> Error {
    let clean = strip_ansi(stderr);
    let file_text = file.to_string_lossy();
    let mut place = None;
    for line in clean.lines() {
        let t = line.trim();
        let Some(rest) = t.strip_prefix("at ") else { continue };
        let Some(rest) = rest.strip_prefix(file_text.as_ref()) else { continue };
        let mut nums = rest.trim_start_matches(':').split(':').map(|n| n.trim().parse::<usize>());
        if let (Some(Ok(line)), Some(Ok(col))) = (nums.next(), nums.next()) {
            place = Some((line.max(1), col.max(1)));
            break;
        }
    }
    // The message: the first `error:` paragraph.
    let mut message = String::new();
    let mut in_error = false;
    for line in clean.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("error:") {
            if in_error {
                break;
            }
            in_error = true;
            message.push_str(rest.trim());
        } else if in_error {
            if t.is_empty() || t.starts_with("at ") || t.starts_with("(use '--show-trace'") {
                break;
            }
            message.push(' ');
            message.push_str(t);
        }
    }
    if message.is_empty() {
        message = clean.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("failed").to_string();
    }
    let message = message.replace(file_text.as_ref(), &source.path);
    // A missing argument is the header's business, not the place Nix names (1:1).
    let missing = message.split("without required argument '").nth(1).and_then(|r| r.split('\'').next());
    if let Some(formal) = missing.and_then(|m| analysis.formals.iter().find(|f| f.name == m)) {
        place = Some(source.position(formal.offset));
    }
    Error::Input(InputError {
        file: source.path.clone(),
        line: place.map_or(1, |p| p.0),
        column: place.map_or(1, |p| p.1),
        source_line: Some(source.line_text(place.map_or(1, |p| p.0)).to_string()).filter(|l| !l.is_empty()),
        message: format!("evaluating the disko configuration failed: {message}"),
        help: Some(
            "the file must evaluate to a disko configuration; it is evaluated without nixpkgs, with \
             `lib` (a stand-in for the common functions of nixpkgs' lib), `pkgs = { }`, `config = { }` \
             and the arguments given with --arg NAME EXPR / --argstr NAME VALUE; --no-eval reads \
             its literal parts without Nix"
                .into(),
        ),
    })
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, Error> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "podfs-disko-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, "create", e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Option names

/// Appends disko's six hooks, which every device type accepts.
macro_rules! with_hooks {
    ($($o:literal),* $(,)?) => {
        &[$($o,)* "preCreateHook", "postCreateHook", "preMountHook", "postMountHook", "preUnmountHook", "postUnmountHook"]
    };
}

/// Option names the validator knows, per disko type, for the unknown-option rule.
///
/// Besides disko's device types (`disk`, `gpt`, `table`, `filesystem`, `btrfs`, `luks`,
/// `swap`, `nodev`) this knows the places that have no type of their own:
/// `gpt_partition` (an entry of a gpt's `partitions`), `table_partition` (of the legacy
/// `table`), `btrfs_subvol` (a btrfs subvolume, disko's internal name) and `devices` (the
/// attribute set under `disko.devices`). Keys starting with `_` are disko's internals and
/// are never reported. `None` for a type whose options are not checked (lvm, zfs, mdadm, …).
pub fn known_options(disko_type: &str) -> Option<&'static [&'static str]> {
    Some(match disko_type {
        "devices" => &["disk", "mdadm", "zpool", "lvm_vg", "nodev", "bcachefs_filesystems"],
        "disk" => with_hooks!["type", "device", "name", "imageName", "imageSize", "content", "destroy"],
        "gpt" => with_hooks!["type", "device", "partitions", "efiGptPartitionFirst"],
        "gpt_partition" => &[
            "type",
            "device",
            "size",
            "start",
            "end",
            "priority",
            "name",
            "label",
            "alignment",
            "hybrid",
            "content",
            "uuid",
        ],
        "table" => with_hooks!["type", "device", "format", "partitions"],
        "table_partition" => {
            &["part-type", "fs-type", "name", "start", "end", "flags", "bootable", "content"]
        }
        "filesystem" => with_hooks!["type", "device", "format", "extraArgs", "mountOptions", "mountpoint"],
        // `devices`: the other members of a multi-device btrfs (disko's own
        // btrfs-multidisk-subvolumes example and test use it).
        "btrfs" => with_hooks![
            "type",
            "device",
            "devices",
            "extraArgs",
            "mountOptions",
            "mountpoint",
            "subvolumes",
            "swap"
        ],
        "btrfs_subvol" => &["name", "type", "extraArgs", "mountOptions", "mountpoint", "swap"],
        "luks" => with_hooks![
            "type",
            "device",
            "name",
            "keyFile",
            "passwordFile",
            "settings",
            "additionalKeyFiles",
            "askPassword",
            "extraFormatArgs",
            "extraOpenArgs",
            "initrdUnlock",
            "content",
        ],
        "swap" => with_hooks![
            "type",
            "device",
            "randomEncryption",
            "priority",
            "resumeDevice",
            "discardPolicy",
            "extraArgs",
            "mountOptions",
        ],
        "nodev" => with_hooks!["type", "fsType", "device", "mountpoint", "mountOptions"],
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// JSON → Layout

/// The device kinds that mark an attribute set as disko's `devices`.
const DEVICE_KINDS: &[&str] = &["disk", "mdadm", "zpool", "lvm_vg", "nodev", "bcachefs_filesystems"];

/// The devices attribute set of a configuration value, below the attribute path `attr`,
/// and its full attribute path.
fn devices_of<'a>(value: &'a Value, attr: &[String]) -> Option<(&'a Map<String, Value>, Vec<String>)> {
    let root = value_at(value, attr)?.as_object()?;
    if let Some(devices) = root.get("disko").and_then(|d| d.get("devices")).and_then(Value::as_object) {
        return Some((devices, [attr.to_vec(), vec!["disko".into(), "devices".into()]].concat()));
    }
    if !root.contains_key("disko") && DEVICE_KINDS.iter().any(|k| root.contains_key(*k)) {
        return Some((root, attr.to_vec()));
    }
    None
}

/// An attribute path with a note about it (the disko type it was under, or a reason).
pub type Noted = (Vec<String>, String);

/// Converts a disko configuration value (`{ disko.devices = …; }`, or the devices
/// attribute set itself) into a [`Layout`], with the option names disko does not know.
/// See [`json_to_layout_at`]. Only the tests want the first two parts alone.
#[cfg(test)]
pub fn json_to_layout(value: &Value) -> (Layout, Vec<(Vec<String>, String)>) {
    let (layout, unknown, _) = json_to_layout_at(value, &[]);
    (layout, unknown)
}

/// Converts the configuration at `attr` into a [`Layout`]: the layout, the option names
/// disko does not know, and what was not analysed (attribute path, reason).
///
/// Disks come in name order. A disk's gpt partitions come in disko's creation order
/// (`priority`, whose default is 100 for `EF02`, 9001 for `size = "100%"` and 1000
/// otherwise, then name); legacy `table` partitions in list order. A disk whose content is
/// a filesystem itself is one partition named after the disk. LVM volume groups and mdadm
/// arrays become disks named `lvm_vg.NAME` and `mdadm.NAME` whose partitions are their
/// logical volumes (or the array's content). Only contents that are a filesystem or a
/// btrfs (possibly inside luks) are in the layout. Absent `mountOptions` are empty (not
/// disko's default `[ "defaults" ]`). Subvolume NOCOW and compression come from
/// `chattr +C` and `btrfs property set … compression` commands in the btrfs
/// `postCreateHook`.
pub fn json_to_layout_at(value: &Value, attr: &[String]) -> (Layout, Vec<Noted>, Vec<Noted>) {
    let mut cx = Convert::default();
    let mut layout = Layout { disks: Vec::new() };
    let Some((devices, prefix)) = devices_of(value, attr) else { return (layout, cx.unknown, cx.skipped) };
    if prefix.len() > attr.len() {
        cx.check(devices, &prefix, "devices");
    }
    for (name, disk) in named_entries(devices, "disk", &prefix, &mut cx.skipped) {
        let path = path_plus(&prefix, &["disk", &name]);
        layout.disks.push(cx.disk(&name, disk, &path, "disk"));
    }
    for (name, md) in named_entries(devices, "mdadm", &prefix, &mut cx.skipped) {
        let path = path_plus(&prefix, &["mdadm", &name]);
        let mut disk = cx.disk(&name, md, &path, "mdadm");
        disk.name = format!("mdadm.{name}");
        layout.disks.push(disk);
    }
    for (name, vg) in named_entries(devices, "lvm_vg", &prefix, &mut cx.skipped) {
        let path = path_plus(&prefix, &["lvm_vg", &name]);
        cx.check(vg, &path, "lvm_vg");
        let mut partitions = Vec::new();
        let mut lvs: Vec<(&String, &Map<String, Value>)> = vg
            .get("lvs")
            .and_then(Value::as_object)
            .map(|o| o.iter().filter_map(|(k, v)| v.as_object().map(|o| (k, o))).collect())
            .unwrap_or_default();
        lvs.sort_by(|a, b| a.0.cmp(b.0));
        for (lv_name, lv) in lvs {
            let lv_path = path_plus(&path, &["lvs", lv_name]);
            cx.check(lv, &lv_path, "lvm_lv");
            let Some(content) = lv.get("content").and_then(Value::as_object) else { continue };
            if let Some(content) = cx.content(content, &path_plus(&lv_path, &["content"])) {
                partitions.push(Partition {
                    name: lv_name.clone(),
                    size: string_of(lv, "size").unwrap_or_default(),
                    type_code: None,
                    priority: None,
                    content,
                });
            }
        }
        layout.disks.push(Disk { name: format!("lvm_vg.{name}"), device: String::new(), partitions });
    }
    for (kind, what) in [("zpool", "a ZFS pool"), ("bcachefs_filesystems", "a bcachefs filesystem")] {
        for (name, _) in named_entries(devices, kind, &prefix, &mut cx.skipped) {
            cx.skipped.push((path_plus(&prefix, &[kind, &name]), format!("{what}: only btrfs is checked")));
        }
    }
    // nodev holds tmpfs and the like: only option names are checked.
    for (name, o) in named_entries(devices, "nodev", &prefix, &mut cx.skipped) {
        cx.check(o, &path_plus(&prefix, &["nodev", &name]), "nodev");
    }
    (layout, cx.unknown, cx.skipped)
}

/// The entries of one device kind (`disk`, `lvm_vg`, …) in name order; entries that are
/// not attribute sets are recorded as skipped.
fn named_entries<'a>(
    devices: &'a Map<String, Value>,
    kind: &str,
    prefix: &[String],
    skipped: &mut Vec<(Vec<String>, String)>,
) -> Vec<(String, &'a Map<String, Value>)> {
    let mut v: Vec<(String, &Map<String, Value>)> = Vec::new();
    for (k, entry) in devices.get(kind).and_then(Value::as_object).into_iter().flatten() {
        match entry.as_object() {
            Some(o) => v.push((k.clone(), o)),
            None => skipped.push((
                path_plus(prefix, &[kind, k]),
                format!("not an attribute set: `{kind}` holds named entries (`{kind}.NAME = {{ … }}`)"),
            )),
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[derive(Default)]
struct Convert {
    unknown: Vec<(Vec<String>, String)>,
    skipped: Vec<(Vec<String>, String)>,
}

fn path_plus(path: &[String], more: &[&str]) -> Vec<String> {
    let mut p = path.to_vec();
    p.extend(more.iter().map(|s| s.to_string()));
    p
}

fn string_of(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings_of(o: &Map<String, Value>, key: &str) -> Vec<String> {
    match o.get(key) {
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

impl Convert {
    /// Records every key of `o` that `disko_type` does not know.
    fn check(&mut self, o: &Map<String, Value>, path: &[String], disko_type: &str) {
        let Some(known) = known_options(disko_type) else { return };
        let mut keys: Vec<&String> = o.keys().collect();
        keys.sort();
        for key in keys {
            if !key.starts_with('_') && !known.contains(&key.as_str()) {
                self.unknown.push((path_plus(path, &[key]), disko_type.to_string()));
            }
        }
    }

    /// A disk (or an mdadm array, `kind`): its partition table's partitions, or its
    /// content as one partition named after it when there is no table.
    fn disk(&mut self, name: &str, disk: &Map<String, Value>, path: &[String], kind: &str) -> Disk {
        self.check(disk, path, kind);
        let mut partitions = Vec::new();
        if let Some(content) = disk.get("content").and_then(Value::as_object) {
            let cpath = path_plus(path, &["content"]);
            match content.get("type").and_then(Value::as_str) {
                Some("gpt") => {
                    self.check(content, &cpath, "gpt");
                    partitions = self.gpt_partitions(content, &cpath);
                }
                Some("table") => {
                    self.check(content, &cpath, "table");
                    partitions = self.table_partitions(content, &cpath);
                }
                _ => {
                    if let Some(content) = self.content(content, &cpath) {
                        partitions.push(Partition {
                            name: name.to_string(),
                            size: "100%".into(),
                            type_code: None,
                            priority: None,
                            content,
                        });
                    }
                }
            }
        }
        Disk { name: name.to_string(), device: string_of(disk, "device").unwrap_or_default(), partitions }
    }

    fn gpt_partitions(&mut self, gpt: &Map<String, Value>, path: &[String]) -> Vec<Partition> {
        let Some(parts) = gpt.get("partitions").and_then(Value::as_object) else {
            if gpt.get("partitions").is_some_and(|p| !p.is_null()) {
                self.skipped.push((
                    path_plus(path, &["partitions"]),
                    "gpt `partitions` must be an attribute set (`partitions.NAME = { … }`); a list is the \
                     legacy `table` type's"
                        .into(),
                ));
            }
            return Vec::new();
        };
        let mut entries: Vec<(i64, &String, &Map<String, Value>)> = parts
            .iter()
            .filter_map(|(name, v)| {
                let p = v.as_object()?;
                let prio = p.get("priority").and_then(Value::as_i64).unwrap_or_else(|| {
                    if p.get("size").and_then(Value::as_str) == Some("100%") {
                        9001
                    } else if p.get("type").and_then(Value::as_str) == Some("EF02") {
                        100
                    } else {
                        1000
                    }
                });
                Some((prio, name, p))
            })
            .collect();
        entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut out = Vec::new();
        for (_, name, p) in entries {
            let ppath = path_plus(path, &["partitions", name]);
            self.check(p, &ppath, "gpt_partition");
            let Some(content) = p.get("content").and_then(Value::as_object) else { continue };
            let Some(content) = self.content(content, &path_plus(&ppath, &["content"])) else { continue };
            let size = match p.get("size") {
                None => "0".to_string(),
                Some(_) => string_of(p, "size").unwrap_or_default(),
            };
            out.push(Partition {
                name: name.clone(),
                size,
                type_code: string_of(p, "type"),
                priority: p.get("priority").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
                content,
            });
        }
        out
    }

    /// The legacy `table` type: a list of partitions with `start` and `end`.
    fn table_partitions(&mut self, table: &Map<String, Value>, path: &[String]) -> Vec<Partition> {
        let Some(parts) = table.get("partitions").and_then(Value::as_array) else { return Vec::new() };
        let mut out = Vec::new();
        for (i, v) in parts.iter().enumerate() {
            let Some(p) = v.as_object() else { continue };
            let ppath = path_plus(path, &["partitions", &i.to_string()]);
            self.check(p, &ppath, "table_partition");
            let Some(content) = p.get("content").and_then(Value::as_object) else { continue };
            let Some(content) = self.content(content, &path_plus(&ppath, &["content"])) else { continue };
            let end = string_of(p, "end").unwrap_or_else(|| "100%".into());
            out.push(Partition {
                name: string_of(p, "name").unwrap_or_else(|| (i + 1).to_string()),
                size: end,
                type_code: None,
                priority: None,
                content,
            });
        }
        out
    }

    /// The layout content of a device's `content`: a filesystem or btrfs, looked for
    /// inside luks; `None` for anything else (whose option names are still checked).
    /// Members of a pool analysed elsewhere (LVM, mdadm, ZFS, bcachefs) and swap are not
    /// filesystems; any other type is recorded as skipped.
    fn content(&mut self, c: &Map<String, Value>, path: &[String]) -> Option<Content> {
        let Some(t) = c.get("type").and_then(Value::as_str) else {
            self.skipped.push((path.to_vec(), "a content without `type`".into()));
            return None;
        };
        self.check(c, path, t);
        match t {
            "swap" | "lvm_pv" | "mdraid" | "zfs" | "bcachefs" | "bcache" => None,
            "filesystem" => Some(Content::Filesystem(Filesystem {
                attr_path: path.to_vec(),
                format: string_of(c, "format").unwrap_or_default(),
                mountpoint: string_of(c, "mountpoint"),
                mount_options: strings_of(c, "mountOptions"),
            })),
            "btrfs" => Some(Content::Btrfs(self.btrfs(c, path))),
            "luks" => {
                let inner = c.get("content").and_then(Value::as_object)?;
                self.content(inner, &path_plus(path, &["content"]))
            }
            other => {
                self.skipped.push((path.to_vec(), format!("content type `{other}` is not checked")));
                None
            }
        }
    }

    fn btrfs(&mut self, c: &Map<String, Value>, path: &[String]) -> Btrfs {
        let mut subvolumes = Vec::new();
        if let Some(subs) = c.get("subvolumes").and_then(Value::as_object) {
            let mut keys: Vec<&String> = subs.keys().collect();
            keys.sort();
            for key in keys {
                let Some(s) = subs[key].as_object() else { continue };
                self.check(s, &path_plus(path, &["subvolumes", key]), "btrfs_subvol");
                subvolumes.push(Subvolume {
                    name: string_of(s, "name").unwrap_or_else(|| key.clone()),
                    mountpoint: string_of(s, "mountpoint"),
                    mount_options: strings_of(s, "mountOptions"),
                    nocow: false,
                    compression: None,
                    purpose: None,
                });
            }
        }
        if let Some(hook) = c.get("postCreateHook").and_then(Value::as_str) {
            apply_hook(hook, &mut subvolumes);
        }
        Btrfs {
            attr_path: path.to_vec(),
            extra_args: strings_of(c, "extraArgs"),
            mountpoint: string_of(c, "mountpoint"),
            mount_options: strings_of(c, "mountOptions"),
            subvolumes,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hooks

/// What the commands of a hook do to paths.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HookEffects {
    /// Paths given to `chattr +C`.
    pub nocow: Vec<String>,
    /// `btrfs property set PATH compression VALUE`: the path and the value (`""` resets).
    pub compression: Vec<(String, String)>,
}

/// Reads `chattr +C PATH` and `btrfs property set PATH compression VALUE` commands from a
/// shell script. Quotes and escapes are undone; variables are left as written.
pub fn hook_effects(script: &str) -> HookEffects {
    let mut fx = HookEffects::default();
    for words in shell_commands(script) {
        let Some(i) = command_word(&words) else { continue };
        if command_is(&words[i], "chattr") {
            let mut args = words[i + 1..].iter();
            let mut sets_nocow = false;
            let mut paths = Vec::new();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "-R" | "-V" | "-f" => {}
                    "-v" | "-p" => {
                        args.next();
                    }
                    m if m.starts_with('+') || m.starts_with('=') => sets_nocow |= m.contains('C'),
                    m if m.starts_with('-') => {}
                    p => paths.push(p.to_string()),
                }
            }
            if sets_nocow {
                fx.nocow.extend(paths);
            }
        }
        if command_is(&words[i], "btrfs") {
            let rest = &words[i + 1..];
            let (Some(group), Some(verb)) = (rest.first(), rest.get(1)) else { continue };
            if !(group.len() >= 4 && "property".starts_with(group.as_str())) || verb != "set" {
                continue;
            }
            let mut positional = Vec::new();
            let mut args = rest[2..].iter();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "-t" => {
                        args.next();
                    }
                    f if f.starts_with('-') && f.len() > 1 => {}
                    p => positional.push(p.to_string()),
                }
            }
            if positional.len() >= 2 && positional[1] == "compression" {
                let value = positional.get(2).cloned().unwrap_or_default();
                fx.compression.push((positional[0].clone(), value));
            }
        }
    }
    fx
}

/// The index of the command's name: after variable assignments, shell keywords and
/// wrappers such as `sudo`.
fn command_word(words: &[String]) -> Option<usize> {
    const SKIP: &[&str] =
        &["sudo", "command", "exec", "env", "nice", "ionice", "time", "then", "do", "else", "if", "!", "{"];
    // `NAME=value` before a command sets a variable for it.
    let assignment = |w: &str| w.find('=').is_some_and(|i| i > 0);
    words.iter().position(|w| !SKIP.contains(&w.as_str()) && !assignment(w))
}

/// Whether `word` runs `name`, by name or by a path ending in it.
fn command_is(word: &str, name: &str) -> bool {
    word == name || (word.contains('/') && word.rsplit('/').next() == Some(name))
}

/// Splits a shell script into simple commands (at newlines, `;`, `&`, `|`, parentheses),
/// each a list of words with quoting undone.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    fn end_word(words: &mut Vec<String>, word: &mut Option<String>) {
        if let Some(w) = word.take() {
            words.push(w);
        }
    }
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' => end_word(&mut words, &mut word),
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                end_word(&mut words, &mut word);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            '#' if word.is_none() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n @ ('"' | '\\' | '$' | '`')) => {
                                w.push(n);
                                chars.next();
                            }
                            Some('\n') => {
                                chars.next();
                            }
                            _ => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(n) => word.get_or_insert_with(String::new).push(n),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut words, &mut word);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// Sets NOCOW and compression on the subvolumes a hook's commands name.
fn apply_hook(script: &str, subvolumes: &mut [Subvolume]) {
    let fx = hook_effects(script);
    for path in &fx.nocow {
        if let Some(i) = subvolume_at(path, subvolumes) {
            subvolumes[i].nocow = true;
        }
    }
    for (path, value) in &fx.compression {
        if let Some(i) = subvolume_at(path, subvolumes) {
            subvolumes[i].compression = compression_of(value);
        }
    }
}

fn compression_of(value: &str) -> Option<Compression> {
    let algo = value.split(':').next().unwrap_or("");
    match algo {
        "zstd" => Some(Compression::Zstd),
        "lzo" => Some(Compression::Lzo),
        "zlib" => Some(Compression::Zlib),
        "none" | "no" => Some(Compression::None),
        _ => None,
    }
}

/// The subvolume a hook path names: `$MNT/NAME` (or `${MNT}/NAME`) below the mounted top
/// level; a path without a variable matches a subvolume it ends with.
fn subvolume_at(path: &str, subvolumes: &[Subvolume]) -> Option<usize> {
    let norm = |s: &str| s.trim_matches('/').to_string();
    if path.starts_with('$') {
        let rest = path.split_once('/').map_or("", |(_, r)| r);
        let rest = norm(rest);
        return subvolumes.iter().position(|s| norm(&s.name) == rest);
    }
    let path = norm(path);
    subvolumes
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let n = norm(&s.name);
            !n.is_empty() && (path == n || path.ends_with(&format!("/{n}")))
        })
        .max_by_key(|(_, s)| s.name.len())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sv(name: &str) -> Subvolume {
        Subvolume {
            name: name.into(),
            mountpoint: None,
            mount_options: Vec::new(),
            nocow: false,
            compression: None,
            purpose: None,
        }
    }

    #[test]
    fn converts_gpt_btrfs_and_filesystem() {
        let v = json!({"disko": {"devices": {"disk": {"main": {
            "type": "disk", "device": "/dev/sda",
            "content": {"type": "gpt", "partitions": {
                "root": {"size": "100%", "content": {"type": "btrfs", "extraArgs": ["-f"],
                    "subvolumes": {
                        "@b": {"mountpoint": "/b", "mountOptions": ["noatime"]},
                        "a": {"name": "@a", "mountpoint": "/a"}
                    },
                    "postCreateHook": "chattr +C \"$MNT/@a\"\nbtrfs property set $MNT/@b compression zstd\n"
                }},
                "ESP": {"size": "1G", "type": "EF00", "priority": 1, "content": {
                    "type": "filesystem", "format": "vfat", "mountpoint": "/boot", "mountOptions": ["umask=0077"]
                }},
                "swap": {"size": "4G", "content": {"type": "swap"}}
            }}
        }}}}});
        let (layout, unknown) = json_to_layout(&v);
        assert!(unknown.is_empty(), "{unknown:?}");
        let disk = &layout.disks[0];
        assert_eq!(disk.device, "/dev/sda");
        let names: Vec<&str> = disk.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ESP", "root"]);
        assert_eq!(disk.partitions[0].priority, Some(1));
        assert_eq!(disk.partitions[0].type_code.as_deref(), Some("EF00"));
        let Content::Btrfs(b) = &disk.partitions[1].content else { panic!("btrfs expected") };
        assert_eq!(b.attr_path.join("."), "disko.devices.disk.main.content.partitions.root.content");
        assert_eq!(b.extra_args, ["-f"]);
        assert!(b.mount_options.is_empty());
        // In key order: `@b` before `a` (named `@a`).
        assert_eq!(b.subvolumes[1].name, "@a");
        assert!(b.subvolumes[1].nocow);
        assert_eq!(b.subvolumes[1].mount_options, Vec::<String>::new());
        assert_eq!(b.subvolumes[0].name, "@b");
        assert_eq!(b.subvolumes[0].compression, Some(Compression::Zstd));
        assert_eq!(b.subvolumes[0].mount_options, ["noatime"]);
    }

    #[test]
    fn devices_at_the_root_luks_and_unknown_options() {
        let v = json!({"disk": {"d": {"device": "/dev/vda", "sizee": 1, "content": {"type": "gpt", "partitions": {
            "p": {"sizee": "1G", "_index": 1, "content": {"type": "luks", "name": "crypt", "content": {
                "type": "btrfs", "extraArg": [], "subvolumes": {"x": {"mountpoints": "/x"}}
            }}}
        }}}}});
        let (layout, unknown) = json_to_layout(&v);
        let Content::Btrfs(b) = &layout.disks[0].partitions[0].content else { panic!("btrfs expected") };
        assert_eq!(b.attr_path.join("."), "disk.d.content.partitions.p.content.content");
        assert_eq!(layout.disks[0].partitions[0].size, "0");
        let found: Vec<(String, &str)> = unknown.iter().map(|(p, t)| (p.join("."), t.as_str())).collect();
        assert_eq!(
            found,
            [
                ("disk.d.sizee".to_string(), "disk"),
                ("disk.d.content.partitions.p.sizee".to_string(), "gpt_partition"),
                ("disk.d.content.partitions.p.content.content.extraArg".to_string(), "btrfs"),
                (
                    "disk.d.content.partitions.p.content.content.subvolumes.x.mountpoints".to_string(),
                    "btrfs_subvol"
                ),
            ]
        );
    }

    #[test]
    fn legacy_table_and_non_configurations() {
        let v = json!({"disko": {"devices": {"disks": {}, "disk": {"old": {"device": "/dev/sdb", "content": {
            "type": "table", "format": "gpt", "partitions": [
                {"name": "boot", "start": "0%", "end": "512MiB", "content": {"type": "filesystem", "format": "vfat"}},
                {"name": "root", "start": "512MiB", "end": "100%", "content": {"type": "btrfs"}}
            ]
        }}}}}});
        let (layout, unknown) = json_to_layout(&v);
        let sizes: Vec<&str> = layout.disks[0].partitions.iter().map(|p| p.size.as_str()).collect();
        assert_eq!(sizes, ["512MiB", "100%"]);
        assert_eq!(
            unknown,
            [(vec!["disko".into(), "devices".into(), "disks".into()], "devices".to_string())]
        );
        for v in [json!(null), json!([1]), json!({"a": 1}), json!({"disko": 3})] {
            assert_eq!(json_to_layout(&v).0.disks.len(), 0);
        }
    }

    #[test]
    fn hooks_set_nocow_and_compression() {
        let script = r#"
            set -eu
            MNT=$(mktemp -d); mount "$device" "$MNT" -o subvol=/
            chattr +C "$MNT/@db" && chattr -R +C ${MNT}/@vm   # the VM images
            /run/current-system/sw/bin/chattr -C "$MNT/@x"
            btrfs property set -t s "$MNT"/@logs compression ""
            btrfs prop set "$MNT/@media" compression none
            btrfs property set /mnt/@cache compression lzo
            echo chattr +C "$MNT/@nope" | true
            # chattr +C "$MNT/@commented"
        "#;
        let mut subs: Vec<Subvolume> =
            ["@db", "@vm", "@x", "@logs", "@media", "@cache", "@commented"].into_iter().map(sv).collect();
        subs[3].compression = Some(Compression::Zstd);
        apply_hook(script, &mut subs);
        let nocow: Vec<&str> = subs.iter().filter(|s| s.nocow).map(|s| s.name.as_str()).collect();
        assert_eq!(nocow, ["@db", "@vm"]);
        assert_eq!(subs[3].compression, None);
        assert_eq!(subs[4].compression, Some(Compression::None));
        assert_eq!(subs[5].compression, Some(Compression::Lzo));
    }

    #[test]
    fn generated_hooks_round_trip() {
        let mut subs: Vec<Subvolume> = ["@a", "@b \"q\"", "@c"].into_iter().map(sv).collect();
        subs[1].nocow = true;
        subs[2].compression = Some(Compression::Zlib);
        let b = Btrfs {
            attr_path: Vec::new(),
            extra_args: Vec::new(),
            mountpoint: None,
            mount_options: Vec::new(),
            subvolumes: subs.clone(),
        };
        let hook = crate::render::disko::post_create_hook(&b).unwrap();
        let mut read: Vec<Subvolume> = ["@a", "@b \"q\"", "@c"].into_iter().map(sv).collect();
        apply_hook(&hook, &mut read);
        assert_eq!(read, subs);
    }

    #[test]
    fn known_options_cover_hooks() {
        assert!(known_options("btrfs").unwrap().contains(&"postCreateHook"));
        assert!(known_options("disk").unwrap().contains(&"preUnmountHook"));
        assert!(!known_options("btrfs_subvol").unwrap().contains(&"postCreateHook"));
        assert!(known_options("zfs").is_none());
    }

    #[test]
    fn evaluation_errors_are_placed_in_the_file() {
        let src = SourceFile::new("disko.nix", "{\n  x = 1 + \"a\";\n}\n");
        let err = "error: cannot add a string to an integer\n\n       at /tmp/t/disko.nix:2:11:\n\n            \
                   1| {\n";
        let none = nixpos::Analysis::default();
        let Error::Input(e) = eval_error(&src, Path::new("/tmp/t/disko.nix"), err, &none) else { panic!() };
        assert_eq!((e.line, e.column), (2, 11));
        assert!(e.message.ends_with("cannot add a string to an integer"), "{}", e.message);
        let Error::Input(e) =
            eval_error(&src, Path::new("/tmp/t/disko.nix"), "\u{1b}[31;1merror:\u{1b}[0m boom\n", &none)
        else {
            panic!()
        };
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.ends_with("boom"), "{}", e.message);
    }
}
