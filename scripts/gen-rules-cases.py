#!/usr/bin/env python3
"""Generate tests/data/rules/cases.json: expected artifact rule verdicts from
the real in-toto 3.1.0, for the differential test tests/rules_parity.rs.

Three suites, every expectation computed by the reference functions:

- ``fnmatch``: for each pattern, which of a list of names
  ``fnmatch.fnmatchcase(name, pattern)`` accepts (CPython 3.11; in-toto
  applies rule patterns through ``fnmatch.filter``, the same on POSIX).
- ``parse``: what ``in_toto.rulelib.unpack_rule`` returns for a rule, or that
  it raises ``FormatError``.
- ``rules``: links (step name -> materials, products) and a rule list applied
  with ``in_toto.verifylib.verify_item_rules`` to the materials or products
  of one item: pass, or which rule failed and how (RuleVerificationError from
  DISALLOW / REQUIRE, or the KeyError a MATCH can raise), plus the queue after
  every completed rule (``verifylib.RULE_TRACE``).

Run it with the in-toto venv's python:

    .venv-intoto/bin/python scripts/gen-rules-cases.py \
        --output tests/data/rules/cases.json

``--output -`` writes to stdout (the live test in tests/rules_parity.rs does
that). The output is deterministic (the fuzz sections use fixed seeds).
"""

import argparse
import fnmatch
import json
import logging
import os
import random
import sys
import warnings

# Some bracket expressions make Python's re emit FutureWarnings; they do not
# change results.
warnings.simplefilter("ignore")

import in_toto  # noqa: E402
import in_toto.rulelib  # noqa: E402
import in_toto.verifylib as verifylib  # noqa: E402
from in_toto.exceptions import RuleVerificationError  # noqa: E402
from in_toto.models.link import Link  # noqa: E402
from securesystemslib.exceptions import FormatError  # noqa: E402

logging.disable(logging.CRITICAL)

# --------------------------------------------------------------------------
# fnmatch

NAMES = [
    "", "a", "b", "c", "z", "A", "ab", "abc", "abcabc", "aaa", "ba", "a.c",
    "a/b", "a/b/c", "dir/file", "dir/sub/file", "dir", "dir/", "/abs/x", "/",
    "x.c", "src/x.c", "src/sub/y.c", "foo.link", ".git/config", "file~",
    "-", "!", "^", "]", "[", "[]", "[!]", "\\", "\\*", "*", "?", "&", "~", "|",
    "a-b", "a]b", "a[b", "x\ny", "foo\n", "\n", "ü", "日本", "e\u0301", "é",
    "a b", " ", ".", "..", ".hidden", "q", "5", "_", "{", "`", "(x)", "a.b", "axb",
]

PATTERNS = [
    "*", "**", "?", "??", "a", "a*", "*a", "*a*", "a*c", "*a*c", "**a**a**",
    "a?b", "*.c", "*/*", "dir/*", "dir*", "*/", "/*", "src/*.c", "*.link*",
    ".git*", "*~", "?*", "*?", "a/*/c", "*\n", "x*y", "*b*",
    # brackets
    "[abc]", "[!abc]", "[a-c]", "[!a-c]", "[]]", "[]a]", "[!]]", "[!]a]",
    "[]-a]", "[a-]", "[-a]", "[-]", "[!-]", "[z-a]", "[!z-a]", "[a-a]",
    "[a-c-e]", "[a--]", "[--a]", "[a-\\]", "[\\-a]", "[\\]", "[\\\\]",
    "[^]", "[^a]", "[!^]", "[[]", "[[a]", "[a[]", "[&&]", "[a&&b]", "[~~]",
    "[||]", "[a|b]", "[]", "[!]", "[", "[!", "[a", "x[", "a[]b", "[]b]",
    "[!]b]", "[ä-ü]", "[ü]", "[!ü]", "[a-z]*", "*[!/]", "[.]*", "[/]",
    "[!/]*", "[b-a-z]", "[c-a-z]", "[a-c-b]", "[!b-a]", "[!b-a-z]", "[-z-a]",
    "[z-a-]", "[!z-a-]", "[a-]-z]", "[]-]", "[!]-]", "[]-\\]", "[a-z-]",
    "[---]", "[!---]", "[--]", "[a-b-c-d]", "[d-c-b-a]", "[\\-]", "[^-]",
    "[!!]", "[!!a]", "[?]", "[*]", "[*]*", "[[]]", "[[!]]",
    # no escaping
    "\\*", "\\?", "\\[a]", "\\", "a.b", "(x)", "{a,b}", "a+", "a{2}", "$", "^a",
    "e\u0301", "é", "日*", "?本", " ", "a b",
]

