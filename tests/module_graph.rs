//! The import graph runs one way: within each crate of the workspace, no top-level module
//! imports another that imports it back, directly or through others.
//!
//! The check reads each crate's `src/` tree as text; nothing is compiled. In every file it finds
//! the paths that name a module of the same crate:
//!
//! - `use crate::a::b` and `use crate::{a, b::c}`, and inline paths (`crate::a::f()`,
//!   `$crate::a` in a macro);
//! - `super::` paths that climb out of their top-level module (`super::b` in `src/a.rs`, or
//!   `super::super::b` in `src/a/x.rs`), counting inline `mod m { .. }` blocks;
//! - `crate::X` where the crate root imports `X` from a module (`use a::X;` in `lib.rs`).
//!
//! Each such path is an edge between two children of the crate root (`config` -> `console`).
//! Comments and string literals are skipped; so is test code (`#[cfg(test)]` items and the
//! modules they declare), which may drive its module through any other. Paths that stay inside
//! their own top-level module, and paths to the root's own items (`crate::now_micros`), are not
//! edges.
//!
//! Every cycle of the graph is printed, each edge with the first line that makes it. The test
//! fails on a cycle that [`EXEMPT`] does not list, and on an entry of [`EXEMPT`] that is no
//! longer a cycle (it is to be removed). It is its own test binary: it needs no crate of the
//! workspace and builds in seconds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crates checked: their directory below the workspace root.
const CRATES: &[&str] = &["server", "sim", "load-tests", "."];

/// Cycles allowed, as (crate directory, the cycle as printed, why). A cycle is printed from its
/// first module by name, each module followed by the one it imports: `a -> b` is a importing b
/// and b importing a. None is allowed: the list stays for a cycle that must stand while it is
/// being undone, with its reason.
const EXEMPT: &[(&str, &str, &str)] = &[];

/// One top-level module's reference to another: where it is written.
#[derive(Debug, Clone)]
struct Site {
    file: PathBuf,
    line: usize,
}

/// A crate's graph: for each top-level module, the modules it names, with the first site.
type Graph = BTreeMap<String, BTreeMap<String, Site>>;

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = String::new();
    let mut failures = Vec::new();
    for dir in CRATES {
        let src = root.join(dir).join("src");
        let graph = crate_graph(&src);
        let exempt: BTreeSet<&str> = EXEMPT
            .iter()
            .filter(|(d, ..)| d == dir)
            .map(|(_, cycle, _)| *cycle)
            .collect();
        let found = cycles(&graph);
        let names: Vec<String> = found.iter().map(|c| c.join(" -> ")).collect();
        let _ = writeln!(report, "{dir}/src: {} cycle(s)", found.len());
        for (cycle, modules) in names.iter().zip(&found) {
            let excused = exempt.contains(cycle.as_str());
            let mark = if excused { "exempt" } else { "NOT EXEMPT" };
            let _ = writeln!(report, "  {cycle} [{mark}]");
            for (a, b) in cycle_edges(modules) {
                let site = &graph[a][b];
                let (file, line) = (
                    site.file.strip_prefix(root).unwrap_or(&site.file),
                    site.line,
                );
                let _ = writeln!(report, "      {a} -> {b}: {}:{line}", file.display());
            }
            if !excused {
                failures.push(format!("{dir}: {cycle}"));
            }
        }
        for gone in exempt.iter().filter(|e| !names.iter().any(|c| c == *e)) {
            failures.push(format!(
                "{dir}: {gone} is no longer a cycle: remove it from EXEMPT"
            ));
        }
    }
    println!("{report}");
    assert!(
        failures.is_empty(),
        "module import cycles:\n{}\n\n{report}",
        failures.join("\n")
    );
}

/// The consecutive edges of a cycle written as its modules in order (the last leads back to
/// the first).
fn cycle_edges(cycle: &[String]) -> impl Iterator<Item = (&str, &str)> {
    (0..cycle.len()).map(|i| (cycle[i].as_str(), cycle[(i + 1) % cycle.len()].as_str()))
}

