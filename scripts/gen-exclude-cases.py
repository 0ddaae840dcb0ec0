#!/usr/bin/env python3
"""Generate tests/data/exclude_cases.json: expected exclude decisions from the
real pathspec, for the differential test tests/exclude_parity.rs.

in-toto 3.1.0's in-toto-run excludes an artifact when
``pathspec.GitIgnoreSpec.from_lines("gitwildmatch", patterns).match_file(path)``
is true. This script asks pathspec exactly that for a table of pattern lists
and paths, and records which paths are excluded, or that from_lines raised
(and on which pattern).

Run it with the in-toto venv's python (pathspec 1.1.1):

    .venv-intoto/bin/python scripts/gen-exclude-cases.py \
        --output tests/data/exclude_cases.json

``--output -`` writes to stdout (the live test in tests/exclude_parity.rs does
that). The output is deterministic (the fuzz section uses a fixed seed).
"""

import argparse
import json
import random
import sys
import warnings

# "gitwildmatch" is deprecated in pathspec 1.x, and some bracket expressions
# make Python's re emit FutureWarnings; neither changes the results.
warnings.simplefilter("ignore")

import pathspec  # noqa: E402

PATHS = [
    # plain names and nesting
    "foo", "foo/bar", "foo/bar.txt", "foo/bar/baz", "bar/foo", "bar/foo/baz",
    "a", "b", "ab", "abc", "ba", "a.txt", "b.txt", "A.TXT",
    "a/b", "a/b/c", "a/b/c/d", "a/x/b", "a/x/y/b", "a/x/y/b/z", "x/a/b", "x/a",
    "dir", "dir/file", "dir/sub", "dir/sub/file", "sub/dir", "sub/dir/file",
    "dir/x.link", "deep/1/2/3/4/5/6/7/8/9/file.txt", "deep/1/2/3/4/5/6/7/8/9/a/b",
    # in-toto defaults
    ".git", ".git/config", ".git/objects/ab/cdef0123", "sub/.git", "sub/.git/HEAD",
    ".gitignore", "sub/.gitignore", "git",
    "foo.link", "foo.link.tmp", "step.abcd1234.link", "linked", "x.lin",
    "x.pyc", "dir/x.pyc", "x.pyc.bak", "x.py", "pyc",
    "file~", "dir/file~", "~", "~file", "dir~/file",
    # spaces, unicode, leading dots
    "file with space", "dir with space/file", "trail ", "trail", " leading",
    "a b", "a b/c",
    "ünïcödé", "dir/ünïcödé.txt", "日本語", "日本語/ファイル", "emoji😀.txt",
    "e\u0301", "\u00e9",
    ".hidden", "dir/.hidden", ".hidden/x", "..", "...", ".a.b", ".",
    # glob metacharacters in names
    "*", "a*b", "?", "[abc]", "[", "]", "a]", "a]b", "x[", "#comment", "!bang",
    "back\\slash", "\\", "a-b", "a^b", "a&&b", "a~~b", "a--b",
    # absolute / dotted / odd forms
    "/abs/foo", "/abs/path/to/file.pyc", "/abs/.git/config", "/foo", "/dir/file",
    "./rel/foo", "./foo", "//double", "//foo", "/", "./", "", "foo/", "dir/",
    # control characters
    "line\nbreak", "foo\n", "foo\n\n", "a\nb/foo", "tab\tname", "cr\r",
]

