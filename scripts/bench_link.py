"""Shared by the benchmark scripts' link checkers (imported, not run).

`load(meta)` reads the one precise link in the metadata directory META and
the trace beside it, and checks what every precise recording must satisfy:
precise mode, complete, the trace's sha256 the one signed in the link, exit
status 0. `check_files` compares recorded sha256 digests with the files on
disk; `finish` prints the problems found and exits 1 if there are any.
"""
import gzip
import hashlib
import json
import os
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def expand_trace(doc):
    """A trace document of any format: format 3 (compact) expanded."""
    if doc.get("format") != 3:
        return doc
    strings = doc.get("strings", [])

    def ex(v):
        if isinstance(v, str):
            if v.startswith("@@"):
                return v[1:]
            if v.startswith("@"):
                return strings[int(v[1:])]
            return v
        if isinstance(v, list):
            return [ex(x) for x in v]
        if isinstance(v, dict):
            return {k: ex(x) for k, x in v.items()}
        return v

    t = ex(doc["trace"])
    t["_type"] = "tracelink-trace"
    return t


def trace_path_of(link_path, signed):
    """The trace file the link names, beside it (.trace.json.gz since format 3)."""
    name = ((signed.get("environment") or {}).get("tracelink") or {}).get("trace", {}).get("name")
    return os.path.join(os.path.dirname(link_path), name or os.path.basename(link_path) + ".trace.json")


def read_trace(path):
    """The trace at PATH: plain or gzip JSON, any format."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return expand_trace(json.loads(data))


def load(meta):
    """(link_path, trace_path, signed, trace, errors) for META's one link."""
    errors = []
    links = sorted(f for f in os.listdir(meta) if f.endswith(".link"))
    if len(links) != 1:
        sys.exit(f"expected one link in {meta}, found {links}")
    link_path = os.path.join(meta, links[0])
    with open(link_path) as f:
        s = json.load(f)["signed"]
    trace_path = trace_path_of(link_path, s)
    if not os.path.exists(trace_path):
        sys.exit(f"no trace {trace_path}")
    t = read_trace(trace_path)
    env = s.get("environment", {}).get("tracelink", {})
    if env.get("mode") != "precise":
        errors.append(f"link environment.tracelink.mode is {env.get('mode')!r}, not 'precise'")
    if env.get("complete") is not True or t.get("complete") is not True:
        errors.append(f"incomplete recording: link complete={env.get('complete')}, trace complete={t.get('complete')}, "
                      f"incomplete={t.get('incomplete')}, stragglers={t.get('stragglers')}")
    if env.get("trace", {}).get("sha256") != sha256(trace_path):
        errors.append("the trace's sha256 differs from the one signed in the link")
    if s.get("byproducts", {}).get("return-value") != 0 or (t.get("exit") or {}).get("code") != 0:
        errors.append(f"return-value {s.get('byproducts', {}).get('return-value')}, trace exit {t.get('exit')}")
    return link_path, trace_path, s, t, errors


def check_files(kind, arts, root, errors, skip=lambda path: False):
    """Each recorded artifact (but those `skip` names) must be a file under
    ROOT with the recorded sha256."""
    for path, digests in arts.items():
        if skip(path):
            continue
        full = os.path.join(root, path)
        if not os.path.isfile(full):
            errors.append(f"{kind} {path} is not a file on disk")
        elif digests.get("sha256") != sha256(full):
            errors.append(f"{kind} {path}: recorded sha256 {digests.get('sha256')} differs from the file's")


def finish(errors, link_path):
    if errors:
        print(f"wrong results in {link_path}:", file=sys.stderr)
        for e in errors[:20]:
            print("  " + e, file=sys.stderr)
        sys.exit(1)