// === the graph ===

/// The graph of the crate whose sources are in `src`.
fn crate_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(src, f).into_iter().next())
        .collect();
    // Each file's tokens without its test items, and the modules those declare (their files
    // are test code too).
    let mut parsed = Vec::new();
    let mut test_modules = Vec::new();
    for file in &files {
        let module = module_path(src, file);
        let (toks, declared) = without_test_items(tokens(&read(file)));
        test_modules.extend(
            declared
                .into_iter()
                .map(|m| [module.clone(), vec![m]].concat()),
        );
        parsed.push((file, module, toks));
    }
    let imported = parsed
        .iter()
        .find(|(_, module, _)| module.is_empty())
        .map(|(_, _, toks)| root_imports(toks, &tops))
        .unwrap_or_default();
    let mut graph = Graph::new();
    for (file, module, toks) in &parsed {
        let Some(top) = module.first() else { continue };
        if test_modules.iter().any(|t| module.starts_with(t)) {
            continue;
        }
        for (target, line) in references(toks, module, &tops, &imported) {
            if &target != top {
                let site = Site {
                    file: file.to_path_buf(),
                    line,
                };
                graph
                    .entry(top.clone())
                    .or_default()
                    .entry(target)
                    .or_insert(site);
            }
        }
    }
    graph
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The module a file holds: `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`; the crate root
/// (`lib.rs`, `main.rs`) is `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file below src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] || parts == ["main"] {
        parts.pop();
    }
    parts
}

// === references ===

/// A token of Rust source: an identifier or keyword, `::`, or one punctuation character.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Punct(char),
}

/// The modules the file's paths name, given its module path, as (top-level module, line).
fn references(
    toks: &[(Tok, usize)],
    module: &[String],
    tops: &BTreeSet<String>,
    imported: &BTreeMap<String, String>,
) -> Vec<(String, usize)> {
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &Tok| toks.get(i).is_some_and(|(x, _)| x == t);
    let mut out = Vec::new();
    // Inline `mod m {` blocks open at the file's brace depth given.
    let (mut depth, mut inline): (usize, Vec<(String, usize)>) = (0, Vec::new());
    let mut i = 0;
    while i < toks.len() {
        let line = toks[i].1;
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" && is(i + 2, &Tok::Punct('{')) => {
                if let Some(name) = ident(i + 1) {
                    inline.push((name.to_owned(), depth));
                }
            }
            // `crate::` (also `$crate::`), not the tail of a longer path (`a::crate` is not Rust).
            Tok::Ident(k)
                if k == "crate" && is(i + 1, &Tok::Path) && !(i > 0 && is(i - 1, &Tok::Path)) =>
            {
                for (name, at) in tree_heads(toks, i + 2) {
                    if let Some(top) = resolve_root(&name, tops, imported) {
                        out.push((top, toks[at].1));
                    }
                }
            }
            Tok::Ident(k) if k == "super" && !(i > 0 && is(i - 1, &Tok::Path)) => {
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(m, _)| m.clone()));
                let mut j = i;
                while ident(j) == Some("super") && is(j + 1, &Tok::Path) {
                    here.pop();
                    j += 2;
                }
                if here.is_empty() {
                    for (name, _) in tree_heads(toks, j) {
                        if let Some(top) = resolve_root(&name, tops, imported) {
                            out.push((top, line));
                        }
                    }
                }
                i = j.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The top-level module that `crate::name` is in: the module itself, or the one the root
/// imports `name` from.
fn resolve_root(
    name: &str,
    tops: &BTreeSet<String>,
    imported: &BTreeMap<String, String>,
) -> Option<String> {
    if tops.contains(name) {
        Some(name.to_owned())
    } else {
        imported.get(name).cloned()
    }
}

