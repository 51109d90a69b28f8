/*
 * us_validate.h - request validation that answers exactly like a FastAPI +
 * pydantic v2 service: the 422 items (type, loc, msg, input, ctx), lax
 * coercion rules for bools and ints, UUID parsing with pydantic-core's
 * reasons.
 *
 * Pure: depends on jansson and us_python_json only. Every checker appends the
 * problems it finds to `errs` (a JSON array of items) and returns 1 when the
 * value is acceptable, 0 otherwise, so one request collects all problems.
 */
#ifndef US_VALIDATE_H
#define US_VALIDATE_H

#include <stddef.h>
#include <jansson.h>

/* Build one error item. `loc` and `input` and `ctx` are stolen (ctx may be NULL). */
json_t *us_validation_error(const char *type, json_t *loc, const char *msg, json_t *input,
                json_t *ctx);

/* ---- UUID ---------------------------------------------------------------- */

/* Path parameter (loc ["path", name]); uuid_parsing item on failure. */
int us_validate_path_uuid(json_t *errs, const char *name, const char *value, char out[37]);
/* Query parameter (loc ["query", name]); absent (raw NULL): out = "". */
int us_validate_query_uuid(json_t *errs, const char *name, const char *raw, char out[37]);

/* ---- query parameters ------------------------------------------------------
 * raw is the decoded value or NULL when absent (then *out = def).
 * input echoed in items is the raw string. */
int us_validate_query_int(json_t *errs, const char *name, const char *raw,
                   long long def, long long ge, long long le, long long *out);
/* The same with no upper bound (FastAPI's `ge` alone: Python's int has
 * none): a value past long long reads as LLONG_MAX. */
int us_validate_query_int_from(json_t *errs, const char *name, const char *raw,
                               long long def, long long ge, long long *out);
/* *out: 1 true, 0 false, -1 absent */
int us_validate_query_bool(json_t *errs, const char *name, const char *raw, int *out);
/* allowed is a NULL-terminated list; *out = NULL when absent. enum item on failure. */
int us_validate_query_enum(json_t *errs, const char *name, const char *raw,
                    const char *const *allowed, const char **out);

/* ---- request body ---------------------------------------------------------- */

typedef enum {
    US_BODY_OK = 0,      /* *obj is a JSON object (new reference) */
    US_BODY_INVALID,     /* items appended to errs; answer 422 */
    US_BODY_JSON_ERROR,  /* errs was REPLACED by the single json_invalid item:
                            answer 422 with it alone (FastAPI reports it alone) */
    US_BODY_UNPARSABLE,  /* answer 400 {"detail":"There was an error parsing the body"} */
    US_BODY_TOO_LARGE    /* more values than max_values: answer 413 */
} us_body_status;

/* Turn a raw body into a JSON object the way FastAPI does for a required
 * body model: empty or null -> missing; Content-Type not application/json
 * or application/<x>+json -> model_attributes_type with the raw body as a
 * string; invalid JSON -> json_invalid; non-object -> model_attributes_type;
 * more than max_values values (0: no limit) -> US_BODY_TOO_LARGE. */
us_body_status us_validate_body_object(json_t *errs, const char *content_type,
                                const char *raw, size_t len, size_t max_values, json_t **obj);

/* The values (scalars and containers, at any depth) allowed a request body
 * that may be large and hold many small values (DELETE /files' names): as
 * parsed, each costs a node, tens of times its text. */
#define US_BODY_MAX_VALUES 100000

/* pydantic's "missing" item at loc [where, name]; input stolen (NULL: null). */
void us_validate_missing(json_t *errs, const char *where, const char *name, json_t *input);
/* v has the JSON type `type` (JSON_STRING, JSON_ARRAY or JSON_OBJECT); else
 * pydantic's "string_type", "list_type" or "dict_type" item at loc, echoing
 * v. loc is stolen either way. */
int us_validate_json_type(json_t *errs, json_t *loc, json_t *v, json_type type);
/* A required field of a body object (loc ["body", field]): its value
 * (borrowed) when it has the JSON type `type`, as us_validate_json_type
 * takes it; else NULL after pydantic's item: "missing" echoing the whole
 * body, or the type item. */
json_t *us_validate_body_required(json_t *errs, json_t *body, const char *field, json_type type);

/* Fields of a body object (loc ["body", field]). Absent field -> default. */
int us_validate_body_bool(json_t *errs, json_t *body, const char *field, int def, int *out);
int us_validate_body_int(json_t *errs, json_t *body, const char *field, long long def,
                  long long ge, long long le, long long *out);
/* enum (str Enum): item type "enum"; allowed NULL-terminated; *out points into allowed. */
int us_validate_body_enum(json_t *errs, json_t *body, const char *field,
                   const char *const *allowed, const char *def, const char **out);
/* Literal['X']: item type "literal_error". */
int us_validate_body_literal(json_t *errs, json_t *body, const char *field,
                      const char *expected);

#endif
