"""422 answers: every row of API.md's validation table, compared as whole JSON
values. Expected json_invalid items are computed with CPython's json module,
which the module mimics."""

import uuid

import pytest

from us_testkit.api import (check, create_session, e_bool_parsing, e_enum_write_mode, e_ge,
                            e_int_from_float, e_int_parsing, e_json_invalid, e_le,
                            e_literal_closed, e_missing, e_model_attributes_type,
                            e_uuid_parsing, get_status, list_sessions, session_path,
                            sessions_path, sort_items, unique_ws, uuid_reason_char,
                            uuid_reason_length, v422)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# (id, raw body, content type or None) -> expected items (a callable of raw)
INVALID_JSON_BODIES = [
    ("truncated-after-colon", b'{"status":'),
    ("open-brace", b"{"),
    ("missing-colon", b'{"status" "CLOSED"}'),
    ("trailing-comma-object", b'{"status":"CLOSED",}'),
    ("trailing-comma-array", b"[1,]"),
    ("bare-word", b"nul"),
    ("single-quotes", b"{'status':'CLOSED'}"),
    ("extra-data", b'{"status":"CLOSED"} x'),
    ("two-objects", b'{"a":1}{"b":2}'),
    ("leading-zero", b"01"),
    ("exponent-without-digits", b'{"a":1e}'),
    ("bad-escape", b'{"a":"\\q"}'),
    ("control-character", b'{"a":"x\x01y"}'),
    ("unterminated-string", b'{"status":"CLOSED'),
    ("whitespace-only", b"   \n "),
    ("minus-only", b"-"),
    ("non-ascii-before-error", '{"äöü€":x}'.encode()),
]

NON_OBJECT_BODIES = [
    ("array", b"[1]", [1]),
    ("empty-array", b"[]", []),
    ("string", b'"x"', "x"),
    ("string-closed", b'"CLOSED"', "CLOSED"),
    ("int", b"5", 5),
    ("float", b"1.5", 1.5),
    ("true", b"true", True),
]

# body sent with a non-JSON content type (or none): input is the raw body string
NON_JSON_CTYPES = [
    ("text-plain", "text/plain", '{"status":"CLOSED"}'),
    ("form", FORM, "status=CLOSED"),
    ("no-content-type", None, '{"status":"CLOSED"}'),
    ("text-json", "text/json", "{}"),
    ("application-jsonx", "application/jsonx", "{}"),
]

MISSING_BODIES = [
    ("empty-json", b"", JSON),
    ("empty-no-ctype", b"", None),
    ("empty-text-plain", b"", "text/plain"),
    ("null", b"null", JSON),
    ("null-spaces", b" null \n", JSON),
]


def send(client, method, path, raw, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    return client.request(method, path, content=raw, headers=headers)


@pytest.fixture
def open_session(srv, api):
    """An OPEN session: close 422s must leave it OPEN."""
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    yield ws, sid
    assert get_status(api, ws, sid)["status"] == "OPEN", "a 422 changed the session"


@pytest.fixture
def empty_ws(srv, api):
    """A workspace where create 422s must not create anything."""
    ws = unique_ws()
    yield ws
    check(api.get(sessions_path(ws)), 200, {"data": [], "has_more": False, "total": 0})


# ---------------------------------------------------------------------------
# close: PUT /upload_sessions/{id}
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,ctype", [c[1:] for c in MISSING_BODIES],
                         ids=[c[0] for c in MISSING_BODIES])
def test_close_missing_body(api, open_session, raw, ctype):
    ws, sid = open_session
    check(send(api, "PUT", session_path(ws, sid), raw, ctype), 422, v422(e_missing()))


def test_close_without_any_body(api, open_session):
    ws, sid = open_session
    check(api.put(session_path(ws, sid)), 422, v422(e_missing()))


@pytest.mark.parametrize("raw", [c[1] for c in INVALID_JSON_BODIES],
                         ids=[c[0] for c in INVALID_JSON_BODIES])
def test_close_invalid_json(api, open_session, raw):
    ws, sid = open_session
    check(send(api, "PUT", session_path(ws, sid), raw, JSON), 422,
          v422(e_json_invalid(raw)))


