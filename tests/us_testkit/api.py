"""The API as the tests see it: answer checks (check, detail_of), the
expected 422 items in FastAPI + pydantic v2 wording, the fixed answers, the
timestamp and UUID formats, and the upload-sessions calls.
"""

import datetime as _dt
import json
import re
import secrets
import uuid

import httpx

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
UUID_CANON_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

DEFAULT_LIFETIME = 86400


def unique_ws(prefix="ws"):
    """A fresh, valid workspace name (isolates tests on a shared server)."""
    return f"{prefix}-{secrets.token_hex(6)}"


def parse_ts(s):
    """Parse the API timestamp format; fails the test when it is not exactly
    YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    assert isinstance(s, str) and TS_RE.match(s), f"bad timestamp format: {s!r}"
    return _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=_dt.timezone.utc)


def utcnow():
    return _dt.datetime.now(_dt.timezone.utc)


def assert_ts_between(s, lo, hi, slack=2.0):
    """s is a well-formed timestamp within [lo - slack, hi + slack]."""
    t = parse_ts(s)
    d = _dt.timedelta(seconds=slack)
    assert lo - d <= t <= hi + d, f"timestamp {s} not within [{lo}, {hi}] +-{slack}s"
    return t


def assert_uuid4(s):
    assert isinstance(s, str) and UUID_CANON_RE.match(s), f"not a canonical uuid: {s!r}"
    u = uuid.UUID(s)
    assert str(u) == s
    assert u.version == 4, f"not a version-4 uuid: {s}"
    return s


def describe(resp):
    req = resp.request
    try:
        body = req.content[:300] if req.content is not None else b""
    except httpx.RequestNotRead:  # a streamed (multipart) body
        body = b"<streamed>"
    return (f"{req.method} {req.url} body={body!r} -> {resp.status_code} "
            f"headers={dict(resp.headers)} body={resp.text[:2000]!r}")


NO_BODY_CHECK = object()


def check(resp, status, body=NO_BODY_CHECK):
    """Assert the status code and (for JSON answers) the Content-Type and,
    when given, the whole JSON body. Returns the decoded body (None for 204)."""
    assert resp.status_code == status, describe(resp)
    if status == 204:
        assert resp.content == b"", "204 must have an empty body: " + describe(resp)
        return None
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", \
        "Content-Type is not application/json: " + describe(resp)
    try:
        data = resp.json()
    except ValueError:
        raise AssertionError("body is not JSON: " + describe(resp))
    if body is not NO_BODY_CHECK:
        assert data == body, describe(resp)
    return data


def detail_of(resp, status):
    """Assert status + exactly {"detail": <non-empty string>}; returns the
    detail string."""
    data = check(resp, status)
    assert isinstance(data, dict) and set(data) == {"detail"} \
        and isinstance(data["detail"], str) and data["detail"], describe(resp)
    return data["detail"]


def not_found_text(session_id):
    return (f"There's no session with the ID '{session_id}' in the workspace. "
            f"Check if the ID is correct. ")


ALREADY_CLOSED = {"detail": "The session is already closed."}
NOT_AUTHENTICATED = {"detail": "Not authenticated"}
INVALID_KEY = {"detail": "Invalid API key"}
WS_NOT_FOUND = {"detail": "Workspace not found"}
ROUTE_NOT_FOUND = {"detail": "Not Found"}
METHOD_NOT_ALLOWED = {"detail": "Method Not Allowed"}


# --------------------------------------------------------------------------
# expected 422 items (FastAPI + pydantic v2 wording)
# --------------------------------------------------------------------------

def v422(*items):
    return {"detail": list(items)}


def e_missing():
    return {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}


def e_json_invalid(raw):
    """The json_invalid item FastAPI produces for raw (bytes), computed with
    CPython's own json module (position in characters, Python's message)."""
    try:
        json.loads(raw)
    except json.JSONDecodeError as e:
        return {"type": "json_invalid", "loc": ["body", e.pos], "msg": "JSON decode error",
                "input": {}, "ctx": {"error": e.msg}}
    raise AssertionError(f"{raw!r} is valid JSON for Python")


def e_model_attributes_type(value):
    return {"type": "model_attributes_type", "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": value}


def e_literal_closed(value):
    return {"type": "literal_error", "loc": ["body", "status"],
            "msg": "Input should be 'CLOSED'", "input": value,
            "ctx": {"expected": "'CLOSED'"}}


def e_enum_write_mode(value):
    return {"type": "enum", "loc": ["body", "write_mode"],
            "msg": "Input should be 'KEEP', 'OVERWRITE' or 'FAIL'", "input": value,
            "ctx": {"expected": "'KEEP', 'OVERWRITE' or 'FAIL'"}}


def e_bool_parsing(loc, value):
    return {"type": "bool_parsing", "loc": list(loc),
            "msg": "Input should be a valid boolean, unable to interpret input",
            "input": value}


def e_ge(loc, value, ge):
    return {"type": "greater_than_equal", "loc": list(loc),
            "msg": f"Input should be greater than or equal to {ge}", "input": value,
            "ctx": {"ge": ge}}


def e_le(loc, value, le):
    return {"type": "less_than_equal", "loc": list(loc),
            "msg": f"Input should be less than or equal to {le}", "input": value,
            "ctx": {"le": le}}


def e_int_from_float(loc, value):
    return {"type": "int_from_float", "loc": list(loc),
            "msg": "Input should be a valid integer, got a number with a fractional part",
            "input": value}


def e_int_parsing(loc, value):
    return {"type": "int_parsing", "loc": list(loc),
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": value}


def e_uuid_parsing(value, reason, name="session_id"):
    return {"type": "uuid_parsing", "loc": ["path", name],
            "msg": f"Input should be a valid UUID, {reason}", "input": value,
            "ctx": {"error": reason}}


# Reasons as API.md words them (see the report: real pydantic-core says
# "invalid character: expected an optional prefix of `urn:uuid:` followed by
# [0-9a-fA-F-], found `x` at 1"; API.md is authoritative here).
def uuid_reason_length(n):
    return f"invalid length: expected length 32 for simple format, found {n}"


def uuid_reason_char(ch, pos):
    return f"invalid character: found `{ch}` at {pos}"


def sort_items(items):
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))


# --------------------------------------------------------------------------
# API helpers
# --------------------------------------------------------------------------

def sessions_path(ws):
    return f"{ws}/upload_sessions"


def session_path(ws, sid):
    return f"{ws}/upload_sessions/{sid}"


def create_session(client, ws, body=None, status=201):
    r = client.post(sessions_path(ws), json={} if body is None else body)
    return check(r, status)


def close_session(client, ws, sid, status=204, body=None):
    r = client.put(session_path(ws, sid), json={"status": "CLOSED"} if body is None else body)
    if status == 204:
        return check(r, 204)
    if status == 409:
        return check(r, 409, ALREADY_CLOSED)
    return check(r, status)


def get_status(client, ws, sid, status=200):
    return check(client.get(session_path(ws, sid)), status)


def list_sessions(client, ws, status=200, **params):
    return check(client.get(sessions_path(ws), params=params), status)


def list_all(client, ws, **params):
    """Every item of the list, walking pages of 100."""
    out, page = [], 1
    while True:
        data = list_sessions(client, ws, limit=100, page_number=page, **params)
        out += data["data"]
        if not data["has_more"]:
            return out, data["total"]
        page += 1
