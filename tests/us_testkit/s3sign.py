"""S3 requests signed by the module's own SigV4 code: build/us-s3sign
(tools/us_s3sign.c, us_sigv4) signs, http.client sends. Standard library
only.

    s3 = S3Client(endpoint, access_key, secret_key)
    status, headers, body = s3.request("PUT", "/bucket/key", body=b"...")
    url = s3.presign("GET", "/bucket/key", expires=60)
    fields = s3.post_policy("bucket", "prefix/", max_bytes=100, expires_in=60)
"""

import hashlib
import http.client
import json
import os
import subprocess
import urllib.parse

from .server import REPO_ROOT

S3SIGN = os.environ.get("US_IT_S3SIGN", os.path.join(REPO_ROOT, "build", "us-s3sign"))


class S3Client:
    def __init__(self, endpoint, access_key, secret_key, region="us-east-1"):
        self.endpoint = endpoint
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port
        self.env = dict(os.environ, US_S3_ACCESS_KEY=access_key, US_S3_SECRET_KEY=secret_key,
                        US_S3_REGION=region)
        self.env.pop("US_S3_NOW", None)

    def sign(self, *args, now=None):
        env = self.env if now is None else dict(self.env, US_S3_NOW=str(int(now)))
        r = subprocess.run([S3SIGN, *args], env=env, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError(f"us-s3sign {args[0]}: exit {r.returncode}: {r.stderr}")
        return r.stdout

    def signed_headers(self, method, path, body=b"", headers=None, sign_payload=True):
        """The headers us-s3sign gives for method on path (query included)."""
        payload = hashlib.sha256(body).hexdigest() if sign_payload else "UNSIGNED-PAYLOAD"
        extra = [f"{k}: {v}" for k, v in (headers or {}).items()]
        out = self.sign("request", method, self.endpoint + path, payload, *extra)
        return [tuple(line.split(": ", 1)) for line in out.splitlines()]

    def send(self, method, path, headers, body=b""):
        """(status, {lower-case name: value}, body) of a raw request."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                c.putheader(k, v)
            c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def request(self, method, path, body=b"", headers=None, sign_payload=True):
        return self.send(method, path,
                         self.signed_headers(method, path, body, headers, sign_payload), body)

    def presign(self, method, path, expires):
        return self.sign("presign", method, self.endpoint + path, str(expires)).strip()

    def post_policy(self, bucket, key_prefix, max_bytes, expires_in, now=None):
        """The form fields of a POST upload (key, policy, x-amz-*)."""
        return json.loads(self.sign("post", bucket, key_prefix, str(max_bytes),
                                    str(expires_in), now=now))