FN_FUZZ_SEED = 31
FN_FUZZ_ALPHABET = ["a", "b", "z", "-", "!", "]", "[", "^", "\\", "*", "?", "/", "&", "~"]


def fnmatch_suite():
    rng = random.Random(FN_FUZZ_SEED)
    patterns = list(PATTERNS)
    seen = set(patterns)
    while len(patterns) < len(PATTERNS) + 250:
        pat = "".join(rng.choice(FN_FUZZ_ALPHABET) for _ in range(rng.randint(1, 7)))
        if pat not in seen:
            seen.add(pat)
            patterns.append(pat)
    names = list(NAMES)
    seen = set(names)
    while len(names) < len(NAMES) + 60:
        name = "".join(
            rng.choice(["a", "b", "z", "-", "!", "]", "[", "^", "\\", "/", "&", "x"])
            for _ in range(rng.randint(0, 4))
        )
        if name not in seen:
            seen.add(name)
            names.append(name)
    groups = []
    for pat in patterns:
        try:
            matched = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        except Exception as e:  # re.error: none expected, but record it
            groups.append({"pattern": pat, "error": f"{type(e).__name__}: {e}"})
            continue
        groups.append({"pattern": pat, "matches": matched})
    return {"names": names, "groups": groups}


# --------------------------------------------------------------------------
# unpack_rule

