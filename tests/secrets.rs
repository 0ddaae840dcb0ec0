//! Secrets never reach the published runtime trace (docs/secrets.md). For each kind of secret (by name: MYSQL_PWD, API_TOKEN,
//! CI_JOB_JWT, GH_PAT, a PEM key in DEPLOY_KEY_PEM; by shape under a name that
//! says nothing: a URL password, ghp_/glpat-/xoxb-/AKIA tokens, a JWT, a PEM
//! key) a precise run puts the value in the environment, in other variables
//! and in the argv of child processes (`sh -c '... /bin/true "$X" ...'`: an
//! exec carries it); afterwards the value's bytes are nowhere in the trace:
//! not raw, not JSON-escaped, not in any decoded string, not as its sha256.
//! A rerun takes the redacted values from its own environment (the command
//! writes them into a product, which is identical) and says "redacted: not
//! compared". PATH, PWD, HOME, GIT_AUTHOR_NAME, XDG_SESSION_ID and short
//! values (`1`, `-O1`) are left as they are. Traces of the old format
//! (`sha256:` values) still show, diff and rerun.
//!
//! Each test runs as root and again as the unprivileged user named by
//! `TRACELINK_TEST_USER` (as tests/precise_user.rs does); needs root and
//! /dev/fuse (SKIP otherwise, FAIL under CI).

mod common;

use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Who runs tracelink.
#[derive(Debug, Clone)]
enum Who {
    Root,
    User { uid: u32, gid: u32 },
}

/// Root, and the unprivileged test user when it is set up (a SKIP line
/// for it otherwise; under CI a failure). Empty when precise mode cannot
/// run here at all.
fn everyone(test: &str) -> Vec<Who> {
    if common::precise_unavailable(test, &["setpriv"]) {
        return Vec::new();
    }
    let mut who = vec![Who::Root];
    let Some(name) = std::env::var_os("TRACELINK_TEST_USER") else {
        common::skip(
            &format!("{test} as the unprivileged user"),
            "TRACELINK_TEST_USER is not set (scripts/test.sh sets it up)",
        );
        return who;
    };
    let name = name.to_string_lossy().into_owned();
    let Ok(Some(user)) = nix::unistd::User::from_name(&name) else {
        common::skip(
            &format!("{test} as the unprivileged user"),
            &format!("no user {name}"),
        );
        return who;
    };
    let fuse_mode = std::fs::metadata("/dev/fuse").map(|m| m.permissions().mode() & 0o777);
    if fuse_mode.ok() != Some(0o666) {
        common::skip(
            &format!("{test} as the unprivileged user"),
            "/dev/fuse is not usable by other users (mode 0666 needed)",
        );
        return who;
    }
    who.push(Who::User {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    });
    who
}

/// A work area: a key pair, the monitored tree and a metadata directory,
/// owned by whoever runs tracelink (with a copy of the binary for the
/// test user, who may not be able to read the checkout).
struct Area {
    tmp: tempfile::TempDir,
    who: Who,
    bin: PathBuf,
    key: PathBuf,
    tree: PathBuf,
    meta: PathBuf,
}

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

impl Area {
    fn new(who: &Who) -> Area {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().to_path_buf();
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (tree, meta) = (top.join("tree"), top.join("meta"));
        std::fs::create_dir(&tree).unwrap();
        std::fs::create_dir(&meta).unwrap();
        let key = top.join("key.pem");
        let out = common::output(common::tracelink().arg("keygen").arg(&key));
        assert!(out.status.success(), "{}", common::show(&out));
        let bin = match who {
            Who::Root => PathBuf::from(env!("CARGO_BIN_EXE_tracelink")),
            Who::User { .. } => {
                let bin = top.join("tracelink");
                common::copy_binary(&bin);
                std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
                bin
            }
        };
        let area = Area {
            tmp,
            who: who.clone(),
            bin,
            key,
            tree,
            meta,
        };
        area.give(&[&area.tree, &area.meta, &area.key, &area.public_key()]);
        area
    }

    fn public_key(&self) -> PathBuf {
        PathBuf::from(format!("{}.pub", self.key.display()))
    }

    /// Hands `paths` to the test user (nothing to do for root).
    fn give(&self, paths: &[&Path]) {
        if let Who::User { uid, gid } = self.who {
            for path in paths {
                nix::unistd::chown(*path, Some(uid.into()), Some(gid.into())).unwrap();
            }
        }
    }

