"""The module's metrics page, as the tests that are not about metrics read
it: the config lines that serve it at /ops/metrics, and one sample's value."""
from prometheus_client.parser import text_string_to_metric_families

# a server's extra config lines for its metrics page
METRICS_PAGE = ["<Location /ops/metrics>", "SetHandler upload-session-metrics", "</Location>"]

PREFIX = "mod_upload_session_"


def metric(server, name, **labels):
    """The value of mod_upload_session_<name>{labels} on server's metrics
    page (METRICS_PAGE); the test fails when the page or the sample is
    missing."""
    r = server.raw_client().get("/ops/metrics")
    assert r.status_code == 200, r.text
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if s.name == PREFIX + name and s.labels == labels:
                return int(s.value) if s.value == int(s.value) else s.value
    raise AssertionError(f"no sample {name}{labels or ''} on the metrics page: {r.text[:2000]}")
