#!/usr/bin/env python3
"""Checks a tracelink attestation (a DSSE envelope holding an in-toto
Statement v1) with the reference Python libraries.

    attest_check.py ENVELOPE PUBLIC_KEY.pem [--link LINK_FILE]

1. The DSSE signature verifies with securesystemslib against the public key
   (under its in-toto 3.x keyid or its legacy keyid, whichever the envelope
   names).
2. The payload parses strictly (unknown fields refused) into the
   in-toto-attestation 0.9.3 Statement message and `validate()` passes.
3. Link (https://in-toto.io/attestation/link/v0.3) and SLSA provenance
   (https://slsa.dev/provenance/v1) predicates parse strictly into their
   protobuf messages and are validated (required fields, every
   ResourceDescriptor).
4. A runtime-trace predicate is checked field by field against the fields the
   specification requires.
5. A verification summary is checked by hand (the 0.9.3 bindings' vsa/v1
   message declares verifiedLevels as a single string).

With --link (the classic or DSSE link of the same step): the subject must be
the link's products; the link predicate's materials the link's materials;
the provenance's resolvedDependencies the link's materials followed by
toolchain entries only.

Exit 0 when everything holds; 1 with a message on the first failure.
Needs: securesystemslib (with in-toto 3.1.0), in-toto-attestation==0.9.3.
"""

import argparse
import base64
import hashlib
import json
import re
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from securesystemslib.dsse import Envelope
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import SSlibKey

from in_toto_attestation.predicates.link.v0 import link_pb2
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import resource_descriptor_pb2, statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

PAYLOAD_TYPE = "application/vnd.in-toto+json"
LINK = "https://in-toto.io/attestation/link/v0.3"
PROVENANCE = "https://slsa.dev/provenance/v1"
RUNTIME_TRACE = "https://in-toto.io/attestation/runtime-trace/v0.1"
VSA = "https://slsa.dev/verification_summary/v1"
TOOLCHAIN = "tracelink.toolchain"