SINGLE_PATTERNS = [
    # in-toto defaults
    "*.link*", ".git", "*.pyc", "*~",
    # plain / anchored / directory patterns
    "foo", "/foo", "foo/", "/foo/", "foo/bar", "/foo/bar", "foo/bar/", "bar/foo",
    "foo/*", "foo/**", "foo/**/", "**/foo", "**/foo/", "**/foo/bar", "foo/**/bar",
    "a/**/b", "a/**/**/b", "**/**/b", "a/**", "a/**/", "**/a/**", "a/b/**/c/**",
    "**", "**/", "*", "*/", "**/*", "*/*", "*/**", "/*", "/**", "/**/", "***",
    "a**", "**a", "a/**b", "a**/b", "a/*/b", "a/?/b", "a/*", "*/b", "**/b/",
    "dir/", "dir", "/dir", "/dir/", "sub/dir", "sub/dir/", "/sub/dir", "dir/*/",
    "dir/**/file", "//", "a//b", "dir//", "/a/", "!/",
    # brackets
    "[abc]", "[a-c]", "[!a]", "[^a]", "[!abc]x", "[]a]", "[!]a]", "[]-a]", "[a-]",
    "[-a]", "[[:alpha:]]", "[[]", "[\\]]", "[\\]", "x[", "[", "[!]", "[]", "[a",
    "a[]b", "[z-a]", "[a-\\]", "[\\-a]", "[a--]", "[a-c-e]", "a[/]b", "[.]git",
    "*[~]", "a[&&]b", "a[~~]b", "a[--]b", "[!-]", "[a-a]", "foo[!a]bar",
    "[!!]bang", "[#]comment", "[ ]", "[^]a]", "[]]", "[ü]nïcödé", "[ä-ü]*",
    "[\\-\\]", "[a-z]/", "[ab]/**",
    # escapes, comments, negation
    "\\*", "\\?", "\\[abc]", "\\[abc\\]", "\\#comment", "#comment", "\\!bang",
    "!bang", "\\\\", "back\\\\slash", "a\\b", "\\a", "foo\\", "a\\/b", "\\",
    "!", "! ", "!!bang", "!#comment", "!\\!bang", "#", "\\#",
    # whitespace handling
    "trail ", "trail  ", "trail\\ ", "trail\\  ", "trail\t", "trail\\\t",
    "trail\u001f", "trail\u00a0", "trail\u3000", "\\ ", " ", "", "/", "   ",
    " leading", "a b", "a\\ b", "file with space", "dir with space/",
    # wildcards
    "?", "??", "a?", "?x", "*x", "x*", "*a*", "a*b", "a.txt", "*.txt", "*.TXT",
    "*.*", ".*", ".?*", "*.", "?.*",
    # unicode
    "ünïcödé", "*ödé*", "日本語/", "ファイル", "*😀*", "?mojı*", "e\u0301",
    "\u00e9", "?\u0301",
    # leading dots
    ".hidden", "/.hidden", "..", "...", ".", "./", "./foo",
    # absolute / odd paths
    "abs/foo", "/abs/foo", "/abs", "abs/", "rel/foo", "./rel/foo", "rel", "double",
    "/double",
    # deep nesting
    "deep/**/file.txt", "deep/*/2", "**/9/*", "deep/**/9/**", "1/2", "**/2/**/b",
    "deep/1/2/3/4/5/6/7/8/9/", "**/*.txt", "**/**", "**/**/",
    # control characters
    "break", "line*", "*break", "tab*", "foo\n", "cr*",
]

COMBOS = [
    ["*.link*", ".git", "*.pyc", "*~"],
    ["*.link*", ".git", "*.pyc", "*~", "!foo.link"],
    ["*.link*", ".git", "*.pyc", "*~", "!.git/config"],
    ["*.txt", "!a.txt"],
    ["dir/", "!dir/file"],
    ["dir", "!dir/file"],
    ["!dir/file", "dir/"],
    ["!dir/file", "dir"],
    ["dir/", "!dir/sub/", "dir/sub/file"],
    ["dir/**", "!dir/sub/**"],
    ["foo/**", "!foo/bar"],
    ["foo/", "!foo/bar/"],
    ["*", "!*.txt"],
    ["*", "!*/"],
    ["*/", "!*"],
    ["**", "!foo"],
    ["**/", "!a/"],
    ["!a/", "**/"],
    ["a/", "!a/b/"],
    ["a/", "!a/b"],
    ["a", "!a/b"],
    [".git", "!.git/config"],
    ["!foo", "foo"],
    ["foo", "!foo"],
    ["foo/", "!foo"],
    ["foo", "!foo/"],
    ["!foo/", "foo"],
    ["#x", "", "foo", "   "],
    ["/*", "!/foo", "/foo/*", "!/foo/bar"],
    ["a/**/b", "!a/x/**"],
    ["deep/", "!deep/1/2/"],
    ["deep/", "!deep/**/file.txt"],
    ["[abc]", "![b]"],
    ["*~", "!dir/file~"],
    ["x[", "foo"],
    ["foo", "[z-a]"],
    ["foo", "bar\\"],
    ["[z-a]", "x\\"],
    ["x[", "!"],
    ["*", "!*", "*"],
    ["a/", "!a/", "a/b"],
    ["sub/", "!sub/.git"],
    ["sub/", "!sub/.git/"],
    ["**/b/", "!a/x/y/b/"],
    ["/abs/", "!/abs/foo"],
    ["*.pyc", "!/abs/path/to/file.pyc"],
    ["file with space", "!dir with space/"],
    ["ünïcödé", "!*ödé"],
]

FUZZ_SEED = 20240611
FUZZ_PATTERN_TOKENS = [
    "a", "b", "x", "ab", "foo", "dir", ".", "*", "*", "**", "?", "/", "/", "/",
    "[ab]", "[!a]", "[^b]", "[a-b]", "\\*", "\\", " ", "!", "#", "]", "[", "-",
    "ü", "\\ ",
]
FUZZ_PATH_SEGMENTS = [
    "a", "b", "x", "ab", "ba", "foo", "dir", ".a", "a b", "*", "ü", "a.b", "xa",
    "b-", "]", "!",
]
DERIVED_SEED = 7
DERIVED_PATH_SEGMENTS = [
    "a", "b", "x", "ab", "ba", "foo", "dir", ".a", "a b", "ü", "日", "a.b", "]",
    "[", "!", "-", "^", "\\", "#", "~", "x-", "b]", "ö",
]


