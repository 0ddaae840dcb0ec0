"""Helper for tests/keys_interop.rs: what in-toto 3.1.0 / securesystemslib 1.6
make of the public key files and message in DIR.

usage: python sslib_keys.py DIR   (DIR holds NAME.pem / NAME.pub pairs, msg)
Prints JSON: {NAME: {"dict": key dict with keyid, "sigs": {label: hex}}}.
"""

import glob
import json
import os
import sys

from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from in_toto.models._signer import (
    load_crypto_signer_from_pkcs8_file,
    load_public_key_from_file,
)
from securesystemslib.signer import Signature, SSlibKey

d = sys.argv[1]
with open(os.path.join(d, "msg"), "rb") as f:
    msg = f.read()

out = {}
for pub in sorted(glob.glob(os.path.join(d, "*.pub"))):
    name = os.path.basename(pub)[: -len(".pub")]
    entry = {"dict": load_public_key_from_file(pub), "sigs": {}}
    priv = os.path.join(d, name + ".pem")
    if os.path.exists(priv):
        signer = load_crypto_signer_from_pkcs8_file(priv)
        entry["sigs"]["signer"] = signer.sign(msg).signature
        raw = signer._private_key
        if isinstance(raw, RSAPrivateKey):
            for label, salt in [("salt_max", padding.PSS.MAX_LENGTH), ("salt_0", 0)]:
                pss = padding.PSS(mgf=padding.MGF1(SHA256()), salt_length=salt)
                entry["sigs"][label] = raw.sign(msg, pss, SHA256()).hex()
        elif isinstance(raw, ec.EllipticCurvePrivateKey):
            entry["sigs"]["second"] = raw.sign(msg, ec.ECDSA(SHA256())).hex()
    # securesystemslib itself must accept every signature we hand to Rust.
    d_copy = dict(entry["dict"])
    keyid = d_copy.pop("keyid")
    key = SSlibKey.from_dict(keyid, d_copy)
    for sig in entry["sigs"].values():
        key.verify_signature(Signature(keyid, sig), msg)
    out[name] = entry
json.dump(out, sys.stdout, indent=1, sort_keys=True)