    /// `tracelink ARGS...` as whoever runs it, with an environment holding
    /// only PATH and `env`, stdin closed, from the tree.
    fn tracelink(&self, env: &[(&str, &str)]) -> Command {
        let mut cmd = match self.who {
            Who::Root => Command::new(&self.bin),
            Who::User { uid, gid } => {
                let mut cmd = Command::new("/usr/bin/setpriv");
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(&self.bin);
                cmd
            }
        };
        cmd.env_clear()
            .env("PATH", PATH)
            .envs(env.iter().copied())
            .current_dir(&self.tree)
            .stdin(Stdio::null());
        cmd
    }

    /// `tracelink run -n step -k KEY -d META FLAGS -- sh -c SCRIPT` with `env`.
    fn record(&self, env: &[(&str, &str)], flags: &[&str], script: &str) -> Output {
        let mut cmd = self.tracelink(env);
        cmd.args(["run", "-n", "step", "-k"])
            .arg(&self.key)
            .arg("-d")
            .arg(&self.meta)
            .args(flags)
            .args(["--", "sh", "-c", script]);
        common::output(&mut cmd)
    }

    /// The file in the metadata directory whose name ends with `suffix`.
    fn meta_file(&self, suffix: &str) -> PathBuf {
        std::fs::read_dir(&self.meta)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no *{suffix} in {}", self.meta.display()))
    }

    fn link(&self) -> PathBuf {
        self.meta_file(".link")
    }

    /// The trace's bytes, parsed.
    fn trace(&self) -> (Vec<u8>, Value) {
        // The secret checks look at the decompressed document.
        let file = std::fs::read(self.meta_file(".link.trace.json.gz")).unwrap();
        let bytes = tracelink::tracefile::decompress(&file, 1 << 30)
            .unwrap()
            .into_owned();
        let value = tracelink::tracefile::read_json(&file, 1 << 30).expect("the trace is a trace");
        (bytes, value)
    }

    /// `tracelink rerun LINK --workdir DIR` (with --verification-keys when
    /// this version has it) with `env`.
    fn rerun(&self, env: &[(&str, &str)], workdir: &Path) -> Output {
        let mut cmd = self.tracelink(env);
        cmd.arg("rerun")
            .arg(self.link())
            .arg("--workdir")
            .arg(workdir);
        if rerun_help().contains("--verification-keys") {
            cmd.arg("--verification-keys").arg(self.public_key());
        }
        common::output(&mut cmd)
    }

    /// A directory (not yet existing) the test user may create.
    fn fresh_dir(&self, name: &str) -> PathBuf {
        let parent = self.tmp.path().join(format!("{name}.parent"));
        std::fs::create_dir(&parent).unwrap();
        self.give(&[&parent]);
        parent.join(name)
    }
}

