//! Precise recording of real builds.
//!
//! 1. `tracelink run -- make -j2` of a generated multi-file C project (generated
//!    header, a tool built and run during the build, a static library, a
//!    transient stamp file, files no rule uses) must record exactly the
//!    materials and products that an independent observer, `strace -f` on a
//!    fresh identical copy of the project, sees; with the digests of the
//!    pristine files (materials) and of the built files (products).
//! 2. A checkout snapshot (`-x -p .`) plus a precise `make` step that deletes
//!    one pre-existing file and modifies another pass in-toto 3.1.0's
//!    `in-toto-verify` against a layout written for precise links, and fail it
//!    when a source is tampered with between checkout and build.
//!
//! Both need root and /dev/fuse (SKIP otherwise, FAIL under CI); test 1 also
//! strace, make and cc, test 2 the in-toto 3.1.0 venv (`TRACELINK_INTOTO_VENV`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Shared helpers

fn sha256_file(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

fn write_file(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
}

/// The default excludes of tracelink and in-toto-run: `*.link*`, `.git`,
/// `*.pyc`, `*~` (gitignore-style, so they match any path component).
fn excluded(rel: &str) -> bool {
    rel.split('/')
        .any(|c| c == ".git" || c.contains(".link") || c.ends_with(".pyc") || c.ends_with('~'))
}

/// Every regular file under `root` (relative, `/`-separated, not excluded),
/// with its sha256.
fn tree_digests(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let ft = entry.file_type().unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if excluded(&rel) {
                continue;
            }
            if ft.is_dir() {
                walk(root, &path, out);
            } else if ft.is_file() {
                out.insert(rel, sha256_file(&path));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The one `<step>.<keyid8>.link` in `dir`, parsed.
fn read_link(dir: &Path, step: &str) -> (PathBuf, Value) {
    let links: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{step}.")) && name.ends_with(".link")
        })
        .collect();
    assert_eq!(
        links.len(),
        1,
        "expected one {step} link in {dir:?}: {links:?}"
    );
    let text = fs::read_to_string(&links[0]).unwrap();
    let link: Value = serde_json::from_str(&text).unwrap();
    (links[0].clone(), link)
}

/// path -> sha256 of a link's `materials` or `products`, checking that sha256
/// is the only algorithm (the default).
fn artifact_digests(link: &Value, which: &str) -> BTreeMap<String, String> {
    let map = link["signed"][which]
        .as_object()
        .unwrap_or_else(|| panic!("link has no {which} object: {link}"));
    map.iter()
        .map(|(path, digest)| {
            let d = digest.as_object().unwrap();
            assert_eq!(
                d.keys().collect::<Vec<_>>(),
                vec!["sha256"],
                "{which} {path}: default digest set must be sha256 only"
            );
            (path.clone(), d["sha256"].as_str().unwrap().to_string())
        })
        .collect()
}

/// A report of the differences between two path sets, or None when equal.
fn set_diff(
    label: &str,
    observer: &BTreeSet<String>,
    tracelink: &BTreeSet<String>,
) -> Option<String> {
    if observer == tracelink {
        return None;
    }
    let missing: Vec<_> = observer.difference(tracelink).collect();
    let extra: Vec<_> = tracelink.difference(observer).collect();
    let mut s = String::new();
    writeln!(s, "== {label}: tracelink differs from the strace observer").unwrap();
    writeln!(
        s,
        "   missing in tracelink's link ({}): {missing:?}",
        missing.len()
    )
    .unwrap();
    writeln!(
        s,
        "   extra in tracelink's link   ({}): {extra:?}",
        extra.len()
    )
    .unwrap();
    writeln!(s, "   strace observer ({}): {observer:?}", observer.len()).unwrap();
    writeln!(s, "   tracelink link  ({}): {tracelink:?}", tracelink.len()).unwrap();
    Some(s)
}

/// Lexically normalized `base/rel` (no `.`, no `..`); `rel` may be absolute.
fn resolve(base: &Path, rel: &str) -> PathBuf {
    let joined = base.join(rel);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Test 1: the generated C project

const MODULES: usize = 30;

fn generate_c_project(root: &Path) {
    fs::create_dir_all(root).unwrap();
    let mods: Vec<String> = (0..MODULES).map(|i| format!("mod{i:02}")).collect();

    // Headers: common.h everywhere, math_ops.h / str_ops.h / table.h /
    // config.h / version.h only in some files, unused.h nowhere.
    write_file(
        root,
        "include/common.h",
        "#ifndef COMMON_H\n#define COMMON_H\n#define SCALE 3\n#endif\n",
    );
    write_file(
        root,
        "include/math_ops.h",
        "#ifndef MATH_OPS_H\n#define MATH_OPS_H\nstatic inline int sq(int x) { return x * x; }\n#endif\n",
    );
    write_file(
        root,
        "include/str_ops.h",
        "#ifndef STR_OPS_H\n#define STR_OPS_H\nstatic inline int twice(int x) { return x + x; }\n#endif\n",
    );
    write_file(
        root,
        "include/unused.h",
        "#error \"no rule includes this header\"\n",
    );
    write_file(
        root,
        "include/util.h",
        "#ifndef UTIL_H\n#define UTIL_H\nint util_add(int a, int b);\nint util_mul(int a, int b);\nint util_neg(int a);\n#endif\n",
    );
    let mut modules_h = String::from("#ifndef MODULES_H\n#define MODULES_H\n");
    for m in &mods {
        writeln!(modules_h, "int {m}(int x);").unwrap();
    }
    modules_h.push_str("#endif\n");
    write_file(root, "include/modules.h", &modules_h);

    for (i, m) in mods.iter().enumerate() {
        let mut c = String::from("#include \"common.h\"\n");
        if i < MODULES / 2 {
            c.push_str("#include \"math_ops.h\"\n");
        } else {
            c.push_str("#include \"str_ops.h\"\n");
        }
        if i % 3 == 0 {
            c.push_str("#include \"config.h\"\n");
        }
        if i % 5 == 0 {
            c.push_str("#include \"version.h\"\n");
        }
        if i % 7 == 0 {
            c.push_str("#include \"table.h\"\n");
        }
        let op = if i < MODULES / 2 { "sq(x)" } else { "twice(x)" };
        let extra = match (i % 3 == 0, i % 7 == 0) {
            (true, true) => " + NUM_MODULES + TABLE[x & 7]",
            (true, false) => " + NUM_MODULES",
            (false, true) => " + TABLE[x & 7]",
            (false, false) => "",
        };
        writeln!(c, "int {m}(int x) {{ return {op} * SCALE + {i}{extra}; }}").unwrap();
        write_file(root, &format!("src/{m}.c"), &c);
    }

    let mut main_c = String::from(
        "#include <stdio.h>\n#include \"common.h\"\n#include \"modules.h\"\n\
         #include \"util.h\"\n#include \"config.h\"\n#include \"version.h\"\n\
         int main(void) {\n    long s = 0;\n",
    );
    for m in &mods {
        writeln!(main_c, "    s += {m}(2);").unwrap();
    }
    main_c.push_str(
        "    s = util_add((int)s, util_mul(2, util_neg(-3)));\n\
         \x20   printf(\"%s %s %d %ld\\n\", GREETING, BUILD_ID, NUM_MODULES, s);\n\
         \x20   return 0;\n}\n",
    );
    write_file(root, "src/main.c", &main_c);

    write_file(
        root,
        "lib/u_add.c",
        "#include \"util.h\"\nint util_add(int a, int b) { return a + b; }\n",
    );
    write_file(
        root,
        "lib/u_mul.c",
        "#include \"util.h\"\nint util_mul(int a, int b) { return a * b; }\n",
    );
    write_file(
        root,
        "lib/u_neg.c",
        "#include \"util.h\"\n#include \"common.h\"\nint util_neg(int a) { return -a * SCALE / SCALE; }\n",
    );

    // A tool compiled and run during the build to generate a header.
    write_file(
        root,
        "tools/gentable.c",
        "#include <stdio.h>\nint main(void) {\n    printf(\"static const int TABLE[8] = {\");\n\
         \x20   for (int i = 0; i < 8; i++) printf(\"%d,\", i * i);\n    printf(\"};\\n\");\n\
         \x20   return 0;\n}\n",
    );

    write_file(
        root,
        "config.h.in",
        "#define GREETING \"@GREETING@\"\n#define NUM_MODULES @NUM_MODULES@\n",
    );
    write_file(root, "VERSION", "1.2.3\n");
    // A script under the root that the build executes (a material).
    write_file(
        root,
        "scripts/mkversion.sh",
        "#!/bin/sh\nprintf '#define BUILD_ID \"%s\"\\n' \"$(cat VERSION)\"\n",
    );
    fs::set_permissions(
        root.join("scripts/mkversion.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    // Present in the tree, used by no rule.
    write_file(
        root,
        "README",
        "A generated project; nobody builds unused.c.\n",
    );
    write_file(root, "unused.c", "#error \"no rule compiles this file\"\n");

    let mut mk = String::new();
    writeln!(mk, "CC = cc").unwrap();
    writeln!(mk, "CFLAGS = -O1 -Wall -Iinclude -Ibuild -MMD -MP").unwrap();
    writeln!(mk, "MODS = {}", mods.join(" ")).unwrap();
    mk.push_str(
        "OBJS = $(MODS:%=build/%.o) build/main.o
LIBOBJS = build/lib/u_add.o build/lib/u_mul.o build/lib/u_neg.o
GENERATED = build/config.h build/version.h build/table.h

all: build/prog

build/prog: $(OBJS) build/libutil.a
\ttouch build/link.stamp
\t$(CC) -o $@ $(OBJS) build/libutil.a
\trm -f build/link.stamp

build/libutil.a: $(LIBOBJS)
\tar rcs $@ $(LIBOBJS)

build/%.o: src/%.c | $(GENERATED)
\t$(CC) $(CFLAGS) -c $< -o $@

build/lib/%.o: lib/%.c
\tmkdir -p build/lib
\t$(CC) $(CFLAGS) -c $< -o $@

build/config.h: config.h.in
\tmkdir -p build
\tsed -e 's/@GREETING@/hello from make/' -e 's/@NUM_MODULES@/30/' config.h.in > $@

build/version.h: VERSION scripts/mkversion.sh
\tmkdir -p build
\t./scripts/mkversion.sh > $@

build/gentable: tools/gentable.c
\tmkdir -p build
\t$(CC) -O1 -o $@ tools/gentable.c

build/table.h: build/gentable
\t./build/gentable > $@

-include $(OBJS:.o=.d) $(LIBOBJS:.o=.d)

.PHONY: all
",
    );
    write_file(root, "Makefile", &mk);
}

/// Command for a build: make -j2 in `dir`, without any inherited make state.
fn make_j2(cmd: &mut Command, dir: &Path) {
    cmd.current_dir(dir)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("MAKEFILES")
        .env("LC_ALL", "C");
}

// --- strace log analysis ----------------------------------------------------

/// One completed system call from the log.
struct Call {
    pid: u32,
    name: String,
    args: Vec<String>,
    /// What follows `= `: `0`, `3</abs/path>`, `-1 ENOENT (...)`, `?`.
    ret: String,
}

impl Call {
    fn ok(&self) -> bool {
        !self.ret.starts_with('-') && !self.ret.starts_with('?')
    }

    /// The number returned, if any.
    fn ret_num(&self) -> Option<i64> {
        let end = self
            .ret
            .find(|c: char| !c.is_ascii_digit() && c != '-')
            .unwrap_or(self.ret.len());
        self.ret[..end].parse().ok()
    }

    /// The path in the `-y` annotation of the returned descriptor.
    fn ret_path(&self) -> Option<PathBuf> {
        annotation(&self.ret).map(PathBuf::from)
    }
}

/// The text of the first `<...>` annotation in `s` (strace -y), without a
/// trailing ` (deleted)`.
fn annotation(s: &str) -> Option<&str> {
    let start = s.find('<')?;
    let end = s[start..].find('>')? + start;
    let inner = &s[start + 1..end];
    Some(inner.strip_suffix(" (deleted)").unwrap_or(inner))
}

/// Decodes a strace string argument `"..."` (C escapes).
fn c_string(arg: &str) -> Option<String> {
    let body = arg.trim().strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
            b'\\' if i + 1 < bytes.len() => {
                i += 1;
                match bytes[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'x' => {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    d @ b'0'..=b'7' => {
                        let mut v = u32::from(d - b'0');
                        let mut n = 1;
                        while n < 3 && i + 1 < bytes.len() && (b'0'..=b'7').contains(&bytes[i + 1])
                        {
                            i += 1;
                            n += 1;
                            v = v * 8 + u32::from(bytes[i] - b'0');
                        }
                        out.push(v as u8);
                    }
                    other => out.push(other),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    None
}

/// Parses `name(args) = ret` into a call; None for lines that are not calls.
fn parse_call(pid: u32, text: &str) -> Option<Call> {
    let open = text.find('(')?;
    let name = text[..open].trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut i = open + 1;
    let mut close = None;
    while i < bytes.len() {
        let c = bytes[i] as char;
        match c {
            '"' => {
                // Copy the whole string literal.
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                cur.push_str(&text[start..(i + 1).min(text.len())]);
            }
            '<' => {
                // A -y annotation: copy up to '>' without interpreting it.
                let end = text[i..].find('>').map_or(text.len() - 1, |e| i + e);
                cur.push_str(&text[i..=end]);
                i = end;
            }
            '(' | '[' | '{' => {
                depth += 1;
                cur.push(c);
            }
            ')' | ']' | '}' => {
                if depth == 0 && c == ')' {
                    close = Some(i);
                    break;
                }
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => {
                args.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    let close = close?;
    if !cur.trim().is_empty() {
        args.push(cur.trim().to_string());
    }
    let rest = text[close + 1..].trim_start();
    let ret = rest.strip_prefix('=')?.trim().to_string();
    Some(Call {
        pid,
        name,
        args,
        ret,
    })
}

/// The calls of an `strace -f` log, with `<unfinished ...>` / `<... resumed>`
/// pairs joined.
fn strace_calls(log: &str) -> Vec<Call> {
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let text = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        } else if rest.starts_with("<... ") {
            let Some(idx) = rest.find("resumed>") else {
                continue;
            };
            let tail = &rest[idx + "resumed>".len()..];
            match pending.remove(&pid) {
                Some(head) => format!("{head}{tail}"),
                None => continue,
            }
        } else {
            rest.to_string()
        };
        if let Some(call) = parse_call(pid, &text) {
            calls.push(call);
        }
    }
    calls
}

/// What the observer saw, as absolute paths.
#[derive(Default)]
struct Observed {
    /// Opened with read access (O_RDONLY, O_RDWR) or executed.
    read: BTreeSet<PathBuf>,
    /// Opened with write access, or made the target of rename/link/truncate.
    written: BTreeSet<PathBuf>,
    /// Content replaced regardless of bytes: O_TRUNC, truncate, rename or
    /// link onto the name.
    replaced: BTreeSet<PathBuf>,
    /// Unlinked or renamed away.
    removed: BTreeSet<PathBuf>,
    /// Sources of hard links.
    link_sources: BTreeSet<PathBuf>,
    /// Working directories the build ran in (for the report).
    cwds: BTreeSet<PathBuf>,
    /// Things this observer does not model (symlink creation...).
    unmodelled: Vec<String>,
}

/// Interprets the calls of an strace log of a run started in `start_cwd`.
fn observe(calls: &[Call], start_cwd: &Path) -> Observed {
    let mut obs = Observed::default();
    // cwd per pid as known at this point of the log.
    let mut cwd: HashMap<u32, PathBuf> = HashMap::new();
    // Relative execs of pids whose cwd was not yet known: resolved at the end
    // with the cwd inherited at fork (the parent's clone returns later in a
    // -f log than the child's first call).
    let mut late_execs: Vec<(u32, String)> = Vec::new();
    if let Some(first) = calls.first() {
        cwd.insert(first.pid, start_cwd.to_path_buf());
    }

    for call in calls {
        let pid = call.pid;
        // Any AT_FDCWD</dir> annotation tells this process's cwd.
        for a in &call.args {
            if a.starts_with("AT_FDCWD<")
                && let Some(dir) = annotation(a)
            {
                cwd.insert(pid, PathBuf::from(dir));
            }
        }
        if !call.ok() {
            continue; // failed calls are probes, not artifacts
        }
        let here = cwd.get(&pid).cloned();
        let dir_of = |arg: &str| -> Option<PathBuf> {
            if arg.starts_with("AT_FDCWD") {
                annotation(arg).map(PathBuf::from).or_else(|| here.clone())
            } else {
                annotation(arg).map(PathBuf::from)
            }
        };
        let at = |dirfd: &str, path: &str| -> Option<PathBuf> {
            let p = c_string(path)?;
            if p.starts_with('/') {
                Some(resolve(Path::new("/"), &p))
            } else {
                Some(resolve(&dir_of(dirfd)?, &p))
            }
        };
        let plain = |path: &str| -> Option<PathBuf> { at("AT_FDCWD", path) };
        let record_open = |obs: &mut Observed, path: Option<PathBuf>, flags: &str| {
            let Some(path) = call.ret_path().or(path) else {
                obs.unmodelled
                    .push(format!("unresolved open: {}", render(call)));
                return;
            };
            if flags.contains("O_PATH") {
                return;
            }
            let write = flags.contains("O_WRONLY") || flags.contains("O_RDWR");
            let read = !flags.contains("O_WRONLY");
            if read {
                obs.read.insert(path.clone());
            }
            if write {
                obs.written.insert(path.clone());
            }
            if flags.contains("O_TRUNC") {
                obs.replaced.insert(path);
            }
        };
        match call.name.as_str() {
            "open" if !call.args.is_empty() => {
                let flags = call.args.get(1).cloned().unwrap_or_default();
                record_open(&mut obs, plain(&call.args[0]), &flags);
            }
            "creat" if !call.args.is_empty() => {
                record_open(&mut obs, plain(&call.args[0]), "O_WRONLY|O_CREAT|O_TRUNC");
            }
            "openat" | "openat2" if call.args.len() >= 3 => {
                record_open(&mut obs, at(&call.args[0], &call.args[1]), &call.args[2]);
            }
            "execve" | "execveat" => {
                let (dirfd, path) = if call.name == "execve" {
                    ("AT_FDCWD", call.args.first())
                } else {
                    (call.args[0].as_str(), call.args.get(1))
                };
                let Some(p) = path.and_then(|p| c_string(p)) else {
                    continue;
                };
                if p.starts_with('/') {
                    obs.read.insert(resolve(Path::new("/"), &p));
                } else if dirfd == "AT_FDCWD" && here.is_none() {
                    late_execs.push((pid, p));
                } else if let Some(d) = dir_of(dirfd) {
                    obs.read.insert(resolve(&d, &p));
                }
            }
            "rename" | "renameat" | "renameat2" => {
                let (from, to) = if call.name == "rename" {
                    (plain(&call.args[0]), plain(&call.args[1]))
                } else {
                    (
                        at(&call.args[0], &call.args[1]),
                        at(&call.args[2], &call.args[3]),
                    )
                };
                let (Some(from), Some(to)) = (from, to) else {
                    obs.unmodelled.push(format!("unresolved: {}", render(call)));
                    continue;
                };
                if call.args.iter().any(|a| a.contains("RENAME_EXCHANGE")) {
                    obs.unmodelled.push(format!("exchange: {}", render(call)));
                }
                obs.removed.insert(from);
                obs.written.insert(to.clone());
                obs.replaced.insert(to);
            }
            "unlink" | "unlinkat" => {
                let path = if call.name == "unlink" {
                    plain(&call.args[0])
                } else {
                    if call.args.get(2).is_some_and(|f| f.contains("AT_REMOVEDIR")) {
                        continue; // a directory
                    }
                    at(&call.args[0], &call.args[1])
                };
                match path {
                    Some(p) => {
                        obs.removed.insert(p);
                    }
                    None => obs.unmodelled.push(format!("unresolved: {}", render(call))),
                }
            }
            "link" | "linkat" => {
                let (from, to) = if call.name == "link" {
                    (plain(&call.args[0]), plain(&call.args[1]))
                } else {
                    (
                        at(&call.args[0], &call.args[1]),
                        at(&call.args[2], &call.args[3]),
                    )
                };
                if let (Some(from), Some(to)) = (from, to) {
                    obs.link_sources.insert(from);
                    obs.written.insert(to.clone());
                    obs.replaced.insert(to);
                }
            }
            "truncate" => {
                if let Some(p) = plain(&call.args[0]) {
                    obs.written.insert(p.clone());
                    obs.replaced.insert(p);
                }
            }
            "ftruncate" => {
                if let Some(p) = annotation(&call.args[0]) {
                    obs.written.insert(PathBuf::from(p));
                    obs.replaced.insert(PathBuf::from(p));
                }
            }
            "symlink" | "symlinkat" => {
                obs.unmodelled.push(format!("symlink: {}", render(call)));
            }
            "chdir" => {
                if let Some(p) = plain(&call.args[0]) {
                    obs.cwds.insert(p.clone());
                    cwd.insert(pid, p);
                }
            }
            "fchdir" => {
                if let Some(p) = annotation(&call.args[0]) {
                    obs.cwds.insert(PathBuf::from(p));
                    cwd.insert(pid, PathBuf::from(p));
                }
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                if let (Some(child), Some(dir)) = (call.ret_num(), here.clone()) {
                    let child = u32::try_from(child).unwrap();
                    cwd.entry(child).or_insert(dir);
                }
            }
            _ => {}
        }
        if let Some(d) = cwd.get(&pid) {
            obs.cwds.insert(d.clone());
        }
    }
    for (pid, p) in late_execs {
        let base = cwd
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| start_cwd.to_path_buf());
        obs.read.insert(resolve(&base, &p));
    }
    obs
}

fn render(call: &Call) -> String {
    format!(
        "{} {}({}) = {}",
        call.pid,
        call.name,
        call.args.join(", "),
        call.ret
    )
}

/// Relative paths under `root` of the absolute paths in `set`.
fn under_root(set: &BTreeSet<PathBuf>, root: &Path) -> BTreeSet<String> {
    set.iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_str().unwrap().to_string())
        .filter(|p| !excluded(p))
        .collect()
}

#[test]
fn make_j2_build_matches_strace_observer() {
    const TEST: &str = "make_j2_build_matches_strace_observer";
    if common::precise_unavailable(TEST, &[]) {
        return;
    }
    for prog in ["strace", "make", "cc", "ar", "sed"] {
        if !common::have(prog) && common::skip(TEST, &format!("{prog} is not installed")) {
            return;
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().canonicalize().unwrap();
    let key = common::rfc8032_key(&tmp_path);
    let meta = tmp_path.join("meta");
    fs::create_dir(&meta).unwrap();

    // --- tracelink's build ---------------------------------------------
    let proj = tmp_path.join("proj");
    generate_c_project(&proj);
    let pristine = tree_digests(&proj);
    assert!(pristine.len() > MODULES + 10, "{pristine:?}");

    let mut cmd = common::tracelink();
    cmd.args(["run", "-n", "build", "-k"])
        .arg(&key)
        .arg("-d")
        .arg(&meta)
        .args(["--", "make", "-j2"]);
    make_j2(&mut cmd, &proj);
    let out = common::output(&mut cmd);
    assert!(
        out.status.success(),
        "tracelink run -- make -j2 failed:\n{}",
        common::show(&out)
    );
    let (link_path, link) = read_link(&meta, "build");
    assert_eq!(link["signed"]["byproducts"]["return-value"], 0, "{link}");
    assert_eq!(
        link["signed"]["environment"]["tracelink"]["mode"], "precise",
        "{link}"
    );
    assert_eq!(
        link["signed"]["environment"]["tracelink"]["complete"], true,
        "{link}"
    );
    let trace = link_path.with_file_name(format!(
        "{}.trace.json.gz",
        link_path.file_name().unwrap().to_str().unwrap()
    ));
    assert!(trace.is_file(), "no runtime trace {trace:?}");
    let materials = artifact_digests(&link, "materials");
    let products = artifact_digests(&link, "products");
    let after_tracelink = tree_digests(&proj);

    let run = common::output(Command::new(proj.join("build/prog")).current_dir(&proj));
    assert!(
        run.status.success(),
        "built program fails:\n{}",
        common::show(&run)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.starts_with("hello from make 1.2.3 30 "),
        "built program printed {stdout:?}"
    );

    // --- the observer: strace on a fresh identical copy ----------------------
    let copy = tmp_path.join("copy").join("proj");
    generate_c_project(&copy);
    assert_eq!(
        tree_digests(&copy),
        pristine,
        "the fresh copy is not identical to the pristine project"
    );
    let log = tmp_path.join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-y",
        "-s",
        "4096",
        "-e",
        "trace=%file,%desc,%process",
        "-o",
    ])
    .arg(&log)
    .args(["make", "-j2"]);
    make_j2(&mut cmd, &copy);
    let out = common::output(&mut cmd);
    assert!(
        out.status.success(),
        "strace make -j2 failed:\n{}",
        common::show(&out)
    );
    let after_strace = tree_digests(&copy);
    assert_eq!(
        after_strace.keys().collect::<Vec<_>>(),
        after_tracelink.keys().collect::<Vec<_>>(),
        "the build through tracelink left a different tree than the plain build"
    );

    let log_text = fs::read_to_string(&log).unwrap();
    let calls = strace_calls(&log_text);
    assert!(calls.len() > 1000, "strace log too short:\n{log_text}");
    let obs = observe(&calls, &copy);
    assert!(
        obs.unmodelled.is_empty(),
        "the strace observer cannot model: {:#?}",
        obs.unmodelled
    );
    let outside: Vec<_> = obs.cwds.iter().filter(|d| !d.starts_with(&copy)).collect();
    assert!(
        outside.is_empty(),
        "build processes ran outside the project: {outside:?}"
    );

    let read = under_root(&obs.read, &copy);
    let written = under_root(&obs.written, &copy);
    let replaced = under_root(&obs.replaced, &copy);
    let removed = under_root(&obs.removed, &copy);
    let link_sources = under_root(&obs.link_sources, &copy);

    // Section 3: a pre-existing file is a material if read/executed, replaced,
    // removed, hard-linked, or written so that its content changed.
    let changed = |p: &String| after_strace.get(p) != pristine.get(p);
    let expected_materials: BTreeSet<String> = pristine
        .keys()
        .filter(|p| {
            read.contains(*p)
                || replaced.contains(*p)
                || removed.contains(*p)
                || link_sources.contains(*p)
                || (written.contains(*p) && changed(p))
        })
        .cloned()
        .collect();
    // A file existing at the end is a product if the build created it,
    // replaced it, or changed its content.
    let expected_products: BTreeSet<String> = after_strace
        .keys()
        .filter(|p| {
            (written.contains(*p) && !pristine.contains_key(*p))
                || replaced.contains(*p)
                || (written.contains(*p) && changed(p))
        })
        .cloned()
        .collect();

    // Sanity of the observer and of the project design, before comparing.
    for must in [
        "Makefile",
        "config.h.in",
        "VERSION",
        "scripts/mkversion.sh",
        "src/main.c",
        "src/mod29.c",
        "include/common.h",
        "include/math_ops.h",
        "include/str_ops.h",
        "include/util.h",
        "lib/u_neg.c",
        "tools/gentable.c",
    ] {
        assert!(
            expected_materials.contains(must),
            "observer: {must} should be a material: {expected_materials:?}"
        );
    }
    for never in ["README", "unused.c", "include/unused.h"] {
        assert!(
            !expected_materials.contains(never) && !read.contains(never),
            "observer: {never} is used by no rule: {expected_materials:?}"
        );
    }
    for must in [
        "build/prog",
        "build/libutil.a",
        "build/gentable",
        "build/table.h",
        "build/config.h",
        "build/version.h",
        "build/mod00.o",
        "build/mod00.d",
        "build/lib/u_add.o",
    ] {
        assert!(
            expected_products.contains(must),
            "observer: {must} should be a product: {expected_products:?}"
        );
    }
    assert!(
        written.contains("build/link.stamp") && removed.contains("build/link.stamp"),
        "observer: the stamp file should be created and removed"
    );
    assert!(!expected_products.contains("build/link.stamp"));
    let new_files: BTreeSet<String> = after_strace
        .keys()
        .filter(|p| !pristine.contains_key(*p))
        .cloned()
        .collect();
    assert!(
        new_files.is_subset(&expected_products),
        "observer missed how these files were created: {:?}",
        new_files.difference(&expected_products).collect::<Vec<_>>()
    );

    // --- the comparison -----------------------------------------------------
    let mut report = String::new();
    let got_materials: BTreeSet<String> = materials.keys().cloned().collect();
    let got_products: BTreeSet<String> = products.keys().cloned().collect();
    if let Some(d) = set_diff("materials", &expected_materials, &got_materials) {
        report.push_str(&d);
    }
    if let Some(d) = set_diff("products", &expected_products, &got_products) {
        report.push_str(&d);
    }
    for (path, digest) in &materials {
        match pristine.get(path) {
            Some(want) if want == digest => {}
            want => writeln!(
                report,
                "== material {path}: digest {digest}, the pristine file has {want:?}"
            )
            .unwrap(),
        }
    }
    for (path, digest) in &products {
        match after_tracelink.get(path) {
            Some(want) if want == digest => {}
            want => writeln!(
                report,
                "== product {path}: digest {digest}, the built file has {want:?}"
            )
            .unwrap(),
        }
    }
    assert!(
        report.is_empty(),
        "tracelink's precise link of `make -j2` disagrees with the strace observer \
         ({} calls):\n{report}",
        calls.len()
    );
    println!(
        "make -j2: {} materials and {} products, equal to the strace observer's",
        materials.len(),
        products.len()
    );
}

// ---------------------------------------------------------------------------
// Test 2: in-toto-verify of a checkout snapshot plus a precise build

fn generate_small_project(root: &Path) {
    write_file(
        root,
        "Makefile",
        "CC = cc
all: build/hello

build/hello: build/main.o build/greet.o
\t$(CC) -o $@ build/main.o build/greet.o
\trm -f old.log
\techo built >> VERSION

build/%.o: src/%.c include/greet.h
\tmkdir -p build
\t$(CC) -Iinclude -c $< -o $@

.PHONY: all
",
    );
    write_file(
        root,
        "src/main.c",
        "#include \"greet.h\"\nint main(void) { greet(\"world\"); return 0; }\n",
    );
    write_file(
        root,
        "src/greet.c",
        "#include <stdio.h>\n#include \"greet.h\"\nvoid greet(const char *who) { printf(\"hello, %s\\n\", who); }\n",
    );
    write_file(
        root,
        "include/greet.h",
        "#ifndef GREET_H\n#define GREET_H\nvoid greet(const char *who);\n#endif\n",
    );
    write_file(root, "VERSION", "1.0\n");
    write_file(root, "old.log", "stale log from an earlier build\n");
    write_file(root, "README", "hello: says hello\n");
}

const LAYOUT_PY: &str = r#"
import sys
from in_toto.models.layout import Layout, Step, Inspection
from in_toto.models.metadata import Metablock

alice_pub, out = sys.argv[1], sys.argv[2]
layout = Layout()
layout.set_relative_expiration(days=1)
alice = layout.add_functionary_key_from_path(alice_pub)

checkout = Step(name="checkout")
checkout.pubkeys = [alice["keyid"]]
checkout.expected_command = []
checkout.expected_materials = [["DISALLOW", "*"]]
checkout.expected_products = [["CREATE", "*"], ["DISALLOW", "*"]]

# Precise links: materials are what make read, changed or removed, each
# with its content from before the build, so every one of them must come
# from the checkout unchanged. Products are only what make created or
# changed: the build outputs and VERSION (appended to). old.log, deleted,
# is a material only: MATCH consumes it on the materials side, and it must
# not appear among the products (DISALLOW). No DELETE rule: on the
# products side it consumes nothing (old.log is no product), and on the
# materials side "material and not product" is also true of every file make
# only read, so it cannot tell a deletion from a read in precise links; the
# inspection below checks on the final tree that old.log is gone. No
# "MATCH * WITH PRODUCTS FROM checkout" among the products either: unchanged
# sources are not products of a precise link, and it would let the build
# rewrite a source with its old bytes unnoticed.
build = Step(name="build")
build.pubkeys = [alice["keyid"]]
build.expected_command = ["make"]
build.expected_materials = [
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", "checkout"],
    ["DISALLOW", "*"],
]
build.expected_products = [
    ["CREATE", "build/*"],
    ["MODIFY", "VERSION"],
    ["DISALLOW", "*"],
]

# The final tree (recorded by the verifier) is the checkout overlaid with
# the build's products, without old.log.
final = Inspection(name="final-tree")
final.set_run_from_string("./build/hello")
final.expected_materials = [
    ["DISALLOW", "old.log"],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", "build"],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", "checkout"],
    ["DISALLOW", "*"],
]
final.expected_products = [
    ["MATCH", "*", "WITH", "MATERIALS", "FROM", "final-tree"],
    ["DISALLOW", "*"],
]

layout.steps = [checkout, build]
layout.inspect = [final]
layout.validate()
Metablock(signed=layout).dump(out)
"#;

struct Chain {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    proj: PathBuf,
    links: PathBuf,
}

/// Keys, checkout link, (optional tampering), precise build link, signed
/// layout.
fn record_chain(venv: &Path, tamper: bool) -> Chain {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let proj = dir.join("proj");
    let links = dir.join("links");
    fs::create_dir(&links).unwrap();
    generate_small_project(&proj);
    let pristine = tree_digests(&proj);

    for name in ["alice.pem", "owner.pem"] {
        let out = common::output(common::tracelink().current_dir(&dir).args(["keygen", name]));
        assert!(
            out.status.success(),
            "keygen {name}:\n{}",
            common::show(&out)
        );
    }

    let out = common::output(
        common::tracelink()
            .current_dir(&proj)
            .args(["run", "-n", "checkout", "-k"])
            .arg(dir.join("alice.pem"))
            .arg("-d")
            .arg(&links)
            .args(["-x", "-p", "."]),
    );
    assert!(out.status.success(), "checkout:\n{}", common::show(&out));
    let (_, checkout) = read_link(&links, "checkout");
    let checkout_products = artifact_digests(&checkout, "products");
    assert_eq!(checkout_products, pristine, "checkout snapshot");

    if tamper {
        let mut src = fs::read_to_string(proj.join("src/greet.c")).unwrap();
        src.push_str("/* changed after checkout */\n");
        fs::write(proj.join("src/greet.c"), src).unwrap();
    }
    let before_build = tree_digests(&proj);

    let mut cmd = common::tracelink();
    cmd.args(["run", "-n", "build", "-k"])
        .arg(dir.join("alice.pem"))
        .arg("-d")
        .arg(&links)
        .args(["--", "make"]);
    make_j2(&mut cmd, &proj);
    let out = common::output(&mut cmd);
    assert!(out.status.success(), "build:\n{}", common::show(&out));
    let (_, build) = read_link(&links, "build");
    assert_eq!(
        build["signed"]["environment"]["tracelink"]["complete"], true,
        "{build}"
    );
    let after_build = tree_digests(&proj);

    // The precise link itself, before any verifier looks at it.
    let materials = artifact_digests(&build, "materials");
    let products = artifact_digests(&build, "products");
    let want_materials: BTreeMap<String, String> = [
        "Makefile",
        "src/main.c",
        "src/greet.c",
        "include/greet.h",
        "VERSION",
        "old.log",
    ]
    .iter()
    .map(|p| (p.to_string(), before_build[*p].clone()))
    .collect();
    let want_products: BTreeMap<String, String> =
        ["build/main.o", "build/greet.o", "build/hello", "VERSION"]
            .iter()
            .map(|p| (p.to_string(), after_build[*p].clone()))
            .collect();
    assert_eq!(
        materials, want_materials,
        "build materials (read, modified VERSION, deleted old.log; not README)"
    );
    assert_eq!(
        products, want_products,
        "build products (created build/*, modified VERSION; not old.log)"
    );
    assert!(!proj.join("old.log").exists());

    let script = dir.join("make_layout.py");
    fs::write(&script, LAYOUT_PY).unwrap();
    let out = common::output(
        Command::new(venv.join("bin/python"))
            .current_dir(&dir)
            .arg(&script)
            .arg("alice.pem.pub")
            .arg("root.layout"),
    );
    assert!(
        out.status.success(),
        "writing the layout:\n{}",
        common::show(&out)
    );
    let out = common::output(
        Command::new(venv.join("bin/in-toto-sign"))
            .current_dir(&dir)
            .args(["-f", "root.layout", "-k", "owner.pem"]),
    );
    assert!(
        out.status.success(),
        "in-toto-sign:\n{}",
        common::show(&out)
    );

    Chain {
        _tmp: tmp,
        dir,
        proj,
        links,
    }
}

fn in_toto_verify(venv: &Path, chain: &Chain) -> std::process::Output {
    common::output(
        Command::new(venv.join("bin/in-toto-verify"))
            .current_dir(&chain.proj)
            .arg("--layout")
            .arg(chain.dir.join("root.layout"))
            .arg("--verification-keys")
            .arg(chain.dir.join("owner.pem.pub"))
            .arg("--link-dir")
            .arg(&chain.links)
            .arg("--verbose"),
    )
}

#[test]
fn precise_links_pass_in_toto_verify() {
    const TEST: &str = "precise_links_pass_in_toto_verify";
    if common::precise_unavailable(TEST, &[]) {
        return;
    }
    let Some(venv) = common::intoto_venv(TEST) else {
        return;
    };
    for prog in ["make", "cc"] {
        if !common::have(prog) && common::skip(TEST, &format!("{prog} is not installed")) {
            return;
        }
    }

    // The honest chain verifies.
    let chain = record_chain(&venv, false);
    let out = in_toto_verify(&venv, &chain);
    assert!(
        out.status.success(),
        "in-toto-verify must accept the checkout + precise build chain:\n{}",
        common::show(&out)
    );

    println!("in-toto-verify (honest chain):\n{}", common::show(&out));

    // A source changed between checkout and build: the build's material
    // src/greet.c no longer matches the checkout's product.
    let chain = record_chain(&venv, true);
    let out = in_toto_verify(&venv, &chain);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "in-toto-verify must reject the tampered chain:\n{}",
        common::show(&out)
    );
    println!("in-toto-verify (tampered chain):\n{}", common::show(&out));
    assert!(
        text.contains("'DISALLOW *' matched the following artifacts: ['src/greet.c']"),
        "in-toto-verify must name the failing rule and the tampered file:\n{}",
        common::show(&out)
    );
    assert!(
        text.contains("'expected_materials' of item 'build'"),
        "in-toto-verify must fail on the build step's materials:\n{}",
        common::show(&out)
    );
}