/// The first segment of each path a use tree at `i` names: `a` for `a::b`, `a` and `b` for
/// `{a::x, b, self}` (`self` and `*` left out), with each one's token index.
fn tree_heads(toks: &[(Tok, usize)], i: usize) -> Vec<(String, usize)> {
    match toks.get(i) {
        Some((Tok::Ident(s), _)) if s != "self" => vec![(s.clone(), i)],
        Some((Tok::Punct('{'), _)) => {
            let (mut out, mut depth, mut expect_head) = (Vec::new(), 0usize, true);
            for (j, (t, _)) in toks.iter().enumerate().skip(i) {
                match t {
                    Tok::Punct('{') => {
                        depth += 1;
                        expect_head = depth == 1;
                    }
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Punct(',') if depth == 1 => expect_head = true,
                    Tok::Ident(s) if expect_head => {
                        if s != "self" {
                            out.push((s.clone(), j));
                        }
                        expect_head = false;
                    }
                    _ => expect_head = false,
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The names the crate root imports from its modules (`use a::X;`, `pub use a::{X, Y as Z};`),
/// each with the module: `crate::X` names that module too.
fn root_imports(toks: &[(Tok, usize)], tops: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, (t, _)) in toks.iter().enumerate() {
        if *t != Tok::Ident("use".into()) {
            continue;
        }
        let mut j = i + 1;
        if matches!(toks.get(j), Some((Tok::Ident(s), _)) if s == "crate" || s == "self") {
            j += 2;
        }
        let Some((Tok::Ident(top), _)) = toks.get(j) else {
            continue;
        };
        if !tops.contains(top) {
            continue;
        }
        // Every name the statement binds: the identifier before each `,`, `}` or `;` (after
        // `as`, the new name).
        let mut last = None;
        for (t, _) in &toks[j..] {
            match t {
                Tok::Ident(s) => last = Some(s.clone()),
                Tok::Punct(',' | '}' | ';') => {
                    if let Some(name) = last.take() {
                        out.insert(name, top.clone());
                    }
                }
                _ => {}
            }
            if *t == Tok::Punct(';') {
                break;
            }
        }
    }
    out
}

/// The tokens without the items under `#[cfg(test)]`, and the names of the modules among them
/// that are files (`#[cfg(test)] mod tests;`).
fn without_test_items(toks: Vec<(Tok, usize)>) -> (Vec<(Tok, usize)>, Vec<String>) {
    let cfg_test = ["#", "[", "cfg", "(", "test", ")", "]"];
    let text = |t: &Tok| match t {
        Tok::Ident(s) => s.clone(),
        Tok::Path => "::".into(),
        Tok::Punct(c) => c.to_string(),
    };
    let (mut kept, mut files, mut i) = (Vec::new(), Vec::new(), 0);
    while i < toks.len() {
        let here = toks[i..].iter().take(cfg_test.len()).map(|(t, _)| text(t));
        if !here.eq(cfg_test.iter().map(|s| s.to_string())) {
            kept.push(toks[i].clone());
            i += 1;
            continue;
        }
        // Past the attribute, then the item: up to its `;`, or its block's closing brace.
        let start = i + cfg_test.len();
        let (mut j, mut depth) = (start, 0usize);
        while j < toks.len() {
            match toks[j].0 {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Punct(';') if depth == 0 => {
                    let words: Vec<String> = toks[start..j].iter().map(|(t, _)| text(t)).collect();
                    if let [.., m, name] = words.as_slice() {
                        if m == "mod" {
                            files.push(name.clone());
                        }
                    }
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        i = j + 1;
    }
    (kept, files)
}

// === tokens ===

/// The tokens of Rust source with their line numbers, without comments, strings and character
/// literals (so that neither a doc comment nor a message can make an edge).
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            i = skip_block_comment(&c, i, &mut line);
        } else if ch == '"' {
            i = skip_string(&c, i + 1, None, &mut line);
        } else if ch == '\'' {
            i = skip_char_or_lifetime(&c, i);
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|x| **x == '#').count();
            if matches!(word.as_str(), "r" | "br" | "b" | "c" | "cr")
                && c.get(i + hashes) == Some(&'"')
                && (hashes == 0 || word.ends_with('r'))
            {
                let raw = word.ends_with('r').then_some(hashes);
                i = skip_string(&c, i + hashes + 1, raw, &mut line);
            } else if word == "b" && c.get(i) == Some(&'\'') {
                i = skip_char_or_lifetime(&c, i);
            } else if word == "r" && hashes == 1 {
                i += 1; // a raw identifier: `r#type`
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// Past a (nestable) block comment starting at `i`.
fn skip_block_comment(c: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            if c[i] == '\n' {
                *line += 1;
            }
            i += 1;
        }
    }
    i
}

/// Past a string whose body starts at `i`; `raw`: the number of `#` of a raw string (no
/// escapes, closed by `"` and as many `#`).
fn skip_string(c: &[char], mut i: usize, raw: Option<usize>, line: &mut usize) -> usize {
    let hashes = raw.unwrap_or(0);
    while i < c.len() {
        match c[i] {
            '\\' if raw.is_none() => i += 2,
            '"' if c[i + 1..]
                .iter()
                .take(hashes)
                .filter(|x| **x == '#')
                .count()
                == hashes =>
            {
                return i + 1 + hashes;
            }
            ch => {
                if ch == '\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    i
}

/// Past a character literal at `i` (`'x'`, `'\n'`, `'\u{1F600}'`), or past the `'` of a
/// lifetime or label (its name is read as an identifier next).
fn skip_char_or_lifetime(c: &[char], i: usize) -> usize {
    if c.get(i + 1) == Some(&'\\') {
        let mut j = i + 3;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        j + 1
    } else if c.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        i + 1
    }
}

// === cycles ===

/// The graph's cycles to show: for every edge `a -> b` from which `a` can be reached again, the
/// shortest way back from `b` to `a`; each cycle once, starting at its first module by name.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut out = BTreeSet::new();
    for (a, edges) in graph {
        for b in edges.keys() {
            let Some(back) = shortest_path(graph, b, a) else {
                continue;
            };
            let mut cycle = vec![a.clone()];
            cycle.extend(back);
            let first = (0..cycle.len()).min_by_key(|i| &cycle[*i]).unwrap_or(0);
            cycle.rotate_left(first);
            out.insert(cycle);
        }
    }
    out.into_iter().collect()
}

/// The modules on a shortest path from `from` to `to` (`from` included, `to` not), if there
/// is one.
fn shortest_path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            let (mut path, mut at) = (Vec::new(), to);
            while let Some(prev) = came_from.get(at) {
                path.push(prev.to_string());
                at = prev;
            }
            path.reverse();
            return Some(path);
        }
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            if w != from && !came_from.contains_key(w.as_str()) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

// === the checker's own tests ===

#[test]
fn paths_are_found_in_code_and_not_in_comments_or_strings() {
    let tops: BTreeSet<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
    let src = r##"
        //! crate::c in a doc comment
        use crate::b::X;
        use crate::{c::Y, self as z};
        /* crate::d /* nested */ crate::d */
        fn f<'a>(x: &'a str) -> char { let _ = "crate::d"; let _ = r#"crate::e"#; '\'' }
        pub(super) fn g() -> char { 'e' }
        mod inner { use super::super::d; }
        #[cfg(test)]
        mod tests { use crate::e; }
        #[cfg(test)]
        mod more_tests;
    "##;
    let (toks, test_files) = without_test_items(tokens(src));
    assert_eq!(test_files, ["more_tests"]);
    let refs = references(&toks, &["a".into()], &tops, &BTreeMap::new());
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["b", "c", "d"]);
    assert_eq!(refs[0].1, 3, "line of `use crate::b::X`");
}

#[test]
fn a_cycle_is_found_and_named() {
    let site = || Site {
        file: PathBuf::new(),
        line: 1,
    };
    let mut g = Graph::new();
    for (a, b) in [("x", "y"), ("y", "z"), ("z", "x"), ("z", "w")] {
        g.entry(a.into()).or_default().insert(b.into(), site());
    }
    assert_eq!(cycles(&g), [["x", "y", "z"].map(String::from).to_vec()]);
}