fn rerun_help() -> String {
    let out = common::output(common::tracelink().args(["rerun", "--help"]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// `n` random characters from `alphabet`.
fn random(alphabet: &str, n: usize) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    random_bytes(n)
        .into_iter()
        .map(|b| chars[b as usize % chars.len()])
        .collect()
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A real-looking JWT: an RS256 header, GitLab CI-like claims, a random
/// 256-byte signature.
fn jwt() -> String {
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"RS256","kid":"4i3sFE7sxqNPOT7FdvcGA1ZVGGI_r-tsDXnEuYT4ZqE","typ":"JWT"}"#),
        b64url(
            format!(
                r#"{{"namespace_id":"1","project_path":"group/project","job_id":"{}","iss":"gitlab.example.com","sub":"job_{}","exp":1900000000}}"#,
                random("0123456789", 9),
                random("0123456789", 9)
            )
            .as_bytes()
        ),
        b64url(&random_bytes(256))
    )
}

/// A real-looking PKCS#8 PEM private key (random body, 64-column lines).
fn pem() -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(random_bytes(1218));
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every string of `value`, object keys included.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// `secret` is nowhere in the trace: not its raw bytes, not its JSON
/// escaped forms (`\/` included), not inside any decoded string (which
/// undoes every `\uXXXX`), not as its sha256 (a lookup away).
fn assert_nowhere(bytes: &[u8], trace: &Value, secret: &str, what: &str) {
    let quoted = serde_json::to_string(secret).unwrap();
    let escaped = &quoted[1..quoted.len() - 1];
    for (form, needle) in [
        ("raw bytes", secret.to_string()),
        ("JSON-escaped", escaped.to_string()),
        ("with \\/", escaped.replace('/', "\\/")),
        (
            "sha256 hex",
            hex::encode(sha2::Sha256::digest(secret.as_bytes())),
        ),
    ] {
        assert!(
            !contains(bytes, needle.as_bytes()),
            "{what}: the trace holds the secret ({form}: {needle:?})"
        );
    }
    let mut all = Vec::new();
    strings(trace, &mut all);
    for s in all {
        assert!(
            !s.contains(secret),
            "{what}: a decoded string of the trace holds the secret: {s:?}"
        );
    }
}

/// The argv of every exec in the trace's process tree.
fn execs(trace: &Value) -> Vec<Vec<String>> {
    trace["process_tree"]
        .as_array()
        .expect("a process tree")
        .iter()
        .flat_map(|p| p["execs"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            e["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn redacted_names(trace: &Value) -> Vec<String> {
    trace["redacted"]
        .as_array()
        .unwrap_or_else(|| panic!("the trace lists no redacted names: {}", trace["redacted"]))
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// Records a run with `vars` in the environment, each also inside another
/// variable (`WRAPPED_<NAME>`) and used by children in every way a script
/// passes a value on (quoted, in an option, in a header, unquoted and word
/// split, as a path looked up in the tree); then none of `secrets` is
/// anywhere in the trace (nor in the link), and every variable is listed as
/// redacted. Returns the traces, for more checks.
fn secrets_stay_out(test: &str, vars: &[(&str, String)], secrets: &[String]) -> Vec<Value> {
    let mut traces = Vec::new();
    for who in everyone(test) {
        let area = Area::new(&who);
        let mut env: Vec<(String, String)> = Vec::new();
        let mut script = String::new();
        for (name, value) in vars {
            env.push((name.to_string(), value.clone()));
            env.push((format!("WRAPPED_{name}"), format!("--header=X-Sec:{value}")));
            script.push_str(&format!(
                "printf %s \"${name}\" >/dev/null; \
                 /bin/true \"${name}\"; \
                 /bin/true \"--opt=${name}\" \"Authorization: Bearer ${name}\"; \
                 /bin/true ${name}; \
                 test -e \"${name}\" || true; \
                 /bin/true \"$WRAPPED_{name}\"; "
            ));
        }
        script.push_str("echo done > done.txt");
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = area.record(&env_refs, &[], &script);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{who:?}: {}",
            common::show(&out)
        );
        let (bytes, trace) = area.trace();
        // The children did receive the values: the process tree has the
        // execs, with markers where the values were.
        let trues = execs(&trace)
            .into_iter()
            .filter(|argv| argv.first().is_some_and(|a| a == "/bin/true"))
            .count();
        assert!(trues >= 4 * vars.len(), "{who:?}: {:?}", execs(&trace));
        for secret in secrets {
            assert_nowhere(&bytes, &trace, secret, &format!("{test} as {who:?}"));
            let link = std::fs::read(area.link()).unwrap();
            assert!(
                !contains(&link, secret.as_bytes()),
                "{test} as {who:?}: the link holds the secret"
            );
        }
        let redacted = redacted_names(&trace);
        for (name, _) in &env {
            assert!(
                redacted.contains(name),
                "{test} as {who:?}: {name} is not listed as redacted: {redacted:?}"
            );
        }
        assert_eq!(trace["format"], 2, "{who:?}");
        traces.push(trace);
    }
    traces
}

/// Each variable's published value in each trace.
fn published<'a>(traces: &'a [Value], name: &str) -> Vec<&'a str> {
    traces
        .iter()
        .map(|t| {
            t["environment"][name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} is not in the trace's environment"))
        })
        .collect()
}

#[test]
fn mysql_pwd_by_name() {
    let pwd = format!("Mq7-{}", random(ALNUM, 10));
    let traces = secrets_stay_out(
        "mysql_pwd_by_name",
        &[("MYSQL_PWD", pwd.clone())],
        std::slice::from_ref(&pwd),
    );
    for value in published(&traces, "MYSQL_PWD") {
        assert_eq!(value, "<redacted:MYSQL_PWD>");
    }
}

#[test]
fn api_token_by_name() {
    let token = format!("tk_live_{}", random(ALNUM, 24));
    let traces = secrets_stay_out(
        "api_token_by_name",
        &[("API_TOKEN", token.clone())],
        std::slice::from_ref(&token),
    );
    for value in published(&traces, "API_TOKEN") {
        assert_eq!(value, "<redacted:API_TOKEN>");
    }
}

#[test]
fn database_url_password() {
    // The short password of the usual example, and a realistic one; only
    // the password part of each URL is secret.
    let long = random(ALNUM, 14);
    let traces = secrets_stay_out(
        "database_url_password",
        &[
            ("DATABASE_URL", "postgres://u:pw@h/db".to_string()),
            (
                "REPLICA_URL",
                format!("postgres://app:{long}@db.internal:5432/app"),
            ),
        ],
        std::slice::from_ref(&long),
    );
    for trace in &traces {
        let mut all = Vec::new();
        strings(trace, &mut all);
        for s in all {
            assert!(!s.contains("u:pw@"), "the short password is in {s:?}");
        }
    }
    for value in published(&traces, "DATABASE_URL") {
        assert_eq!(value, "postgres://u:<redacted:DATABASE_URL>@h/db");
    }
    for value in published(&traces, "REPLICA_URL") {
        assert_eq!(
            value,
            "postgres://app:<redacted:REPLICA_URL>@db.internal:5432/app"
        );
    }
}

#[test]
fn ci_job_jwt_by_name_and_shape() {
    let (by_name, by_shape) = (jwt(), jwt());
    secrets_stay_out(
        "ci_job_jwt_by_name_and_shape",
        &[
            ("CI_JOB_JWT", by_name.clone()),
            ("ID_FOR_UPLOAD", by_shape.clone()),
        ],
        &[by_name, by_shape],
    );
}

#[test]
fn github_pat_by_name_and_shape() {
    let (by_name, by_shape) = (
        format!("ghp_{}", random(ALNUM, 36)),
        format!("github_pat_11{}_{}", random(ALNUM, 20), random(ALNUM, 59)),
    );
    secrets_stay_out(
        "github_pat_by_name_and_shape",
        &[("GH_PAT", by_name.clone()), ("UPSTREAM", by_shape.clone())],
        &[by_name, by_shape],
    );
}

#[test]
fn pem_private_key_by_name_and_shape() {
    let (by_name, by_shape) = (pem(), pem());
    let mut secrets = Vec::new();
    for key in [&by_name, &by_shape] {
        secrets.push(key.clone());
        // Unquoted expansion scatters the body over several arguments:
        // no line of it may survive (the last, short one aside).
        secrets.extend(
            key.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_string),
        );
    }
    secrets_stay_out(
        "pem_private_key_by_name_and_shape",
        &[
            ("DEPLOY_KEY_PEM", by_name.clone()),
            ("SIGNER", by_shape.clone()),
        ],
        &secrets,
    );
}

#[test]
fn aws_access_key_id_by_shape() {
    let (id, other) = (
        format!("AKIA{}", random(UPPER_DIGITS, 16)),
        format!("AKIA{}", random(UPPER_DIGITS, 16)),
    );
    secrets_stay_out(
        "aws_access_key_id_by_shape",
        &[
            ("AWS_ACCESS_KEY_ID", id.clone()),
            ("BUCKET_HINT", other.clone()),
        ],
        &[id, other],
    );
}

#[test]
fn gitlab_token_by_shape() {
    let (token, other) = (
        format!("glpat-{}", random(ALNUM, 20)),
        format!("glpat-{}", random(ALNUM, 20)),
    );
    secrets_stay_out(
        "gitlab_token_by_shape",
        &[("GITLAB_TOKEN", token.clone()), ("REGISTRY", other.clone())],
        &[token, other],
    );
}

#[test]
fn slack_token_by_shape() {
    let token = format!(
        "xoxb-{}-{}-{}",
        random("0123456789", 12),
        random("0123456789", 13),
        random(ALNUM, 24)
    );
    secrets_stay_out(
        "slack_token_by_shape",
        &[("SLACK_BOT", token.clone())],
        &[token],
    );
}

#[test]
fn ordinary_variables_and_short_values_are_left_as_they_are() {
    let test = "ordinary_variables_and_short_values_are_left_as_they_are";
    for who in everyone(test) {
        let area = Area::new(&who);
        let tree = area.tree.to_string_lossy().into_owned();
        let env = [
            ("PWD", tree.as_str()),
            ("OLDPWD", "/var/tmp"),
            ("HOME", "/home/alice-example"),
            ("GIT_AUTHOR_NAME", "Alice Example"),
            ("GIT_AUTHOR_EMAIL", "alice@example.com"),
            ("XDG_SESSION_ID", "c42"),
            ("XDG_SESSION_TYPE", "wayland"),
            ("KEYBOARD", "us-intl"),
            ("MONKEY", "business-as-usual"),
            ("LD_LIBRARY_PATH", "/opt/lib"),
            ("CFLAGS", "-O1"),
            ("DEBUG_TOKEN", "1"),
        ];
        let script = "/bin/true -O1 1 \"$CFLAGS\" \"$GIT_AUTHOR_NAME\" \"$HOME\" \"$XDG_SESSION_ID\" \"$KEYBOARD\" \"$MONKEY\" \"$PWD\" \"$PATH\"";
        let out = area.record(&env, &[], script);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{who:?}: {}",
            common::show(&out)
        );
        let (_, trace) = area.trace();
        for (name, value) in env.iter().chain(&[("PATH", PATH)]) {
            if *name == "DEBUG_TOKEN" {
                continue;
            }
            assert_eq!(trace["environment"][name], *value, "{who:?}: {name}");
        }
        // A short secret goes as a whole value only: the `1`s stay.
        assert_eq!(
            trace["environment"]["DEBUG_TOKEN"],
            "<redacted:DEBUG_TOKEN>"
        );
        assert_eq!(redacted_names(&trace), ["DEBUG_TOKEN"], "{who:?}");
        let argv = execs(&trace)
            .into_iter()
            .find(|a| a[0] == "/bin/true")
            .expect("the exec of /bin/true");
        assert_eq!(
            argv,
            [
                "/bin/true",
                "-O1",
                "1",
                "-O1",
                "Alice Example",
                "/home/alice-example",
                "c42",
                "us-intl",
                "business-as-usual",
                tree.as_str(),
                PATH
            ],
            "{who:?}"
        );
    }
}