def test_close_invalid_json_position_counts_characters(api, open_session):
    ws, sid = open_session
    raw = '{"äöü€":x}'.encode()
    expected = {"type": "json_invalid", "loc": ["body", 8], "msg": "JSON decode error",
                "input": {}, "ctx": {"error": "Expecting value"}}
    assert e_json_invalid(raw) == expected  # characters, not bytes (13)
    check(send(api, "PUT", session_path(ws, sid), raw, JSON), 422, v422(expected))


def test_close_invalid_json_reference_item(api, open_session):
    """The literal example of the issue."""
    ws, sid = open_session
    check(send(api, "PUT", session_path(ws, sid), b'{"status":', JSON), 422,
          {"detail": [{"type": "json_invalid", "loc": ["body", 10],
                       "msg": "JSON decode error", "input": {},
                       "ctx": {"error": "Expecting value"}}]})


@pytest.mark.parametrize("raw,value", [c[1:] for c in NON_OBJECT_BODIES],
                         ids=[c[0] for c in NON_OBJECT_BODIES])
def test_close_json_not_an_object(api, open_session, raw, value):
    ws, sid = open_session
    check(send(api, "PUT", session_path(ws, sid), raw, JSON), 422,
          v422(e_model_attributes_type(value)))


@pytest.mark.parametrize("ctype,raw", [c[1:] for c in NON_JSON_CTYPES],
                         ids=[c[0] for c in NON_JSON_CTYPES])
def test_close_non_json_content_type(api, open_session, ctype, raw):
    ws, sid = open_session
    check(send(api, "PUT", session_path(ws, sid), raw.encode(), ctype), 422,
          v422(e_model_attributes_type(raw)))


@pytest.mark.parametrize("value", ["OPEN", "closed", "EXPIRED", 1, None, ""],
                         ids=["OPEN", "lower-closed", "EXPIRED", "int", "null", "empty"])
def test_close_status_not_closed(api, open_session, value):
    ws, sid = open_session
    check(api.put(session_path(ws, sid), json={"status": value}), 422,
          v422(e_literal_closed(value)))


def test_close_status_open_reference_item(api, open_session):
    ws, sid = open_session
    check(api.put(session_path(ws, sid), json={"status": "OPEN", "other": 1}), 422,
          {"detail": [{"type": "literal_error", "loc": ["body", "status"],
                       "msg": "Input should be 'CLOSED'", "input": "OPEN",
                       "ctx": {"expected": "'CLOSED'"}}]})


# ---------------------------------------------------------------------------
# path: session_id
# ---------------------------------------------------------------------------

BAD_IDS = [
    ("abc", uuid_reason_length(3)),
    ("xyz", uuid_reason_char("x", 1)),
    ("12345678-1234-1234-1234-12345678901g", uuid_reason_char("g", 36)),
    ("0123456789abcdef0123456789abcde", uuid_reason_length(31)),
]
# pydantic-core (Rust uuid crate) reasons beyond API.md's two examples
BAD_IDS_GROUPS = [
    ("1234-5678", "invalid group count: expected 5, found 2"),
    ("12345678-1234-1234-1234-12345678901", "invalid group length in group 4: expected 12, found 11"),
    ("123456789-123-1234-1234-123456789012", "invalid group length in group 0: expected 8, found 9"),
]


def test_uuid_reference_items(srv, api):
    ws = unique_ws()
    check(api.get(session_path(ws, "abc")), 422, {"detail": [{
        "type": "uuid_parsing", "loc": ["path", "session_id"],
        "msg": "Input should be a valid UUID, invalid length: expected length 32 for simple "
               "format, found 3",
        "input": "abc",
        "ctx": {"error": "invalid length: expected length 32 for simple format, found 3"}}]})
    check(api.get(session_path(ws, "xyz")), 422, {"detail": [{
        "type": "uuid_parsing", "loc": ["path", "session_id"],
        "msg": "Input should be a valid UUID, invalid character: found `x` at 1",
        "input": "xyz", "ctx": {"error": "invalid character: found `x` at 1"}}]})


