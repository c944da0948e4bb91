//! The layers hold: every `crate::…` path in `src/` (non-test code) points
//! down the stack that `docs/ARCHITECTURE.md` draws, never up it, and the
//! modules of one layer form no circle. Only the edges (intake, CLI,
//! daemon) name a store backend (`store::sqlite`).
//!
//! A new top-level module fails here until it is given a layer below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module of `src/` and its layer, bottom first.
const LAYERS: &[(&str, u8)] = &[
    // 0: values every layer shares; no I/O.
    ("domain", 0),
    ("text", 0),
    // 1: the rules model and its evaluation, daemon settings.
    ("settings", 1),
    ("rules", 1),
    ("schedule", 1),
    ("config", 1),
    // 2: the store's interface (traits, roster parsing) and its backends.
    ("store", 2),
    // 3: the working subsystems, generic over the store.
    ("timers", 3),
    ("dispatch", 3),
    ("pipeline", 3),
    ("escalate", 3),
    // 4: the edges: HTTP, command line, the daemon that wires it all.
    ("intake", 4),
    ("cli", 4),
    ("daemon", 4),
    ("telemetry", 4),
];

const LAYER_NAMES: [&str; 5] = ["values", "rules", "store", "subsystems", "edges"];

/// The only module of the store a subsystem may not name.
const BACKEND: &str = "store::sqlite";

#[test]
fn no_import_in_src_runs_up_a_layer_or_closes_a_circle() {
    let files = sources(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path());
    assert!(
        files.len() > 100,
        "read only {} files under src/: the walk is broken",
        files.len()
    );
    let graph = Graph::of(&files);
    assert!(
        graph.edges.len() > 40,
        "found only {} module dependencies: the scanner is broken",
        graph.edges.len()
    );
    let problems = graph.problems();
    assert!(
        problems.is_empty(),
        "{} layering problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_check_names_both_files_of_an_upward_import_a_circle_and_a_backend_named_too_high() {
    let files = vec![
        file("src/domain/phone.rs", "use crate::daemon::App;\n"),
        file("src/daemon.rs", "use crate::domain::Phone;\n"),
        file("src/pipeline/mod.rs", "use crate::escalate::act;\n"),
        file(
            "src/escalate/engine.rs",
            "use crate::{pipeline::decide, store::sqlite::SqliteStore};\n",
        ),
        file(
            "src/store/mod.rs",
            "// crate::cli in a comment is not an import\n",
        ),
        file(
            "src/config/mod.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::daemon::App;\n}\n",
        ),
    ];
    let problems = Graph::of(&files).problems();
    let all = problems.join("\n");
    assert!(
        all.contains("src/domain/phone.rs (domain, layer 0 values) imports crate::daemon (src/daemon.rs, layer 4 edges)"),
        "{all}"
    );
    assert!(all.contains("circle in layer 3 subsystems"), "{all}");
    assert!(all.contains("src/pipeline/mod.rs"), "{all}");
    assert!(all.contains("src/escalate/engine.rs"), "{all}");
    assert!(
        all.contains("src/escalate/engine.rs (escalate) names the SQLite backend"),
        "{all}"
    );
    assert!(!all.contains("crate::cli"), "a comment counted: {all}");
    assert!(
        !all.contains("src/config/mod.rs"),
        "test code counted: {all}"
    );
    assert_eq!(problems.len(), 3, "{all}");
}

#[test]
fn a_module_without_a_layer_is_refused_with_a_hint() {
    let files = vec![file("src/tracking/mod.rs", "use crate::domain::Phone;\n")];
    let all = Graph::of(&files).problems().join("\n");
    assert!(
        all.contains("src/tracking/mod.rs: module `tracking` has no layer"),
        "{all}"
    );
    assert!(all.contains("hint: add it to LAYERS"), "{all}");
}

fn file(path: &str, text: &str) -> (String, String) {
    (path.to_owned(), text.to_owned())
}

/// Every `.rs` file under `dir` with its text, as `src/…` paths, except
/// files that exist only in tests (`#[cfg(test)] mod x;`).
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.path().extension().is_some_and(|e| e == "rs") {
            let rel = entry.path().strip_prefix(dir.parent().unwrap()).unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            files.push((rel.to_string_lossy().into_owned(), text));
        }
    }
    let test_only: BTreeSet<String> = files
        .iter()
        .flat_map(|(path, text)| test_modules(path, text))
        .collect();
    files.retain(|(path, _)| !test_only.contains(path));
    files
}

/// The files of `path`'s children declared `#[cfg(test)] mod name;`.
fn test_modules(path: &str, text: &str) -> Vec<String> {
    let dir = match path.strip_suffix("mod.rs").or(path.strip_suffix("lib.rs")) {
        Some(dir) => dir.to_owned(),
        None => format!("{}/", path.trim_end_matches(".rs")),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]")
        .filter_map(|w| {
            let rest = w[1].strip_prefix("pub(crate) ").unwrap_or(w[1]);
            let name = rest.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(format!("{dir}{name}.rs"))
        })
        .collect()
}

/// Which module a file belongs to: its top-level module, or the backend.
fn module_of(path: &str) -> Option<String> {
    let rel = path.strip_prefix("src/")?.trim_end_matches(".rs");
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["lib"] | ["main"] => None,
        ["store", "sqlite", ..] => Some(BACKEND.to_owned()),
        [first, ..] => Some((*first).to_owned()),
        [] => None,
    }
}