#[test]
fn redact_env_and_keep_env_adjust_the_choice() {
    let test = "redact_env_and_keep_env_adjust_the_choice";
    for who in everyone(test) {
        let area = Area::new(&who);
        let nonce = random(ALNUM, 20);
        let fixture = format!("ghp_{}", random(ALNUM, 36));
        let env = [
            ("BUILD_NONCE", nonce.as_str()),
            ("API_TOKEN", "not-a-secret-in-this-test"),
            ("FIXTURE_TOKEN_VALUE", fixture.as_str()),
        ];
        let out = area.record(
            &env,
            &[
                "--redact-env",
                "BUILD_NONCE",
                "--keep-env",
                "API_TOKEN",
                "--keep-env",
                "FIXTURE_TOKEN_VALUE",
            ],
            "/bin/true \"$BUILD_NONCE\" \"$API_TOKEN\" \"$FIXTURE_TOKEN_VALUE\"",
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{who:?}: {}",
            common::show(&out)
        );
        let (bytes, trace) = area.trace();
        assert_nowhere(&bytes, &trace, &nonce, test);
        assert_eq!(
            trace["environment"]["BUILD_NONCE"],
            "<redacted:BUILD_NONCE>"
        );
        assert_eq!(trace["redaction"]["why"]["BUILD_NONCE"], "--redact-env");
        assert_eq!(
            trace["environment"]["API_TOKEN"],
            "not-a-secret-in-this-test"
        );
        assert_eq!(
            trace["environment"]["FIXTURE_TOKEN_VALUE"],
            fixture.as_str()
        );
        assert_eq!(redacted_names(&trace), ["BUILD_NONCE"]);
        let argv = execs(&trace)
            .into_iter()
            .find(|a| a[0] == "/bin/true")
            .unwrap();
        assert_eq!(
            argv,
            [
                "/bin/true",
                "<redacted:BUILD_NONCE>",
                "not-a-secret-in-this-test",
                fixture.as_str()
            ]
        );

        // The same name on both sides is refused before anything runs.
        let meta_before = std::fs::read_dir(&area.meta).unwrap().count();
        let out = area.record(
            &[],
            &["--redact-env", "X", "--keep-env", "X"],
            "echo ran > ran.txt",
        );
        assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--redact-env X and --keep-env X"),
            "{}",
            common::show(&out)
        );
        assert!(!area.tree.join("ran.txt").exists());
        assert_eq!(std::fs::read_dir(&area.meta).unwrap().count(), meta_before);
        // Snapshot mode writes no trace: the flags are usage errors there.
        let out = area.record(&[], &["-m", ".", "--redact-env", "X"], "true");
        assert_eq!(out.status.code(), Some(2), "{}", common::show(&out));
    }
}