@pytest.mark.parametrize("bad,reason", BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_bad_session_id(srv, api, bad, reason):
    ws = unique_ws()
    expected = v422(e_uuid_parsing(bad, reason))
    check(api.get(session_path(ws, bad)), 422, expected)
    check(api.put(session_path(ws, bad), json={"status": "CLOSED"}), 422, expected)
    check(api.put(session_path(ws, bad), json={}), 422, expected)


@pytest.mark.parametrize("bad,reason", BAD_IDS_GROUPS, ids=[b[0] for b in BAD_IDS_GROUPS])
def test_bad_session_id_group_reasons(srv, api, bad, reason):
    ws = unique_ws()
    check(api.get(session_path(ws, bad)), 422, v422(e_uuid_parsing(bad, reason)))


def test_bad_path_and_bad_body_reported_together_path_first(srv, api):
    ws = unique_ws()
    p = session_path(ws, "abc")
    u = e_uuid_parsing("abc", uuid_reason_length(3))
    check(api.put(p, json={"status": "OPEN"}), 422, v422(u, e_literal_closed("OPEN")))
    check(send(api, "PUT", p, b"", JSON), 422, v422(u, e_missing()))
    check(send(api, "PUT", p, b"null", JSON), 422, v422(u, e_missing()))
    check(send(api, "PUT", p, b"[1]", JSON), 422, v422(u, e_model_attributes_type([1])))
    check(send(api, "PUT", p, b"status=CLOSED", FORM), 422,
          v422(u, e_model_attributes_type("status=CLOSED")))


def test_invalid_json_reported_alone_even_with_bad_path(srv, api):
    ws = unique_ws()
    for raw in (b'{"status":', b"{", b"[1,]"):
        check(send(api, "PUT", session_path(ws, "abc"), raw, JSON), 422,
              v422(e_json_invalid(raw)))
        check(send(api, "PUT", session_path(ws, "xyz"), raw, JSON), 422,
              v422(e_json_invalid(raw)))


# ---------------------------------------------------------------------------
# create: POST /upload_sessions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,ctype", [c[1:] for c in MISSING_BODIES],
                         ids=[c[0] for c in MISSING_BODIES])
def test_create_missing_body(api, empty_ws, raw, ctype):
    check(send(api, "POST", sessions_path(empty_ws), raw, ctype), 422, v422(e_missing()))


@pytest.mark.parametrize("raw", [c[1] for c in INVALID_JSON_BODIES],
                         ids=[c[0] for c in INVALID_JSON_BODIES])
def test_create_invalid_json(api, empty_ws, raw):
    check(send(api, "POST", sessions_path(empty_ws), raw, JSON), 422,
          v422(e_json_invalid(raw)))


@pytest.mark.parametrize("raw,value", [c[1:] for c in NON_OBJECT_BODIES],
                         ids=[c[0] for c in NON_OBJECT_BODIES])
def test_create_json_not_an_object(api, empty_ws, raw, value):
    check(send(api, "POST", sessions_path(empty_ws), raw, JSON), 422,
          v422(e_model_attributes_type(value)))


@pytest.mark.parametrize("ctype,raw", [c[1:] for c in NON_JSON_CTYPES],
                         ids=[c[0] for c in NON_JSON_CTYPES])
def test_create_non_json_content_type(api, empty_ws, ctype, raw):
    check(send(api, "POST", sessions_path(empty_ws), raw.encode(), ctype), 422,
          v422(e_model_attributes_type(raw)))


@pytest.mark.parametrize("value", ["X", "keep", "Overwrite", ""], ids=str)
def test_create_bad_write_mode(api, empty_ws, value):
    check(api.post(sessions_path(empty_ws), json={"write_mode": value}), 422,
          v422(e_enum_write_mode(value)))


