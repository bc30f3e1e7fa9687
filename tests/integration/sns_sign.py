#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sign Amazon SNS HTTP messages the way SNS does, for tests.

Tests cannot get AWS to sign a message for them, so they make their own
signing certificate (make_test_cert()), put it in the daemon's certificate
cache under an SNS-looking SigningCertURL, and sign messages with its key
(sign()).  The Python standard library and the openssl command line; the
cryptography module, when it is there, signs in process (thousands of
messages a second instead of one openssl process each).

  sns_sign.py make-cert DIR              -> DIR/sns-test.key, DIR/sns-test.pem
  sns_sign.py sign --key KEY --cert-url URL [--version 1|2]
              [--timestamp now|keep|ISO] [FILE|-]   -> signed JSON on stdout
  sns_sign.py string-to-sign [FILE|-]    -> the bytes SNS signs
  sns_sign.py self-test VECTORS_DIR      -> check against real AWS messages

The string to sign follows
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
(the same rules as src/sns.c).  Security: test tool; keys it makes are
throw-away and must never be used outside tests.
"""

import argparse
import base64
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile

NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
DIGESTS = {"1": "-sha1", "2": "-sha256"}
DEFAULT_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-deliveryd-test.pem"


def string_to_sign(msg):
    """The bytes SNS signs for msg (a dict): "Key\\nValue\\n" for each key that
    the message's Type signs, in byte order; a missing or null Subject is
    left out."""
    keys = NOTIFICATION_KEYS if msg.get("Type") == "Notification" else CONFIRMATION_KEYS
    out = []
    for k in keys:
        v = msg.get(k)
        if v is None:
            if k == "Subject":
                continue
            raise ValueError(f"message has no {k}")
        out.append(f"{k}\n{v}\n")
    return "".join(out).encode("utf-8")


def timestamp_now():
    """The current time as SNS writes it: 2022-07-28T22:19:51.853Z."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def make_test_cert(directory, name="sns-test", days=2, subject="/CN=sns.amazonaws.com"):
    """Create a self-signed RSA 2048 certificate and its key in directory;
    returns (key_path, cert_path)."""
    key = os.path.join(directory, name + ".key")
    cert = os.path.join(directory, name + ".pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", str(days), "-subj", subject],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, cert


_keys = {}


def _sign_in_process(data, key_path, version):
    """The signature openssl dgst -sign makes with an RSA key (PKCS #1
    v1.5), made in this process; None without the cryptography module or
    for another kind of key."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        return None
    with open(key_path, "rb") as f:
        pem = f.read()
    key = _keys.get(pem)
    if key is None:
        key = _keys[pem] = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256() if version == "2" else hashes.SHA1())


def sign(msg, key_path, cert_url=DEFAULT_CERT_URL, version="2", timestamp="now"):
    """Return a copy of msg with SigningCertURL, SignatureVersion, Timestamp
    (unless timestamp is "keep"; "now" or an ISO string otherwise) and a
    Signature made with the private key at key_path."""
    version = str(version)
    if version not in DIGESTS:
        raise ValueError(f"unknown SignatureVersion {version}")
    out = dict(msg)
    out.pop("SigningCertUrl", None)
    out["SigningCertURL"] = cert_url
    out["SignatureVersion"] = version
    if timestamp != "keep":
        out["Timestamp"] = timestamp_now() if timestamp == "now" else timestamp
    data = string_to_sign(out)
    sig = _sign_in_process(data, key_path, version)
    if sig is None:
        sig = subprocess.run(["openssl", "dgst", DIGESTS[version], "-sign", key_path],
                             input=data, check=True, capture_output=True).stdout
    out["Signature"] = base64.b64encode(sig).decode("ascii")
    return out


def verify(msg, cert_path):
    """Whether msg's Signature verifies with the certificate at cert_path."""
    with tempfile.TemporaryDirectory() as tmp:
        pub = os.path.join(tmp, "pub.pem")
        sig = os.path.join(tmp, "sig")
        subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout", "-out", pub], check=True)
        with open(sig, "wb") as f:
            f.write(base64.b64decode(msg["Signature"], validate=True))
        r = subprocess.run(["openssl", "dgst", DIGESTS[msg["SignatureVersion"]], "-verify", pub, "-signature", sig],
                           input=string_to_sign(msg), capture_output=True)
        return r.returncode == 0


def self_test(vectors):
    """Check string_to_sign() and verify() against the real AWS messages in
    vectors/sns, and sign() round-trip with a fresh certificate."""
    sns = os.path.join(vectors, "sns")
    cert = glob.glob(os.path.join(sns, "SimpleNotificationService-*.pem"))[0]
    n = 0
    for path in sorted(glob.glob(os.path.join(sns, "notification-*.json"))):
        msg = json.load(open(path, encoding="utf-8"))
        with open(path[:-len(".json")] + ".string-to-sign.txt", "rb") as f:
            if string_to_sign(msg) != f.read():
                raise AssertionError(f"{path}: string to sign differs")
        if not verify(msg, cert):
            raise AssertionError(f"{path}: real signature does not verify")
        n += 1
    for path in sorted(glob.glob(os.path.join(sns, "negative", "*.json"))):
        msg = json.load(open(path, encoding="utf-8"))
        if "Signature" in msg and verify(msg, cert):
            raise AssertionError(f"{path}: negative case verifies")
    with tempfile.TemporaryDirectory() as tmp:
        key, mycert = make_test_cert(tmp)
        template = json.load(open(os.path.join(vectors, "sms", "constructed-two-way-inbound-in-sns-envelope.json"),
                                  encoding="utf-8"))
        for version in ("1", "2"):
            signed = sign(template, key, version=version)
            if not verify(signed, mycert):
                raise AssertionError(f"own v{version} signature does not verify")
    if n < 4:
        raise AssertionError(f"only {n} signed vectors found in {sns}")
    return n


def read_json(path):
    if path in (None, "-"):
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("make-cert", help="create a self-signed test certificate and key")
    c.add_argument("dir")
    c.add_argument("--name", default="sns-test")
    c.add_argument("--days", type=int, default=2)
    s = sub.add_parser("sign", help="sign an SNS JSON message")
    s.add_argument("--key", required=True)
    s.add_argument("--cert-url", default=DEFAULT_CERT_URL)
    s.add_argument("--version", default="2", choices=sorted(DIGESTS))
    s.add_argument("--timestamp", default="now")
    s.add_argument("file", nargs="?")
    t = sub.add_parser("string-to-sign", help="print the bytes SNS signs")
    t.add_argument("file", nargs="?")
    v = sub.add_parser("self-test", help="check against the real AWS vectors")
    v.add_argument("vectors")
    a = p.parse_args(argv)

    if a.cmd == "make-cert":
        key, cert = make_test_cert(a.dir, a.name, a.days)
        print(key)
        print(cert)
    elif a.cmd == "sign":
        json.dump(sign(read_json(a.file), a.key, a.cert_url, a.version, a.timestamp), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif a.cmd == "string-to-sign":
        sys.stdout.buffer.write(string_to_sign(read_json(a.file)))
    elif a.cmd == "self-test":
        print(f"sns_sign.py: {self_test(a.vectors)} AWS vectors verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