/// The module a path after `crate::` names (`store::sqlite::X` is the
/// backend), given its segments.
fn target(segments: &[&str]) -> Option<String> {
    match segments {
        ["store", "sqlite", ..] => Some(BACKEND.to_owned()),
        [first, ..] if !first.is_empty() => Some((*first).to_owned()),
        _ => None,
    }
}

/// The code of a file that is not test code, without comments: it ends
/// where a `#[cfg(test)]` module with a body starts.
fn code(text: &str) -> String {
    let tests = text.match_indices("\n#[cfg(test)]\n").find(|(at, m)| {
        let next = text[at + m.len()..].lines().next().unwrap_or("");
        next.trim_end().ends_with('{')
    });
    let text = match tests {
        Some((at, _)) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module a piece of code names through `crate::`, including the
/// members of `crate::{a, b::c}` groups.
fn references(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code[..at].ends_with(|c: char| ident(c) || c == ':') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let segments: Vec<&str> = item.trim().split("::").collect();
                out.extend(target(&segments));
            }
        } else {
            let path: String = rest.chars().take_while(|&c| ident(c) || c == ':').collect();
            let segments: Vec<&str> = path.split("::").collect();
            out.extend(target(&segments));
        }
    }
    out
}

struct Graph {
    /// (from module, to module) → the files that make the edge.
    edges: BTreeMap<(String, String), BTreeSet<String>>,
    /// A module → the file that defines it.
    homes: BTreeMap<String, String>,
    unknown: BTreeMap<String, String>,
}

fn layer(module: &str) -> Option<u8> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().find(|(m, _)| *m == top).map(|(_, l)| *l)
}

impl Graph {
    fn of(files: &[(String, String)]) -> Graph {
        let mut graph = Graph {
            edges: BTreeMap::new(),
            homes: BTreeMap::new(),
            unknown: BTreeMap::new(),
        };
        for (path, text) in files {
            let Some(me) = module_of(path) else { continue };
            if layer(&me).is_none() {
                graph.unknown.entry(me.clone()).or_insert(path.clone());
            }
            let top = me.split("::").next().unwrap_or(&me).to_owned();
            let is_home = path == &format!("src/{top}.rs") || path == &format!("src/{top}/mod.rs");
            if is_home {
                graph.homes.insert(top, path.clone());
            }
            for to in references(&code(text)) {
                let same = to == me || (me == BACKEND && to == "store");
                if !same {
                    graph
                        .edges
                        .entry((me.clone(), to))
                        .or_default()
                        .insert(path.clone());
                }
            }
        }
        graph
    }

    fn home(&self, module: &str) -> String {
        let top = module.split("::").next().unwrap_or(module);
        if module == BACKEND {
            return "src/store/sqlite/mod.rs".into();
        }
        self.homes
            .get(top)
            .cloned()
            .unwrap_or_else(|| format!("src/{top}"))
    }

    fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .unknown
            .iter()
            .map(|(m, path)| {
                format!(
                    "{path}: module `{m}` has no layer\n  hint: add it to LAYERS in tests/it/layers.rs and to the layer diagram in docs/ARCHITECTURE.md"
                )
            })
            .collect();
        for ((from, to), paths) in &self.edges {
            let (Some(lf), Some(lt)) = (layer(from), layer(to)) else {
                continue;
            };
            for path in paths {
                if to == BACKEND && lf < 4 && !from.starts_with("store") {
                    out.push(format!(
                        "{path} ({from}) names the SQLite backend ({BACKEND})\n  hint: hold the store as `S: Backend`; only the intake, CLI and daemon choose a backend"
                    ));
                } else if lt > lf {
                    out.push(format!(
                        "{path} ({from}, layer {lf} {}) imports crate::{to} ({}, layer {lt} {}): a layer up",
                        LAYER_NAMES[lf as usize],
                        self.home(to),
                        LAYER_NAMES[lt as usize]
                    ));
                }
            }
        }
        out.extend(self.circles());
        out
    }

    /// Circles among the top-level modules of one layer (a circle across
    /// layers already shows as an import a layer up).
    fn circles(&self) -> Vec<String> {
        let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
        let mut next: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in self.edges.keys() {
            if top(from) != top(to) && layer(from).is_some() && layer(from) == layer(to) {
                next.entry(top(from)).or_default().insert(top(to));
            }
        }
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for start in next.keys() {
            if let Some(path) = cycle_from(&next, start)
                && seen.insert(path.iter().cloned().collect::<BTreeSet<_>>())
            {
                let files: Vec<String> = path
                    .windows(2)
                    .map(|w| {
                        let paths: Vec<String> = self
                            .edges
                            .iter()
                            .filter(|((f, t), _)| top(f) == w[0] && top(t) == w[1])
                            .flat_map(|(_, p)| p.iter().cloned())
                            .collect();
                        format!("{} → {} ({})", w[0], w[1], paths.join(", "))
                    })
                    .collect();
                let l = layer(start).unwrap_or(0);
                out.push(format!(
                    "circle in layer {l} {}: {}",
                    LAYER_NAMES[l as usize],
                    files.join("; ")
                ));
            }
        }
        out
    }
}

/// A path `start → … → start` in `next`, if there is one.
fn cycle_from(next: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut visited = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().cloned().unwrap_or_default();
        for n in next.get(&last).into_iter().flatten() {
            if n == start {
                let mut done = path.clone();
                done.push(n.clone());
                return Some(done);
            }
            if visited.insert(n.clone()) {
                let mut longer = path.clone();
                longer.push(n.clone());
                stack.push(longer);
            }
        }
    }
    None
}