def test_create_bad_write_mode_reference_item(api, empty_ws):
    check(api.post(sessions_path(empty_ws), json={"write_mode": "X"}), 422,
          {"detail": [{"type": "enum", "loc": ["body", "write_mode"],
                       "msg": "Input should be 'KEEP', 'OVERWRITE' or 'FAIL'", "input": "X",
                       "ctx": {"expected": "'KEEP', 'OVERWRITE' or 'FAIL'"}}]})


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, -1, "truth"], ids=repr)
def test_create_bad_bool(api, empty_ws, value):
    check(api.post(sessions_path(empty_ws), json={"parallel_processing_enabled": value}),
          422, v422(e_bool_parsing(["body", "parallel_processing_enabled"], value)))


LOC_EXP = ["body", "expires_in_seconds"]


@pytest.mark.parametrize("value,item", [
    (0, e_ge(LOC_EXP, 0, 1)),
    (-5, e_ge(LOC_EXP, -5, 1)),
    (86401, e_le(LOC_EXP, 86401, 86400)),
    (1000000, e_le(LOC_EXP, 1000000, 86400)),
    (1.5, e_int_from_float(LOC_EXP, 1.5)),
    (0.5, e_int_from_float(LOC_EXP, 0.5)),
    ("abc", e_int_parsing(LOC_EXP, "abc")),
], ids=["0", "-5", "86401", "1000000", "1.5", "0.5", "abc"])
def test_create_bad_expires_in_seconds(api, empty_ws, value, item):
    check(api.post(sessions_path(empty_ws), json={"expires_in_seconds": value}), 422,
          v422(item))


def test_create_expires_reference_items(api, empty_ws):
    p = sessions_path(empty_ws)
    check(api.post(p, json={"expires_in_seconds": 0}), 422, {"detail": [{
        "type": "greater_than_equal", "loc": ["body", "expires_in_seconds"],
        "msg": "Input should be greater than or equal to 1", "input": 0, "ctx": {"ge": 1}}]})
    check(api.post(p, json={"expires_in_seconds": 86401}), 422, {"detail": [{
        "type": "less_than_equal", "loc": ["body", "expires_in_seconds"],
        "msg": "Input should be less than or equal to 86400", "input": 86401,
        "ctx": {"le": 86400}}]})
    check(api.post(p, json={"expires_in_seconds": 1.5}), 422, {"detail": [{
        "type": "int_from_float", "loc": ["body", "expires_in_seconds"],
        "msg": "Input should be a valid integer, got a number with a fractional part",
        "input": 1.5}]})


def test_create_all_problems_together(api, empty_ws):
    r = api.post(sessions_path(empty_ws), json={"write_mode": "X",
                                                "parallel_processing_enabled": "maybe",
                                                "expires_in_seconds": 0, "unknown": 1})
    data = check(r, 422)
    assert set(data) == {"detail"}, data
    assert isinstance(data["detail"], list) and len(data["detail"]) == 3, data
    assert sort_items(data["detail"]) == sort_items([
        e_enum_write_mode("X"),
        e_bool_parsing(["body", "parallel_processing_enabled"], "maybe"),
        e_ge(LOC_EXP, 0, 1),
    ]), data
    r = api.post(sessions_path(empty_ws), json={"write_mode": "keep",
                                                "expires_in_seconds": 2.5})
    data = check(r, 422)
    assert sort_items(data["detail"]) == sort_items([
        e_enum_write_mode("keep"), e_int_from_float(LOC_EXP, 2.5)]), data


# ---------------------------------------------------------------------------
# query: GET /upload_sessions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("params,item", [
    ({"limit": "abc"}, e_int_parsing(["query", "limit"], "abc")),
    ({"limit": "101"}, e_le(["query", "limit"], "101", 100)),
    ({"limit": "0"}, e_ge(["query", "limit"], "0", 1)),
    ({"limit": "-1"}, e_ge(["query", "limit"], "-1", 1)),
    ({"limit": ""}, e_int_parsing(["query", "limit"], "")),
    ({"page_number": "0"}, e_ge(["query", "page_number"], "0", 1)),
    ({"page_number": "abc"}, e_int_parsing(["query", "page_number"], "abc")),
    ({"is_expired": "maybe"}, e_bool_parsing(["query", "is_expired"], "maybe")),
], ids=["limit-abc", "limit-101", "limit-0", "limit-neg", "limit-empty", "page-0",
        "page-abc", "is_expired-maybe"])