def match(patterns, paths):
    """Returns (excluded paths, error) for one pattern list."""
    try:
        spec = pathspec.GitIgnoreSpec.from_lines("gitwildmatch", patterns)
    except Exception as e:  # pathspec raises GitIgnorePatternError or re.error
        culprit = None
        for p in patterns:
            try:
                pathspec.GitIgnoreSpec.from_lines("gitwildmatch", [p])
            except Exception:
                culprit = p
                break
        assert culprit is not None, patterns
        return None, {"pattern": culprit, "message": f"{type(e).__name__}: {e}"}
    return [p for p in paths if spec.match_file(p)], None


def suite(name, paths, pattern_lists):
    groups = []
    for patterns in pattern_lists:
        excluded, error = match(patterns, paths)
        group = {"patterns": patterns}
        if error is not None:
            group["error"] = error
        else:
            group["excluded"] = excluded
        groups.append(group)
    return {"name": name, "paths": paths, "groups": groups}


def fuzz_suite():
    rng = random.Random(FUZZ_SEED)
    paths = []
    seen = set()
    while len(paths) < 120:
        n = rng.randint(1, 5)
        path = "/".join(rng.choice(FUZZ_PATH_SEGMENTS) for _ in range(n))
        if rng.random() < 0.08:
            path = "/" + path
        if path not in seen:
            seen.add(path)
            paths.append(path)
    pattern_lists = []
    for _ in range(300):
        patterns = []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            n = rng.randint(1, 6)
            patterns.append("".join(rng.choice(FUZZ_PATTERN_TOKENS) for _ in range(n)))
        pattern_lists.append(patterns)
    return suite("fuzz", paths, pattern_lists)


def derived_suite():
    """Patterns derived from the paths themselves (wildcards, brackets,
    escapes, anchors, directory marks, negation mixed in), so that most
    pattern lists do match something."""
    rng = random.Random(DERIVED_SEED)
    paths = set()
    while len(paths) < 100:
        path = "/".join(rng.choice(DERIVED_PATH_SEGMENTS) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.05:
            path = "/" + path
        paths.add(path)
    paths = sorted(paths)

    def derive(path):
        segs = path.lstrip("/").split("/")
        a = rng.randint(0, len(segs) - 1)
        segs = segs[a:rng.randint(a + 1, len(segs))]
        out = []
        for seg in segs:
            r = rng.random()
            if r < 0.1:
                out.append("**")
                continue
            if r < 0.2:
                out.append("*")
                continue
            glob = ""
            for c in seg:
                r = rng.random()
                if c in "[]!*?\\#" and rng.random() < 0.7:
                    glob += "\\" + c
                elif r < 0.1:
                    glob += "?"
                elif r < 0.2:
                    glob += "*"
                elif r < 0.27:
                    glob += "[" + c + "x]"
                elif r < 0.32:
                    glob += "[!" + c + "]"
                else:
                    glob += c
            out.append(glob)
        pattern = "/".join(out)
        r = rng.random()
        if r < 0.2:
            pattern = "/" + pattern
        elif r < 0.3:
            pattern = "**/" + pattern
        r = rng.random()
        if r < 0.25:
            pattern += "/"
        elif r < 0.3:
            pattern += "/**"
        elif r < 0.33:
            pattern += " "
        if rng.random() < 0.3:
            pattern = "!" + pattern
        return pattern

    pattern_lists = [
        [derive(rng.choice(paths)) for _ in range(rng.choice([1, 2, 2, 3, 4, 5]))]
        for _ in range(250)
    ]
    return suite("derived", paths, pattern_lists)


def dump(data):
    """JSON with one line per group, so diffs of the table stay readable."""
    def enc(v):
        return json.dumps(v, ensure_ascii=True)

    lines = ["{"]
    for key, value in data.items():
        if key != "suites":
            lines.append(f" {enc(key)}: {enc(value)},")
    lines.append(' "suites": [')
    for si, s in enumerate(data["suites"]):
        lines.append("  {")
        lines.append(f'   "name": {enc(s["name"])},')
        lines.append(f'   "paths": {enc(s["paths"])},')
        lines.append('   "groups": [')
        for gi, g in enumerate(s["groups"]):
            comma = "," if gi + 1 < len(s["groups"]) else ""
            lines.append(f"    {enc(g)}{comma}")
        lines.append("   ]")
        lines.append("  }" + ("," if si + 1 < len(data["suites"]) else ""))
    lines.append(" ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == data
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", "-o", default="-", help="output file, '-' for stdout")
    args = ap.parse_args()

    data = {
        "generator": "scripts/gen-exclude-cases.py",
        "pathspec_version": pathspec.__version__,
        "python_version": sys.version.split()[0],
        "query": 'pathspec.GitIgnoreSpec.from_lines("gitwildmatch", patterns).match_file(path)',
        "suites": [
            suite("single", PATHS, [[p] for p in SINGLE_PATTERNS]),
            suite("combos", PATHS, COMBOS),
            fuzz_suite(),
            derived_suite(),
        ],
    }
    text = dump(data)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        cases = sum(
            1 if "error" in g else len(s["paths"])
            for s in data["suites"]
            for g in s["groups"]
        )
        print(f"wrote {args.output}: {cases} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