class Fail(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Fail(msg)


def keys_for(pem_path):
    """The public key under its in-toto 3.x keyid and its legacy keyid."""
    with open(pem_path, "rb") as f:
        public = load_pem_public_key(f.read())
    key = SSlibKey.from_crypto(public)
    legacy_dict = {
        "keyid_hash_algorithms": ["sha256", "sha512"],
        "keytype": key.keytype,
        "keyval": key.keyval,
        "scheme": key.scheme,
    }
    legacy_id = hashlib.sha256(encode_canonical(legacy_dict).encode()).hexdigest()
    legacy = SSlibKey(legacy_id, key.keytype, key.scheme, dict(key.keyval))
    return [key, legacy]


def verify_envelope(path, pem_path):
    with open(path, "rb") as f:
        doc = json.load(f)
    need(isinstance(doc, dict), "the envelope is not a JSON object")
    extra = set(doc) - {"payload", "payloadType", "signatures"}
    need(not extra, f"unknown envelope fields: {sorted(extra)}")
    need(doc.get("payloadType") == PAYLOAD_TYPE,
         f"payloadType is {doc.get('payloadType')!r}, not {PAYLOAD_TYPE!r}")
    env = Envelope.from_dict(doc)
    try:
        # Raises VerificationError unless a signature by one of the keys verifies.
        env.verify(keys_for(pem_path), 1)
    except Exception as e:  # securesystemslib's VerificationError
        raise Fail(f"DSSE signature does not verify with {pem_path}: {e}")
    return env.payload


def parse_timestamp(value, field):
    need(isinstance(value, str), f"{field}: not a string")
    try:
        Timestamp().FromJsonString(value)
    except ValueError as e:
        raise Fail(f"{field}: not an RFC 3339 timestamp: {e}")
    need(value.endswith("Z"), f"{field}: not UTC ({value})")


def parse_rd(value, field):
    """A ResourceDescriptor, strictly, validated."""
    need(isinstance(value, dict), f"{field}: not an object")
    try:
        pb = json_format.ParseDict(value, resource_descriptor_pb2.ResourceDescriptor(),
                                   ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise Fail(f"{field}: {e}")
    try:
        ResourceDescriptor.copy_from_pb(pb).validate()
    except ValueError as e:
        raise Fail(f"{field}: {e}")
    return pb


def parse_statement(payload):
    try:
        pb = json_format.Parse(payload, statement_pb2.Statement(), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise Fail(f"the Statement does not parse strictly: {e}")
    try:
        Statement.copy_from_pb(pb).validate()
    except ValueError as e:
        raise Fail(f"the Statement does not validate: {e}")
    stmt = json.loads(payload)
    for i, s in enumerate(stmt["subject"]):
        need(s.get("name"), f"subject[{i}]: no name")
        need(s.get("digest"), f"subject[{i}]: no digest")
    names = [s["name"] for s in stmt["subject"]]
    need(len(names) == len(set(names)), "subject names are not unique")
    return stmt


def check_link(pred):
    try:
        pb = json_format.ParseDict(pred, link_pb2.Link(), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise Fail(f"the link predicate does not parse strictly: {e}")
    need(pb.name, "predicate.name: empty")
    seen = set()
    for i, m in enumerate(pb.materials):
        field = f"predicate.materials[{i}]"
        try:
            ResourceDescriptor.copy_from_pb(m).validate()
        except ValueError as e:
            raise Fail(f"{field}: {e}")
        need(m.name, f"{field}: no name")
        need(len(m.digest) > 0, f"{field}: no digest")
        need(m.name not in seen, f"{field}: name {m.name!r} twice")
        seen.add(m.name)


def check_provenance(pred):
    try:
        pb = json_format.ParseDict(pred, provenance_pb2.Provenance(), ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise Fail(f"the provenance predicate does not parse strictly: {e}")
    bd, rd = pb.build_definition, pb.run_details
    need(pred.get("buildDefinition"), "predicate.buildDefinition: missing")
    need(bd.build_type, "buildDefinition.buildType: empty")
    need("externalParameters" in pred["buildDefinition"],
         "buildDefinition.externalParameters: missing")
    for i, dep in enumerate(bd.resolved_dependencies):
        try:
            ResourceDescriptor.copy_from_pb(dep).validate()
        except ValueError as e:
            raise Fail(f"buildDefinition.resolvedDependencies[{i}]: {e}")
    need(pred.get("runDetails"), "predicate.runDetails: missing")
    need(rd.builder.id, "runDetails.builder.id: empty")
    for i, b in enumerate(rd.byproducts):
        try:
            ResourceDescriptor.copy_from_pb(b).validate()
        except ValueError as e:
            raise Fail(f"runDetails.byproducts[{i}]: {e}")
    meta = pred["runDetails"].get("metadata", {})
    for key in ("startedOn", "finishedOn"):
        if key in meta:
            parse_timestamp(meta[key], f"runDetails.metadata.{key}")
    if rd.metadata.HasField("started_on") and rd.metadata.HasField("finished_on"):
        need(rd.metadata.started_on.ToNanoseconds() <= rd.metadata.finished_on.ToNanoseconds(),
             "runDetails.metadata: finishedOn is before startedOn")


def check_runtime_trace(pred):
    extra = set(pred) - {"monitor", "monitoredProcess", "monitorLog", "metadata"}
    need(not extra, f"unknown runtime-trace fields: {sorted(extra)}")
    mon = pred.get("monitor")
    need(isinstance(mon, dict), "predicate.monitor: missing or not an object")
    need(isinstance(mon.get("type"), str) and mon["type"], "monitor.type: missing")
    if "configSource" in mon:
        parse_rd(mon["configSource"], "monitor.configSource")
    if "tracePolicy" in mon:
        need(isinstance(mon["tracePolicy"], dict), "monitor.tracePolicy: not an object")
    mp = pred.get("monitoredProcess")
    need(isinstance(mp, dict), "predicate.monitoredProcess: missing or not an object")
    for key in ("hostID", "type", "event"):
        need(isinstance(mp.get(key), str) and mp[key], f"monitoredProcess.{key}: missing")
    need(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", mp["hostID"]), "monitoredProcess.hostID: not a URI")
    need(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", mp["type"]), "monitoredProcess.type: not a URI")
    log = pred.get("monitorLog")
    need(isinstance(log, dict), "predicate.monitorLog: missing or not an object")
    need(any(k in log for k in ("process", "network", "fileAccess")),
         "monitorLog: none of process, network, fileAccess")
    for key in ("process", "network"):
        if key in log:
            need(isinstance(log[key], list) and all(isinstance(p, dict) for p in log[key]),
                 f"monitorLog.{key}: not a list of objects")
    if "fileAccess" in log:
        need(isinstance(log["fileAccess"], list), "monitorLog.fileAccess: not a list")
        for i, fa in enumerate(log["fileAccess"]):
            parse_rd(fa, f"monitorLog.fileAccess[{i}]")
    if "metadata" in pred:
        need(isinstance(pred["metadata"], dict), "predicate.metadata: not an object")
        for key in ("buildStartedOn", "buildFinishedOn"):
            if key in pred["metadata"]:
                parse_timestamp(pred["metadata"][key], f"metadata.{key}")


LEVEL = re.compile(r"^SLSA_([A-Z]+)_LEVEL_([0-4])$")


def check_vsa(pred):
    known = {"verifier", "timeVerified", "resourceUri", "policy", "inputAttestations",
             "verificationResult", "verifiedLevels", "dependencyLevels", "slsaVersion"}
    extra = set(pred) - known
    need(not extra, f"unknown verification summary fields: {sorted(extra)}")
    ver = pred.get("verifier")
    need(isinstance(ver, dict), "predicate.verifier: missing or not an object")
    need(isinstance(ver.get("id"), str) and ver["id"], "verifier.id: missing")
    if "version" in ver:
        need(isinstance(ver["version"], dict)
             and all(isinstance(v, str) for v in ver["version"].values()),
             "verifier.version: not a map of strings")
    if "timeVerified" in pred:
        parse_timestamp(pred["timeVerified"], "timeVerified")
    need(isinstance(pred.get("resourceUri"), str) and pred["resourceUri"], "resourceUri: missing")
    pol = pred.get("policy")
    need(isinstance(pol, dict), "predicate.policy: missing or not an object")
    need(isinstance(pol.get("uri"), str) and pol["uri"], "policy.uri: missing")
    parse_rd(pol, "policy")
    for i, att in enumerate(pred.get("inputAttestations", [])):
        parse_rd(att, f"inputAttestations[{i}]")
        need(att.get("digest"), f"inputAttestations[{i}]: no digest")
    need(pred.get("verificationResult") in ("PASSED", "FAILED"),
         "verificationResult: not PASSED or FAILED")
    levels = pred.get("verifiedLevels")
    need(isinstance(levels, list) and levels and all(isinstance(l, str) for l in levels),
         "verifiedLevels: missing or not a list of strings")
    tracks = [LEVEL.match(l).group(1) for l in levels if LEVEL.match(l)]
    need(len(tracks) == len(set(tracks)), "verifiedLevels: more than one level for a track")
    if "dependencyLevels" in pred:
        need(isinstance(pred["dependencyLevels"], dict)
             and all(isinstance(v, int) for v in pred["dependencyLevels"].values()),
             "dependencyLevels: not a map of integers")


def load_link(path):
    with open(path, "rb") as f:
        doc = json.load(f)
    if "payload" in doc:
        return json.loads(base64.b64decode(doc["payload"]))
    return doc["signed"]


def compare_with_link(stmt, link_path):
    link = load_link(link_path)
    products = {s["name"]: s["digest"] for s in stmt["subject"]}
    need(products == link["products"], "the subject is not the link's products")
    pred, ptype = stmt["predicate"], stmt["predicateType"]
    if ptype == LINK:
        materials = {m["name"]: m["digest"] for m in pred.get("materials", [])}
        need(materials == link["materials"], "predicate.materials are not the link's materials")
        for key in ("name", "command", "byproducts", "environment"):
            need(pred.get(key, {} if key != "command" else []) == link.get(key),
                 f"predicate.{key} is not the link's")
    elif ptype == PROVENANCE:
        deps = pred["buildDefinition"].get("resolvedDependencies", [])
        n = len(link["materials"])
        head, tail = deps[:n], deps[n:]
        need({d.get("name"): d.get("digest") for d in head} == link["materials"]
             and len(head) == n,
             "resolvedDependencies do not begin with the link's materials")
        for i, d in enumerate(tail):
            need((d.get("annotations") or {}).get(TOOLCHAIN) is True,
                 f"resolvedDependencies[{n + i}]: neither a material nor a toolchain entry")
            need(set(d.get("digest", {})) == {"sha256"},
                 f"resolvedDependencies[{n + i}]: a toolchain entry without its sha256")
            need(str(d.get("uri", "")).startswith("file:///"),
                 f"resolvedDependencies[{n + i}]: a toolchain entry without a file URI")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("envelope")
    ap.add_argument("public_key")
    ap.add_argument("--link", help="the classic or DSSE link of the same step")
    args = ap.parse_args()
    try:
        payload = verify_envelope(args.envelope, args.public_key)
        stmt = parse_statement(payload)
        ptype, pred = stmt["predicateType"], stmt["predicate"]
        if ptype == LINK:
            check_link(pred)
        elif ptype == PROVENANCE:
            check_provenance(pred)
        elif ptype == RUNTIME_TRACE:
            check_runtime_trace(pred)
        elif ptype == VSA:
            check_vsa(pred)
        else:
            raise Fail(f"unknown predicateType {ptype!r}")
        if args.link:
            compare_with_link(stmt, args.link)
    except (Fail, OSError, ValueError, KeyError) as e:
        print(f"attest_check: {args.envelope}: {e}", file=sys.stderr)
        return 1
    print(f"attest_check: {args.envelope}: ok ({ptype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
