/*
 * us_odata.h - the OData $filter subset of GET /files (API.md, "OData
 * filter subset"), parsed into a tree that a store backend turns into its
 * own query. Pure: APR only.
 *
 * Grammar (keywords and function names lower case, as OData writes them):
 *   filter  := or
 *   or      := and ("or" and)*
 *   and     := unary ("and" unary)*            -- and binds tighter than or
 *   unary   := "not" unary | primary           -- not a eq 1 = not (a eq 1)
 *   primary := "(" or ")"
 *            | operand cmp literal             -- cmp: eq ne gt ge lt le
 *            | operand "in" "(" literal ("," literal)* ")"
 *            | func "(" operand "," string ")" -- contains startswith endswith
 *   operand := ident ("/" ident)*              -- name, created_at, size, file_id
 *                                                 are the file's own fields; any
 *                                                 other path is a metadata key
 *   literal := 'string' ('' escapes ') | "string" | integer | decimal
 *            | true | false | null | date-time (2024-01-31, 2024-01-31T10:00:00Z,
 *              fraction and +hh:mm zone optional; no zone = UTC)
 * Errors name a position: a 0-based index in characters (code points).
 */
#ifndef US_ODATA_H
#define US_ODATA_H

#include <apr_pools.h>
#include <apr_time.h>

#define US_ODATA_MAX_BYTES 4096 /* a longer filter is refused */
#define US_ODATA_MAX_DEPTH 32   /* nesting of parentheses and not */
#define US_ODATA_MAX_TERMS 256  /* comparisons, functions and in-list values */

typedef enum {
    US_ODATA_AND,  /* left and right */
    US_ODATA_OR,   /* left or right */
    US_ODATA_NOT,  /* not left */
    US_ODATA_CMP,  /* operand op value */
    US_ODATA_IN,   /* operand in (values) */
    US_ODATA_FUNC  /* func(operand, value), value a string */
} us_odata_kind;

typedef enum { US_ODATA_EQ, US_ODATA_NE, US_ODATA_GT, US_ODATA_GE, US_ODATA_LT, US_ODATA_LE } us_odata_op;

typedef enum { US_ODATA_CONTAINS, US_ODATA_STARTSWITH, US_ODATA_ENDSWITH } us_odata_func;

/* The file's own fields; US_ODATA_META: a metadata key path. */
typedef enum {
    US_ODATA_META,
    US_ODATA_NAME,
    US_ODATA_CREATED_AT,
    US_ODATA_SIZE,
    US_ODATA_FILE_ID
} us_odata_field;

typedef enum {
    US_ODATA_STRING,
    US_ODATA_INTEGER,
    US_ODATA_DECIMAL,
    US_ODATA_BOOLEAN,
    US_ODATA_NULL,
    US_ODATA_DATETIME
} us_odata_type;

typedef struct {
    us_odata_type type;
    const char *str;     /* STRING: the unescaped text (no NUL inside); else the literal as written */
    apr_size_t len;      /* STRING: its length in bytes */
    long long integer;   /* INTEGER; BOOLEAN: 0 or 1 */
    double decimal;      /* DECIMAL, and INTEGER as a double */
    apr_time_t instant;  /* DATETIME, microseconds since the epoch (UTC) */
} us_odata_value;

typedef struct {
    us_odata_field field;
    const char *const *path; /* META: the key's segments (a/b -> "a", "b") */
    int depth;               /* META: how many */
} us_odata_operand;

typedef struct us_odata_node us_odata_node;
struct us_odata_node {
    us_odata_kind kind;
    us_odata_node *left, *right;  /* AND/OR: both; NOT: left */
    us_odata_operand operand;     /* CMP, IN, FUNC */
    us_odata_op op;               /* CMP */
    us_odata_func func;           /* FUNC */
    const us_odata_value *values; /* CMP, FUNC: one; IN: count */
    int count;
};

/* Parses filter[0..len) (UTF-8) into *out, allocated in p. Returns 1, or 0
 * with *err set to a message that ends in "at position N". */
int us_odata_parse(apr_pool_t *p, const char *filter, apr_size_t len, us_odata_node **out,
                   const char **err);

#endif