#[test]
fn the_links_command_and_recorded_output_are_the_users() {
    let test = "the_links_command_and_recorded_output_are_the_users";
    for who in everyone(test) {
        let area = Area::new(&who);
        let token = format!("tk_{}", random(ALNUM, 24));
        let mut cmd = area.tracelink(&[("API_TOKEN", &token)]);
        cmd.args(["run", "-n", "step", "-s", "-k"])
            .arg(&area.key)
            .arg("-d")
            .arg(&area.meta)
            .args([
                "--",
                "sh",
                "-c",
                "printf %s \"$API_TOKEN\"; /bin/true \"$1\"",
                "sh",
            ])
            .arg(&token);
        let out = common::output(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
        let (bytes, trace) = area.trace();
        assert_nowhere(&bytes, &trace, &token, test);
        assert_eq!(trace["command"][4], "<redacted:API_TOKEN>");
        let link: Value = serde_json::from_slice(&std::fs::read(area.link()).unwrap()).unwrap();
        assert_eq!(link["signed"]["command"][4], token.as_str());
        assert_eq!(link["signed"]["byproducts"]["stdout"], token.as_str());
    }
}

/// The project every rerun test records: the command writes the secrets
/// into a product.
const WRITE_SECRETS: &str = "printf 'token=%s\\nurl=%s\\npat=%s\\n' \"$API_TOKEN\" \"$DATABASE_URL\" \"$GH_PAT\" > out.txt; /bin/true \"$API_TOKEN\"";

#[test]
fn rerun_takes_redacted_values_from_its_environment() {
    let test = "rerun_takes_redacted_values_from_its_environment";
    for who in everyone(test) {
        let area = Area::new(&who);
        let token = format!("tk_{}", random(ALNUM, 24));
        let password = random(ALNUM, 14);
        let url = format!("postgres://app:{password}@db.internal/app");
        let pat = format!("ghp_{}", random(ALNUM, 36));
        let env = [
            ("API_TOKEN", token.as_str()),
            ("DATABASE_URL", url.as_str()),
            ("GH_PAT", pat.as_str()),
        ];
        let out = area.record(&env, &[], WRITE_SECRETS);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{who:?}: {}",
            common::show(&out)
        );
        let recorded = std::fs::read(area.tree.join("out.txt")).unwrap();
        assert!(contains(&recorded, token.as_bytes()));

        let workdir = area.fresh_dir("rerun");
        let out = area.rerun(&env, &workdir);
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{who:?}: {}",
            common::show(&out)
        );
        assert!(
            report.contains("identical  out.txt"),
            "{}",
            common::show(&out)
        );
        for name in ["API_TOKEN", "DATABASE_URL", "GH_PAT"] {
            assert!(
                report.contains(&format!("environment: {name}: redacted: not compared")),
                "{name}: {}",
                common::show(&out)
            );
        }
        assert_eq!(
            std::fs::read(workdir.join("tree/out.txt")).unwrap(),
            recorded
        );
        // The rerun's own trace keeps the secrets out too.
        let rerun_trace = std::fs::read_dir(workdir.join("metadata"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".trace.json.gz"))
            .expect("the rerun's trace");
        let file = std::fs::read(rerun_trace).unwrap();
        let bytes = tracelink::tracefile::decompress(&file, 1 << 30)
            .unwrap()
            .into_owned();
        let value = tracelink::tracefile::read_json(&file, 1 << 30).unwrap();
        for secret in [&token, &password, &pat] {
            assert_nowhere(&bytes, &value, secret, "the rerun's trace");
        }

        // Without GH_PAT now, the rerun says so and the product differs.
        let workdir = area.fresh_dir("rerun-without");
        let out = area.rerun(&env[..2], &workdir);
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{who:?}: {}",
            common::show(&out)
        );
        assert!(
            report.contains("environment: GH_PAT: redacted in the trace and not set now"),
            "{}",
            common::show(&out)
        );
        assert!(
            report.contains("DIFFERENT  out.txt"),
            "{}",
            common::show(&out)
        );
    }
}

