//! Keeps the routes and the console free of SQL. Every statement lives with its tables: a
//! read model's in `projections::<model>::read`, the dispatcher's in
//! `delivery::read`, the API's own (vault, tokens, erasure, audit log) in
//! the module that owns them. This walks every source file under
//! `src/routes` and `src/console` and names, by file and line, each string literal that holds
//! SQL and each call that runs a statement.

use std::path::{Path, PathBuf};

/// Fragments only SQL has: upper case, so prose in comments and docs never
/// matches (and comments are not read anyway). Each is built from pieces,
/// so this file's own literals hold none of them.
const SQL: &[&str] = &[
    concat!("SEL", "ECT "),
    concat!("INS", "ERT INTO"),
    concat!("DEL", "ETE FROM"),
    concat!("ON CON", "FLICT"),
    concat!(" FR", "OM rm."),
];

/// The driver's methods that run or prepare a statement.
const CALLS: &[&str] = &[
    ".query(",
    ".query_one(",
    ".query_opt(",
    ".query_raw(",
    ".execute(",
    ".execute_raw(",
    ".batch_execute(",
    ".prepare(",
    ".prepare_cached(",
    ".prepare_typed(",
    ".prepare_typed_cached(",
];

/// Something in a route file that should not be there.
#[derive(Debug, PartialEq, Eq)]
struct Finding {
    /// The line, from 1.
    line: usize,
    /// What it is.
    what: String,
}

/// A source split into its code (comments and literals blanked, line
/// breaks kept) and its string literals, each with the line it starts on.
struct Split {
    code: String,
    literals: Vec<(usize, String)>,
}

/// Where a raw string (`r"..."`, `r#"..."#`, `br"..."`) starting at `i`
/// opens: the index of its opening quote and its number of `#`.
fn raw_string_at(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let after_prefix = match (chars.get(i), chars.get(i + 1)) {
        (Some('r'), _) => i + 1,
        (Some('b'), Some('r')) => i + 2,
        _ => return None,
    };
    let hashes = chars[after_prefix..]
        .iter()
        .take_while(|c| **c == '#')
        .count();
    (chars.get(after_prefix + hashes) == Some(&'"')).then_some((after_prefix + hashes, hashes))
}

fn split(source: &str) -> Split {
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let mut literals = Vec::new();
    let mut line = 1;
    // What was skipped becomes spaces, its line breaks kept, so the code's
    // lines are the file's.
    let blank = |code: &mut String, line: &mut usize, skipped: &[char]| {
        for c in skipped {
            if *c == '\n' {
                code.push('\n');
                *line += 1;
            } else {
                code.push(' ');
            }
        }
    };
    let is_ident = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let starts_token = i == 0 || !is_ident(chars.get(i - 1));
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| i + p);
            blank(&mut code, &mut line, &chars[i..end]);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (0, i);
            while j < chars.len() {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let end = j.min(chars.len());
            blank(&mut code, &mut line, &chars[i..end]);
            i = end;
        } else if let Some((quote, hashes)) = raw_string_at(&chars, i).filter(|_| starts_token) {
            let closing: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body = quote + 1;
            let end = (body..chars.len())
                .find(|j| chars[*j..].starts_with(&closing))
                .unwrap_or(chars.len());
            literals.push((line, chars[body..end].iter().collect()));
            let end = (end + closing.len()).min(chars.len());
            blank(&mut code, &mut line, &chars[i..end]);
            i = end;
        } else if c == '"' || (c == 'b' && next == Some('"') && starts_token) {
            let body = if c == '"' { i + 1 } else { i + 2 };
            let mut j = body;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = j.min(chars.len());
            literals.push((line, chars[body..end].iter().collect()));
            let end = (end + 1).min(chars.len());
            blank(&mut code, &mut line, &chars[i..end]);
            i = end;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: `'\''`, `'\n'`, `'\u{..}'`.
            let end = (i + 3..chars.len())
                .find(|j| chars[*j] == '\'')
                .map_or(chars.len(), |j| j + 1);
            blank(&mut code, &mut line, &chars[i..end]);
            i = end;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            // A character literal (`'"'` must not open a string).
            blank(&mut code, &mut line, &chars[i..i + 3]);
            i += 3;
        } else {
            // Code, a lifetime's quote included.
            code.push(c);
            if c == '\n' {
                line += 1;
            }
            i += 1;
        }
    }
    Split { code, literals }
}

/// What in `source` is SQL or runs it.
fn findings(source: &str) -> Vec<Finding> {
    let Split { code, literals } = split(source);
    let mut found = Vec::new();
    for (line, literal) in literals {
        let update = literal.contains(concat!("UPD", "ATE ")) && literal.contains(" SET ");
        if update || SQL.iter().any(|s| literal.contains(s)) {
            let start: String = literal.split_whitespace().collect::<Vec<_>>().join(" ");
            let start: String = start.chars().take(60).collect();
            found.push(Finding {
                line,
                what: format!("SQL in a string literal: \"{start}...\""),
            });
        }
    }
    for (n, text) in code.lines().enumerate() {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for call in CALLS {
            // `uri.query()` takes no statement.
            let runs = compact
                .match_indices(call)
                .any(|(at, _)| !compact[at + call.len()..].starts_with(')'));
            if runs {
                found.push(Finding {
                    line: n + 1,
                    what: format!("runs SQL: {call}...)"),
                });
            }
        }
    }
    found.sort_by_key(|f| f.line);
    found
}

/// Every `.rs` file under `dir`, in order.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn routes_and_console_hold_no_sql() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src/routes"), &mut files);
    assert!(files.len() > 20, "found only {files:?} under src/routes");
    let routes = files.len();
    sources(&root.join("src/console"), &mut files);
    assert!(
        files.len() > routes + 10,
        "found only {files:?} under src/console"
    );
    let mut report = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("a readable source file");
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        for f in findings(&source) {
            report.push(format!("{name}:{}: {}", f.line, f.what));
        }
    }
    assert!(
        report.is_empty(),
        "SQL belongs in projections::<model>::read, delivery::read or the API module that \
         owns the table, not in routes or console pages:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_scan_reads_literals_and_calls_but_not_comments() {
    // Built from pieces, so this file's own literals hold no SQL.
    let sql = concat!("SEL", "ECT id ", "FROM rm.apps");
    let update = concat!("UPD", "ATE apps ", "SE", "T name = $1");
    let source = format!(
        "/// {sql}: documented\n\
         // {sql}: commented /* {sql} */\n\
         let quote = '\"'; let tick = '\\''; fn f<'a>(x: &'a str) -> &'a str {{ x }}\n\
         let s = \"{sql}\";\n\
         client{dot}query(s, &[]).await?;\n\
         let t = r#\"{sql} \"quoted\" \"#;\n\
         let u = \"{update}\";\n\
         state.commands{dot}execute::<App, _>(&stream, &ids, decide);\n\
         let q = uri{dot}query();\n\
         let fine = \"a SELECTion of apps\";\n\
         client\n    {dot}query_opt(\"x\", &[])\n",
        dot = "."
    );
    let lines: Vec<usize> = findings(&source).iter().map(|f| f.line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 12], "{:#?}", findings(&source));
}
