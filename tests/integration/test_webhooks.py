"""Webhooks (README "Webhooks"): UploadSessionWebhook URL (repeatable) and
UploadSessionWebhookSecretFile - their configuration errors fail
`apache2 -t` naming the directive."""

import os

import pytest


SECRET = "webhook-test-secret-0123456789"


def output(proc):
    return (proc.stdout or "") + (proc.stderr or "")


def write_secret(s, text=SECRET + "\n", mode=0o600, name="webhook.secret"):
    path = os.path.join(s.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

def test_webhooks_pass_configtest(server_factory):
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += ["UploadSessionWebhook http://127.0.0.1:9/hook",
                "UploadSessionWebhook https://hooks.example.com/a?team=b",
                f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    proc = s.configtest()
    assert proc.returncode == 0, output(proc)
    assert "Syntax OK" in output(proc), output(proc)


@pytest.mark.parametrize("url,want", [
    ("ftp://127.0.0.1/hook", "expects an http:// or https:// URL"),
    ("127.0.0.1/hook", "expects an absolute http:// or https:// URL"),
    ("http://127.0.0.1/hook#x", "without user info or fragment"),
    ("http://user:pw@127.0.0.1/hook", "without user info or fragment"),
    ("http://127.0.0.1:/hook", "malformed port"),
])
def test_malformed_webhook_url_fails_configtest(server_factory, url, want):
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += [f"UploadSessionWebhook {url}", f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, out
    assert "UploadSessionWebhook: " in out and want in out, out
    assert "Syntax OK" not in out, out


def test_webhook_listed_twice_fails_configtest(server_factory):
    s = server_factory(start=False)
    path = write_secret(s)
    s.extra += ["UploadSessionWebhook http://127.0.0.1:9/hook",
                "UploadSessionWebhook http://127.0.0.1:9/hook",
                f'UploadSessionWebhookSecretFile "{path}"']
    s.write_config()
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, out
    assert "UploadSessionWebhook: http://127.0.0.1:9/hook is listed twice" in out, out


@pytest.mark.parametrize("secret,want", [
    ("none", "UploadSessionWebhook needs UploadSessionWebhookSecretFile"),
    ("missing", "cannot be read"),
    ("world-readable", "is world-readable: chmod o-r it"),
    ("short", "the secret must be 16 to 4096 bytes"),
])
def test_webhook_secret_problems_fail_configtest(server_factory, secret, want):
    s = server_factory(start=False)
    s.extra.append("UploadSessionWebhook http://127.0.0.1:9/hook")
    if secret == "missing":
        s.extra.append(f'UploadSessionWebhookSecretFile "{s.dir}/nope"')
    elif secret == "world-readable":
        s.extra.append(f'UploadSessionWebhookSecretFile "{write_secret(s, mode=0o644)}"')
    elif secret == "short":
        s.extra.append(f'UploadSessionWebhookSecretFile "{write_secret(s, "tiny")}"')
    s.write_config()
    proc = s.configtest()
    out = output(proc)
    assert proc.returncode != 0, out
    assert want in out, out
    if secret != "none":
        assert "UploadSessionWebhookSecretFile " in out, out
    assert "Syntax OK" not in out, out