/// A trace as tracelink wrote it before format 2 (secret-looking names
/// kept as `sha256:<hex>`, no `format`, no `redacted`): show, diff and
/// rerun still read it, and rerun checks the value against the digest.
#[test]
fn traces_of_the_old_format_still_show_diff_and_rerun() {
    let test = "traces_of_the_old_format_still_show_diff_and_rerun";
    let Some(who) = everyone(test).into_iter().next() else {
        return;
    };
    let area = Area::new(&who);
    let token = format!("tk_{}", random(ALNUM, 24));
    let url = "postgres://u:pw@h/db";
    let pat = format!("ghp_{}", random(ALNUM, 36));
    let env = [
        ("API_TOKEN", token.as_str()),
        ("DATABASE_URL", url),
        ("GH_PAT", pat.as_str()),
    ];
    let out = area.record(&env, &[], WRITE_SECRETS);
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    // An untouched copy (link and format-2 trace) to diff against.
    let copy = area.tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let new_link = copy.join(area.link().file_name().unwrap());
    std::fs::copy(area.link(), &new_link).unwrap();
    let trace_file = area.meta_file(".link.trace.json.gz");
    std::fs::copy(&trace_file, copy.join(trace_file.file_name().unwrap())).unwrap();

    // Rewrite the trace in the old form and sign a link naming it.
    let (_, mut trace) = area.trace();
    let sha = |s: &str| format!("sha256:{}", hex::encode(sha2::Sha256::digest(s.as_bytes())));
    for key in ["format", "redacted", "redaction"] {
        trace.as_object_mut().unwrap().remove(key);
    }
    trace["environment"]["API_TOKEN"] = sha(&token).into();
    trace["environment"]["DATABASE_URL"] = url.into();
    trace["environment"]["GH_PAT"] = pat.as_str().into();
    let trace_bytes = serde_json::to_vec_pretty(&trace).unwrap();
    std::fs::write(&trace_file, &trace_bytes).unwrap();
    let link_path = area.link();
    let mut link: Value = serde_json::from_slice(&std::fs::read(&link_path).unwrap()).unwrap();
    link["signed"]["environment"]["tracelink"]["trace"]["sha256"] =
        hex::encode(sha2::Sha256::digest(&trace_bytes)).into();
    let unsigned = area.meta.join("unsigned.json");
    std::fs::write(&unsigned, serde_json::to_vec(&link).unwrap()).unwrap();
    let out = common::output(
        common::tracelink()
            .arg("sign")
            .arg(&unsigned)
            .arg("-k")
            .arg(&area.key)
            .arg("-o")
            .arg(&link_path),
    );
    assert!(out.status.success(), "{}", common::show(&out));
    std::fs::remove_file(&unsigned).unwrap();

    let out = common::output(
        common::tracelink()
            .arg("show")
            .arg(&link_path)
            .arg("--verification-keys")
            .arg(area.public_key()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let out = common::output(
        common::tracelink()
            .arg("show")
            .arg("--json")
            .arg(&link_path),
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let out = common::output(
        common::tracelink()
            .arg("diff")
            .arg(&link_path)
            .arg(&new_link),
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("API_TOKEN"), "{}", common::show(&out));

    // The digest matches the current value: restored, no note.
    let out = area.rerun(&env, &area.fresh_dir("rerun"));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", common::show(&out));
    assert!(!report.contains("environment: API_TOKEN"), "{report}");
    // Another value now: restored, and the report says it differs.
    let other = [("API_TOKEN", "another-value"), env[1], env[2]];
    let out = area.rerun(&other, &area.fresh_dir("rerun-other"));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    assert!(
        report.contains("environment: API_TOKEN: redacted (an old trace kept its sha256); its current value differs"),
        "{}",
        common::show(&out)
    );
}