def test_list_bad_query(srv, api, params, item):
    ws = unique_ws()
    check(api.get(sessions_path(ws), params=params), 422, v422(item))


def test_list_query_reference_items(srv, api):
    ws = unique_ws()
    check(api.get(sessions_path(ws), params={"limit": "abc"}), 422, {"detail": [{
        "type": "int_parsing", "loc": ["query", "limit"],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
        "input": "abc"}]})
    check(api.get(sessions_path(ws), params={"limit": "101"}), 422, {"detail": [{
        "type": "less_than_equal", "loc": ["query", "limit"],
        "msg": "Input should be less than or equal to 100", "input": "101",
        "ctx": {"le": 100}}]})
    check(api.get(sessions_path(ws), params={"is_expired": "maybe"}), 422, {"detail": [{
        "type": "bool_parsing", "loc": ["query", "is_expired"],
        "msg": "Input should be a valid boolean, unable to interpret input",
        "input": "maybe"}]})


def test_list_several_query_problems(srv, api):
    ws = unique_ws()
    r = api.get(sessions_path(ws), params={"limit": "abc", "page_number": "0",
                                           "is_expired": "maybe"})
    data = check(r, 422)
    assert set(data) == {"detail"} and len(data["detail"]) == 3, data
    assert sort_items(data["detail"]) == sort_items([
        e_int_parsing(["query", "limit"], "abc"),
        e_ge(["query", "page_number"], "0", 1),
        e_bool_parsing(["query", "is_expired"], "maybe"),
    ]), data


def test_list_valid_query_boundaries(srv, api):
    ws = unique_ws()
    for params in ({"limit": "1"}, {"limit": "100"}, {"page_number": "1"},
                   {"page_number": "1000"}, {"is_expired": "true"},
                   {"is_expired": "false"}, {"unknown": "x"}):
        check(api.get(sessions_path(ws), params=params), 200,
              {"data": [], "has_more": False, "total": 0})


def test_status_and_close_of_unknown_valid_uuid_is_404_not_422(srv, api):
    ws = unique_ws()
    sid = str(uuid.uuid4())
    body = {"detail": f"There's no session with the ID '{sid}' in the workspace. "
                      f"Check if the ID is correct. "}
    check(api.get(session_path(ws, sid)), 404, body)
    check(api.put(session_path(ws, sid), json={"status": "CLOSED"}), 404, body)
    check(api.put(session_path(ws, sid), json={}), 404, body)


def test_list_still_works_after_validation_errors(srv, api):
    ws = unique_ws()
    sid = create_session(api, ws)["session_id"]
    check(api.get(sessions_path(ws), params={"limit": "abc"}), 422,
          v422(e_int_parsing(["query", "limit"], "abc")))
    d = list_sessions(api, ws)
    assert [i["session_id"] for i in d["data"]] == [sid]


def test_an_encoded_nul_cuts_no_query_value_nor_key(srv, api):
    """%00 in a query string is no end of its value or key: `limit=5%00abc`
    is not 5 but no integer (Starlette's value holds a NUL; ours the text
    %00), and a key `limit%00x` is no `limit` (FastAPI ignores it)."""
    ws = unique_ws()
    check(api.get(sessions_path(ws) + "?limit=5%00abc"), 422,
          v422(e_int_parsing(["query", "limit"], "5%00abc")))
    check(api.get(sessions_path(ws) + "?is_expired=true%00maybe"), 422,
          v422(e_bool_parsing(["query", "is_expired"], "true%00maybe")))
    check(api.get(sessions_path(ws) + "?limit%00x=500"), 200,
          {"data": [], "has_more": False, "total": 0})


def test_a_page_number_past_int64_is_an_empty_page(srv, api):
    """FastAPI declares page_number with `ge=1` alone, and Python's int has
    no top: a page past any list is empty, with the list's total."""
    ws = unique_ws()
    create_session(api, ws)
    check(api.get(sessions_path(ws), params={"page_number": "9223372036854775808"}), 200,
          {"data": [], "has_more": False, "total": 1})
