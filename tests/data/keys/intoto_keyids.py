"""Regenerates intoto_keyids.json: the key dictionary and keyid in-toto 3.1.0
(securesystemslib 1.6 CryptoSigner / SSlibKey) gives each private key file
here, read with in-toto's own loader (PEM: PKCS#8, encrypted PKCS#8 with
password "tracelink", traditional RSA/EC). Keys it refuses get "error".

usage: python intoto_keyids.py > intoto_keyids.json   (in tests/data/keys)
"""

import glob
import json

from in_toto.models._signer import load_crypto_signer_from_pkcs8_file

out = {}
for path in sorted(glob.glob("*.pem")):
    password = b"tracelink" if "-enc" in path else None
    try:
        signer = load_crypto_signer_from_pkcs8_file(path, password)
    except Exception as e:  # noqa: BLE001
        out[path] = {"error": type(e).__name__}
        continue
    key = signer.public_key
    out[path] = {"keyid": key.keyid, "dict": key.to_dict()}
print(json.dumps(out, indent=1, sort_keys=True))
