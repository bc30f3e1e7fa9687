# SPDX-License-Identifier: MIT
"""The common part of the fake AWS endpoints of the integration tests
(test-sms-aws.py, test-bedrock-fake.py): a plain-http server on loopback
(FakeAwsServer) and SigV4 as AWS checks it (check_sigv4): the
Authorization header of a request is recomputed with hmac/hashlib from the
fake credentials the daemon was given, over the path exactly as it arrived
(each segment URI-encoded once more, as every service but S3 does)."""

import datetime
import hashlib
import hmac
import http.server
import re
import threading
import time
import urllib.parse


def sigv4_signature(secret, date, region, service, string_to_sign):
    def h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    k = h(h(h(h(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_uri(path):
    """The canonical URI of a request path as sent (non-S3 services): every
    segment encoded again, so "%3A" is signed as "%253A"."""
    return "/".join(urllib.parse.quote(seg, safe="-_.~") for seg in path.split("/"))


def check_sigv4(headers, method, path, body, akid, secret, token, region, service, signed_headers):
    """None when the request is signed as AWS expects, else what is wrong.
    headers: the request's headers (an http.server message), body: bytes."""
    auth = headers.get("Authorization", "")
    amz_date = headers.get("X-Amz-Date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
        return "bad X-Amz-Date %r" % amz_date
    t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs(time.time() - t.timestamp()) > 300:
        return "X-Amz-Date %s is not now" % amz_date
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        return "malformed Authorization %r" % auth
    got_akid, date, got_region, got_service, signed, signature = m.groups()
    if (got_akid, date, got_region, got_service) != (akid, amz_date[:8], region, service):
        return "wrong credential scope %r" % (m.groups()[:4],)
    if signed != signed_headers:
        return "unexpected SignedHeaders %r" % signed
    if token is not None and headers.get("X-Amz-Security-Token") != token:
        return "wrong X-Amz-Security-Token"
    canonical_headers = "".join("%s:%s\n" % (name, " ".join(headers.get(name, "").split()))
                                for name in signed.split(";"))
    canonical = "\n".join([method, canonical_uri(path), "", canonical_headers, signed, hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    if not hmac.compare_digest(sigv4_signature(secret, date, region, service, to_sign), signature):
        return "signature mismatch"
    return None


class FakeAwsServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (self.port) that answers every
    POST with self.respond(request, body) -> (status, headers, text).  A
    client that hung up before the answer is not an error (deadlines)."""

    def __init__(self):
        self.problems = []
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                status, headers, reply = fake.respond(self, body)
                data = reply.encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