PARSE_RULES = [
    ["CREATE", "foo"], ["create", "Foo"], ["CrEaTe", "*"], ["DELETE", "x"],
    ["MODIFY", "x"], ["ALLOW", "x"], ["DISALLOW", "x"], ["REQUIRE", "x"],
    ["require", "*"], ["ALLOW", ""],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", "step"],
    ["match", "*", "with", "materials", "from", "Step"],
    ["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "FROM", "s"],
    ["MATCH", "*", "WITH", "PRODUCTS", "IN", "dst", "FROM", "s"],
    ["MATCH", "*", "IN", "Src", "WITH", "Materials", "IN", "Dst", "FROM", "S"],
    ["MATCH", "*", "IN", "", "WITH", "PRODUCTS", "IN", "", "FROM", "s"],
    ["MATCH", "*", "in", "src/", "with", "products", "in", "dst/", "from", "s"],
    ["MATCH", "WITH", "WITH", "PRODUCTS", "FROM", "FROM"],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", ""],
    # errors
    [], ["CREATE"], ["COPY", "x"], ["", "x"], ["CREATE", "x", "y"],
    ["REQUIRE", "a", "b"], ["MATCH"], ["MATCH", "*"],
    ["MATCH", "*", "WITH", "PRODUCTS"],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM"],
    ["MATCH", "*", "WITH", "BYPRODUCTS", "FROM", "s"],
    ["MATCH", "*", "WITH", "PRODUCT", "FROM", "s"],
    ["MATCH", "*", "FROM", "PRODUCTS", "WITH", "s"],
    ["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "FROM"],
    ["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "IN", "dst", "FROM"],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", "s", "extra"],
    ["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "IN", "dst", "FROM", "s", "x"],
    ["MATCH", "*", "ON", "src", "WITH", "PRODUCTS", "FROM", "s"],
    ["MATCH", "*", "IN", "src", "WITH", "STUFF", "IN", "dst", "FROM", "s"],
    ["MATCH", "*", "WITH", "PRODUCTS", "IN", "dst", "TO", "s"],
    ["MATCH", "*", "IN", "a", "IN", "PRODUCTS", "FROM", "s"],
    ["MATCH", "*", "WITH", "PRODUCTS", "FROM", "s", "FROM", "t"],
]


FORMAT_ERRORS = [
    ("UnknownType", "rules must start with one of"),
    ("GenericArity", "generic rules must have one of the formats"),
    ("MatchFormat", "match rules must have the format"),
    ("MatchDestType", "match rules must have either MATERIALS or PRODUCTS"),
]


def parse_suite():
    cases = []
    for rule in PARSE_RULES:
        try:
            data = in_toto.rulelib.unpack_rule(rule)
        except FormatError as e:
            # The message lists a set of keywords in hash order: keep only
            # which check failed.
            message = str(e)
            kinds = [k for k, text in FORMAT_ERRORS if text in message]
            assert len(kinds) == 1, message
            cases.append({"rule": rule, "error": kinds[0]})
            continue
        cases.append({"rule": rule, "unpacked": data})
    return cases


# --------------------------------------------------------------------------
# verify_item_rules

H = {c: c * 2 for c in "0123456789abcdef"}


def d(*digests):
    """A digest set: d("1") -> {"sha256": "11"}; d("1", "2") adds sha512."""
    out = {"sha256": H[digests[0]]}
    if len(digests) > 1:
        out["sha512"] = H[digests[1]]
    return out


def run_case(name, links, item, kind, rules):
    link_objs = {
        n: Link(name=n, materials=v.get("materials", {}), products=v.get("products", {}))
        for n, v in links.items()
    }
    for rule in rules:
        in_toto.rulelib.unpack_rule(rule)  # only valid rules here
    case = {"name": name, "links": links, "item": item, "kind": kind, "rules": rules}
    initial = sorted(getattr(link_objs[item], kind))
    try:
        verifylib.verify_item_rules(item, kind, rules, link_objs)
        result = {"verdict": "pass"}
    except RuleVerificationError:
        index = len(verifylib.RULE_TRACE["trace"])
        rule = in_toto.rulelib.unpack_rule(rules[index])
        before = (
            verifylib.RULE_TRACE["trace"][-1]["queue"] if index else initial
        )
        if rule["rule_type"] == "disallow":
            result = {
                "verdict": "fail", "rule_index": index, "kind": "disallow",
                "paths": sorted(fnmatch.filter(before, rule["pattern"])),
            }
        else:
            assert rule["rule_type"] == "require", rule
            result = {
                "verdict": "fail", "rule_index": index, "kind": "require",
                "path": rule["pattern"],
            }
    except KeyError as e:
        index = len(verifylib.RULE_TRACE["trace"])
        assert in_toto.rulelib.unpack_rule(rules[index])["rule_type"] == "match"
        result = {
            "verdict": "fail", "rule_index": index, "kind": "match_source_missing",
            "path": e.args[0],
        }
    case["expected"] = result
    case["trace"] = [sorted(t["queue"]) for t in verifylib.RULE_TRACE["trace"]]
    return case


def L(materials=None, products=None):
    return {"materials": materials or {}, "products": products or {}}


def hand_cases():
    """Hand-picked scenarios (the expectations still come from in-toto)."""
    cases = []

    def add(name, links, item, kind, rules):
        cases.append(run_case(name, links, item, kind, rules))

    src = {"src/a.c": d("1"), "src/b.c": d("2"), "README": d("3")}
    fetched = L(products=src)
    built = L(
        materials=src,
        products={"src/a.c": d("1"), "src/b.c": d("2"), "README": d("4"),
                  "out/a.o": d("5"), "out/b.o": d("6")},
    )
    world = {"fetch": fetched, "build": built}
    M, P = "materials", "products"
    # MATCH basics
    add("match all from products", world, "build", M,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "fetch"], ["DISALLOW", "*"]])
    add("match pattern subset", world, "build", M,
        [["MATCH", "*.c", "WITH", "PRODUCTS", "FROM", "fetch"], ["DISALLOW", "*"]])
    add("match lowercase keywords", world, "build", M,
        [["match", "src/*", "with", "products", "from", "fetch"], ["disallow", "src/*"]])
    add("match wrong dest type", world, "build", M,
        [["MATCH", "*", "WITH", "MATERIALS", "FROM", "fetch"], ["DISALLOW", "*"]])
    add("match unknown step", world, "build", M,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "nope"], ["DISALLOW", "*"]])
    add("match unknown step then allow", world, "build", M,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "nope"], ["ALLOW", "*"], ["DISALLOW", "*"]])
    add("match step name is case-sensitive", world, "build", M,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "Fetch"], ["DISALLOW", "*"]])
    add("match digest differs", world, "build", P,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "fetch"], ["DISALLOW", "README"]])
    add("match self materials", world, "build", P,
        [["MATCH", "*", "WITH", "MATERIALS", "FROM", "build"], ["CREATE", "out/*"],
         ["DISALLOW", "*"]])
    add("match self materials then modify", world, "build", P,
        [["MATCH", "*", "WITH", "MATERIALS", "FROM", "build"], ["CREATE", "out/*"],
         ["MODIFY", "README"], ["DISALLOW", "*"]])
    two = {"a": L(products={"f": d("1", "2"), "g": d("1")}),
           "b": L(materials={"f": d("1"), "g": d("1", "2")})}
    add("match digest sets compared whole (extra algo in dest)", two, "b", M,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "a"], ["DISALLOW", "*"]])
    same = {"a": L(products={"f": d("1", "2")}), "b": L(materials={"f": d("1", "2")})}
    add("match two algos equal", same, "b", M,
        [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "a"], ["DISALLOW", "*"]])

    # MATCH with prefixes
    up = {"fetch": L(products={"up/x.c": d("1"), "up/sub/y.c": d("2"), "z.c": d("3"),
                                "up/": d("7"), "upx.c": d("1")}),
          "build": L(materials={"src/x.c": d("1"), "src/sub/y.c": d("2"),
                                "srcx.c": d("1"), "z.c": d("3"), "src/": d("7"),
                                "src/z.c": d("3")})}
    for sp in ["src", "src/", "src//", "./src", "sr", "s*", "", "/src"]:
        for dp in [None, "up", "up/", "up//", "", "u*"]:
            rule = ["MATCH", "*"]
            if sp is not None:
                rule += ["IN", sp]
            rule += ["WITH", "PRODUCTS"]
            if dp is not None:
                rule += ["IN", dp]
            rule += ["FROM", "fetch"]
            add(f"match prefixes src={sp!r} dst={dp!r}", up, "build", M,
                [rule, ["DISALLOW", "*"]])
    add("match prefix pattern below prefix", up, "build", M,
        [["MATCH", "x.c", "IN", "src", "WITH", "PRODUCTS", "IN", "up", "FROM", "fetch"],
         ["MATCH", "*.c", "WITH", "PRODUCTS", "FROM", "fetch"], ["DISALLOW", "*"]])
    add("match prefix pattern including prefix does not match", up, "build", M,
        [["MATCH", "src/*", "IN", "src", "WITH", "PRODUCTS", "IN", "up", "FROM", "fetch"],
         ["DISALLOW", "src/*"]])
    add("match source prefix only", {"a": L(products={"x.c": d("1")}),
                                     "b": L(materials={"lib/x.c": d("1"), "x.c": d("2")})},
        "b", M, [["MATCH", "*", "IN", "lib", "WITH", "PRODUCTS", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match dest prefix only", {"a": L(products={"lib/x.c": d("1")}),
                                   "b": L(materials={"x.c": d("1")})},
        "b", M, [["MATCH", "*", "WITH", "PRODUCTS", "IN", "lib", "FROM", "a"],
                 ["DISALLOW", "*"]])
    # os.path.join quirks
    add("match double slash becomes absolute (KeyError)",
        {"a": L(products={"/x": d("1")}), "b": L(materials={"src//x": d("1")})},
        "b", M, [["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "FROM", "a"]])
    add("match double slash onto existing absolute path",
        {"a": L(products={"/x": d("1")}),
         "b": L(materials={"src//x": d("1"), "/x": d("1")})},
        "b", M, [["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match double slash pattern not matching",
        {"a": L(products={"/x": d("1")}), "b": L(materials={"src//x": d("1")})},
        "b", M, [["MATCH", "x", "IN", "src", "WITH", "PRODUCTS", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match double slash dest absolute",
        {"a": L(products={"/x": d("1"), "dst/x": d("1")}),
         "b": L(materials={"src//x": d("1"), "/x": d("1")})},
        "b", M, [["MATCH", "*", "WITH", "PRODUCTS", "IN", "dst", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match backslash in artifact path (KeyError)",
        {"a": L(products={"b/c": d("1")}), "b": L(materials={"s/b\\c": d("1")})},
        "b", M, [["MATCH", "*", "IN", "s", "WITH", "PRODUCTS", "FROM", "a"]])
    add("match backslash in artifact path onto other artifact",
        {"a": L(products={"b/c": d("1")}),
         "b": L(materials={"s/b\\c": d("1"), "s/b/c": d("1")})},
        "b", M, [["MATCH", "*", "IN", "s", "WITH", "PRODUCTS", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match backslash in prefix",
        {"a": L(products={"x": d("1")}),
         "b": L(materials={"s/t/x": d("1"), "s\\t/x": d("1")})},
        "b", M, [["MATCH", "*", "IN", "s\\t", "WITH", "PRODUCTS", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match backslash in dest prefix",
        {"a": L(products={"d/e/x": d("1"), "d\\e/x": d("2")}),
         "b": L(materials={"x": d("1")})},
        "b", M, [["MATCH", "*", "WITH", "PRODUCTS", "IN", "d\\e", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match no prefix backslash path",
        {"a": L(products={"b\\c": d("1")}), "b": L(materials={"b\\c": d("1")})},
        "b", M, [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "a"], ["DISALLOW", "*"]])
    add("match prefix equals artifact dir entry",
        {"a": L(products={"d/": d("1")}), "b": L(materials={"s/": d("1")})},
        "b", M, [["MATCH", "*", "IN", "s", "WITH", "PRODUCTS", "IN", "d", "FROM", "a"],
                 ["DISALLOW", "*"]])
    add("match prefix slash",
        {"a": L(products={"x": d("1")}), "b": L(materials={"/x": d("1")})},
        "b", M, [["MATCH", "*", "IN", "/", "WITH", "PRODUCTS", "FROM", "a"],
                 ["DISALLOW", "*"]])

    # CREATE / DELETE / MODIFY
    cdm = {"s": L(materials={"kept": d("1"), "changed": d("1"), "gone": d("1"),
                             "dir/old": d("2")},
                  products={"kept": d("1"), "changed": d("2"), "new": d("3"),
                            "dir/new": d("4")})}
    for kind in (M, P):
        for r in ("CREATE", "DELETE", "MODIFY", "ALLOW"):
            for pat in ("*", "dir/*", "k*", "new", "[cg]*"):
                add(f"{r.lower()} {pat} on {kind}", cdm, "s", kind,
                    [[r, pat], ["DISALLOW", "*"]])
    add("modify digest algo added", {"s": L(materials={"f": d("1")},
                                            products={"f": d("1", "2")})},
        "s", P, [["MODIFY", "f"], ["DISALLOW", "*"]])
    add("create then require", cdm, "s", P, [["CREATE", "*"], ["REQUIRE", "new"]])
    add("require before consume", cdm, "s", P,
        [["REQUIRE", "new"], ["CREATE", "*"], ["ALLOW", "*"], ["DISALLOW", "*"]])
    add("require literal star", cdm, "s", P, [["REQUIRE", "*"]])
    add("require case", cdm, "s", P, [["REQUIRE", "NEW"]])
    add("require on empty", {"s": L()}, "s", M, [["REQUIRE", "x"]])
    add("disallow on empty", {"s": L()}, "s", M, [["DISALLOW", "*"]])
    add("no rules", cdm, "s", P, [])
    add("disallow nothing matching", cdm, "s", P, [["DISALLOW", "*.exe"]])
    add("disallow first then allow", cdm, "s", P, [["DISALLOW", "new"], ["ALLOW", "*"]])
    add("allow then disallow subset", cdm, "s", P,
        [["ALLOW", "dir/*"], ["DISALLOW", "dir/*"], ["DISALLOW", "*"]])
    add("disallow reports all matches", cdm, "s", P, [["ALLOW", "k*"], ["DISALLOW", "*"]])
    add("mixed case keywords", cdm, "s", P,
        [["CrEaTe", "new"], ["Modify", "changed"], ["aLLow", "*"], ["disALLOW", "*"]])
    # fnmatch edge patterns
    odd = {"s": L(products={"[x]": d("1"), "x": d("1"), "a/b": d("1"), "-": d("1"),
                            "!": d("1"), "]": d("1"), "\\": d("1"), "a\nb": d("1"),
                            "ü": d("1"), ".hidden": d("1"), "": d("1")})}
    for pat in ("[x]", "[[]x]", "[!x]", "[]]", "[!]]", "[-]", "[!-]", "[z-a]", "[!z-a]",
                "[", "\\", "[\\]", "a?b", "a*", "?", "*", ".*", "", "[!!]", "a\nb",
                "a?b*", "[ü]", "[a-]"):
        add(f"allow pattern {pat!r}", odd, "s", P, [["ALLOW", pat], ["DISALLOW", "*"]])
    return cases


FUZZ_SEED = 20240611
FUZZ_PATHS = [
    "a", "b", "a.c", "b.c", "src/a.c", "src/b.c", "src/sub/c.c", "src/", "src",
    "srcx", "up/a.c", "up/b.c", "up/sub/c.c", "out/a.o", "README", "x/y/z",
    "/abs", "src//a.c", "[a]", "a-b", "ü", ".git/config",
]
FUZZ_PATTERNS = [
    "*", "*.c", "*.o", "a*", "src/*", "*/*", "?", "?.c", "[ab]*", "[!a]*",
    "[a-c].c", "sub/*", "*c", "README", "x", "[", "**", "*/sub/*", "[]a]*",
]
FUZZ_PREFIXES = ["src", "src/", "up", "up/", "out", "", "x/y", "/"]
FUZZ_STEPS = ["item", "prev", "other", "missing"]


def fuzz_cases():
    rng = random.Random(FUZZ_SEED)
    cases = []

    def artifacts():
        chosen = rng.sample(FUZZ_PATHS, rng.randint(0, 8))
        return {p: d(rng.choice("1234"), *([rng.choice("12")] if rng.random() < 0.15 else []))
                for p in chosen}

    def rule():
        kind = rng.choice(["MATCH"] * 5 + ["CREATE", "DELETE", "MODIFY", "ALLOW", "ALLOW",
                                           "DISALLOW", "REQUIRE"])
        pat = rng.choice(FUZZ_PATTERNS)
        if kind == "REQUIRE":
            return ["REQUIRE", rng.choice(FUZZ_PATHS + ["*"])]
        if kind != "MATCH":
            return [kind, pat]
        r = ["MATCH", pat]
        if rng.random() < 0.4:
            r += ["IN", rng.choice(FUZZ_PREFIXES)]
        r += ["WITH", rng.choice(["MATERIALS", "PRODUCTS"])]
        if rng.random() < 0.4:
            r += ["IN", rng.choice(FUZZ_PREFIXES)]
        return r + ["FROM", rng.choice(FUZZ_STEPS)]

    while len(cases) < 260:
        links = {n: L(artifacts(), artifacts()) for n in ("item", "prev", "other")}
        # Make matches likely: copy some of prev's products into item's materials,
        # sometimes under another prefix.
        for p, dg in links["prev"]["products"].items():
            if rng.random() < 0.6:
                q = p if rng.random() < 0.7 else "src/" + p
                links["item"]["materials"][q] = dict(dg)
        rules = [rule() for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.6:
            rules.append(["DISALLOW", rng.choice(["*", "*.c", "src/*"])])
        kind = rng.choice(["materials", "products"])
        cases.append(run_case(f"fuzz {len(cases)}", links, "item", kind, rules))
    return cases


def dump(data):
    """JSON with one fnmatch group, parse case or rule case per line."""
    def one(v):
        return json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))

    def lines(items):
        return "[\n" + ",\n".join("  " + one(i) for i in items) + "\n ]"

    out = ["{"]
    for key in sorted(data):
        value = data[key]
        if key == "fnmatch":
            text = ('{\n  "names": ' + one(value["names"]) + ',\n  "groups": '
                    + lines(value["groups"]) + "}")
        elif key in ("parse", "rules"):
            text = lines(value)
        else:
            text = one(value)
        out.append(f" {one(key)}: {text},")
    out[-1] = out[-1][:-1]
    return "\n".join(out) + "\n}\n"


def main():
    # Sets iterate in hash order; pin it so that reruns give the same bytes.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", required=True, help="path, or - for stdout")
    args = ap.parse_args()
    data = {
        "generator": "scripts/gen-rules-cases.py",
        "in_toto_version": in_toto.__version__,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "fnmatch": fnmatch_suite(),
        "parse": parse_suite(),
        "rules": hand_cases() + fuzz_cases(),
    }
    text = dump(data)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
