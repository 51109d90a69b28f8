/* us_filter_sql.c - see us_filter_sql.h. */
#include <apr_strings.h>
#include <string.h>

#include "us_filter_sql.h"
#include "us_time.h"

const char *us_filter_text_arg(us_filter_builder *b, const char *s)
{
    APR_ARRAY_PUSH(b->args, const void *) = s;
    return "%s";
}

const char *us_filter_int_arg(us_filter_builder *b, long long v)
{
    apr_int64_t *slot = apr_palloc(b->p, sizeof(*slot));
    *slot = v;
    APR_ARRAY_PUSH(b->args, const void *) = slot;
    return "%lld";
}

const char *us_filter_double_arg(us_filter_builder *b, double v)
{
    double *slot = apr_palloc(b->p, sizeof(*slot));
    *slot = v;
    APR_ARRAY_PUSH(b->args, const void *) = slot;
    return "%lf";
}

const char *us_filter_op(us_odata_op op)
{
    static const char *const OPS[] = { "=", "<>", ">", ">=", "<", "<=" };
    return OPS[op];
}

/* A literal as an instant: a date-time, or a string written as one. */
static int literal_instant(apr_pool_t *p, const us_odata_value *v, apr_time_t *out)
{
    if (v->type == US_ODATA_DATETIME) {
        *out = v->instant;
        return 1;
    }
    if (v->type != US_ODATA_STRING)
        return 0;
    if (us_time_parse(v->str, out))
        return 1;
    return v->len == 10 && us_time_parse(apr_pstrcat(p, v->str, "T00:00:00Z", NULL), out);
}

/* field op value on one of the file's own columns (never NULL): a literal
 * of another type matches nothing. */
static const char *field_compare(us_filter_builder *b, us_odata_field field, us_odata_op op,
                                 const us_odata_value *v)
{
    const us_filter_dialect *d = b->d;
    apr_time_t t;
    if (v->type == US_ODATA_NULL)
        return op == US_ODATA_NE ? d->true_sql : d->false_sql;
    switch (field) {
    case US_ODATA_NAME:
    case US_ODATA_FILE_ID:
        if (v->type != US_ODATA_STRING)
            return d->false_sql;
        return apr_pstrcat(b->p, field == US_ODATA_NAME ? "name" : "file_id", d->byte_order, " ",
                           us_filter_op(op), " ", us_filter_text_arg(b, v->str), NULL);
    case US_ODATA_SIZE:
        if (v->type == US_ODATA_INTEGER)
            return apr_pstrcat(b->p, "size ", us_filter_op(op), " ", us_filter_int_arg(b, v->integer), NULL);
        if (v->type == US_ODATA_DECIMAL)
            return apr_pstrcat(b->p, "size ", us_filter_op(op), " ", d->decimal_arg(b, v), NULL);
        return d->false_sql;
    case US_ODATA_CREATED_AT:
        if (!literal_instant(b->p, v, &t))
            return d->false_sql;
        return apr_pstrcat(b->p, "created_at ", us_filter_op(op), " ", us_filter_int_arg(b, t), NULL);
    case US_ODATA_META:
        break;
    }
    return d->false_sql;
}

static const char *compare(us_filter_builder *b, const us_odata_operand *o, us_odata_op op,
                           const us_odata_value *v)
{
    return o->field == US_ODATA_META ? b->d->meta_compare(b, o, op, v)
                                     : field_compare(b, o->field, op, v);
}

static const char *function(us_filter_builder *b, const us_odata_node *n)
{
    const char *needle = n->values[0].str;
    switch (n->operand.field) {
    case US_ODATA_META: return b->d->meta_function(b, &n->operand, n->func, needle);
    case US_ODATA_NAME: return b->d->string_function(b, "name", n->func, needle);
    case US_ODATA_FILE_ID: return b->d->string_function(b, "file_id", n->func, needle);
    default: return b->d->false_sql; /* size, created_at: not strings */
    }
}

/* The terms of n's chain of kind (a and b and c: a, b, c), left to right;
 * n alone when it is of another kind. Gathered without recursion: a chain
 * nests as deep as it is long. */
static apr_array_header_t *chain_terms(apr_pool_t *p, const us_odata_node *n, us_odata_kind kind)
{
    apr_array_header_t *todo = apr_array_make(p, 16, sizeof(const us_odata_node *));
    apr_array_header_t *terms = apr_array_make(p, 16, sizeof(const us_odata_node *));
    APR_ARRAY_PUSH(todo, const us_odata_node *) = n;
    while (todo->nelts > 0) {
        const us_odata_node *m = *(const us_odata_node **)apr_array_pop(todo);
        if (m->kind == kind) {
            APR_ARRAY_PUSH(todo, const us_odata_node *) = m->right;
            APR_ARRAY_PUSH(todo, const us_odata_node *) = m->left;
        } else {
            APR_ARRAY_PUSH(terms, const us_odata_node *) = m;
        }
    }
    return terms;
}

typedef const char *(*term_writer)(us_filter_builder *b, const us_odata_node *n);

/* n's and/or chain written flat, (t1 AND t2 AND ...), each term by
 * write_term in text order: SQLite's parser overflows on a paren per term. */
static const char *flat_chain(us_filter_builder *b, const us_odata_node *n, term_writer write_term)
{
    apr_array_header_t *terms = chain_terms(b->p, n, n->kind);
    apr_array_header_t *parts = apr_array_make(b->p, 2 * terms->nelts + 1, sizeof(const char *));
    const char *sep = n->kind == US_ODATA_AND ? " AND " : " OR ";
    for (int i = 0; i < terms->nelts; i++) {
        APR_ARRAY_PUSH(parts, const char *) = i ? sep : "(";
        APR_ARRAY_PUSH(parts, const char *) = write_term(b, APR_ARRAY_IDX(terms, i, const us_odata_node *));
    }
    APR_ARRAY_PUSH(parts, const char *) = ")";
    return apr_array_pstrcat(b->p, parts, '\0');
}

static const char *expr(us_filter_builder *b, const us_odata_node *n)
{
    const char *s;
    switch (n->kind) {
    case US_ODATA_AND:
    case US_ODATA_OR: return flat_chain(b, n, expr);
    case US_ODATA_NOT: return apr_pstrcat(b->p, "(NOT ", expr(b, n->left), ")", NULL);
    case US_ODATA_CMP: return compare(b, &n->operand, n->op, n->values);
    case US_ODATA_FUNC: return function(b, n);
    case US_ODATA_IN:
        s = compare(b, &n->operand, US_ODATA_EQ, &n->values[0]);
        for (int i = 1; i < n->count; i++)
            s = apr_pstrcat(b->p, s, " OR ", compare(b, &n->operand, US_ODATA_EQ, &n->values[i]), NULL);
        return apr_pstrcat(b->p, "(", s, ")", NULL);
    }
    return b->d->false_sql;
}

/* The placeholders of sql: each '%' starts one (values are never
 * spliced), but "%%" is apr_dbd's escaped percent sign. */
static int placeholders_of(const char *sql)
{
    int n = 0;
    for (const char *c = sql; *c; c++) {
        if (c[0] == '%' && c[1] == '%')
            c++;
        else
            n += *c == '%';
    }
    return n;
}

/* sql, whose parameters are args from index first on: one apiece, or
 * each later parameter would bind to the wrong placeholder. A dialect's
 * mistake gives NULL (args back as they were): the request fails, the
 * process does not. */
static const char *checked(const char *sql, apr_array_header_t *args, int first)
{
    if (placeholders_of(sql) == args->nelts - first)
        return sql;
    args->nelts = first;
    return NULL;
}

const char *us_filter_sql(apr_pool_t *p, const us_odata_node *n, apr_array_header_t *args,
                          const us_filter_dialect *d)
{
    us_filter_builder b = { p, args, d };
    int first = args->nelts;
    return checked(expr(&b, n), args, first);
}

/* ---- counts from the key table ------------------------------------------------------ */

static int is_key(const us_odata_operand *o)
{
    return o->field == US_ODATA_META && o->depth == 1;
}

/* Whether n holds only for files that have a key table row for its key
 * (key_cond then gives that row's condition). `eq null` also holds for a
 * missing key; any other comparison with null holds for nothing. */
static int positive(const us_odata_node *n)
{
    switch (n->kind) {
    case US_ODATA_CMP:
        return is_key(&n->operand) && !(n->values[0].type == US_ODATA_NULL && n->op == US_ODATA_EQ);
    case US_ODATA_IN:
        if (!is_key(&n->operand))
            return 0;
        for (int i = 0; i < n->count; i++)
            if (n->values[i].type == US_ODATA_NULL)
                return 0;
        return 1;
    case US_ODATA_FUNC:
        return is_key(&n->operand);
    default:
        return 0;
    }
}

/* The condition on key table row x for a positive n. */
static const char *key_cond(us_filter_builder *b, const char *x, const us_odata_node *n)
{
    const us_filter_dialect *d = b->d;
    const char *s = apr_pstrcat(b->p, x, ".key = ", us_filter_text_arg(b, n->operand.path[0]), NULL);
    const char *c;
    switch (n->kind) {
    case US_ODATA_CMP:
        if (n->values[0].type == US_ODATA_NULL)
            c = n->op == US_ODATA_NE ? apr_pstrcat(b->p, x, ".t <> 'null'", NULL) : d->false_sql;
        else
            c = d->key_compare(b, x, n->op, n->values);
        break;
    case US_ODATA_IN:
        c = d->key_compare(b, x, US_ODATA_EQ, &n->values[0]);
        for (int i = 1; i < n->count; i++)
            c = apr_pstrcat(b->p, c, ") OR (", d->key_compare(b, x, US_ODATA_EQ, &n->values[i]), NULL);
        c = apr_pstrcat(b->p, "(", c, ")", NULL);
        break;
    default:
        c = d->key_function(b, x, n->func, n->values[0].str);
        break;
    }
    return apr_pstrcat(b->p, s, " AND (", c, ")", NULL);
}

/* EXISTS: the file of key table row k has a row for positive n's key that
 * satisfies it (a primary-key probe). */
static const char *key_probe(us_filter_builder *b, const us_odata_node *n)
{
    const char *ref = b->d->key_ref;
    const char *head = apr_pstrcat(b->p, "EXISTS (SELECT 1 FROM us_file_keys e WHERE e.", ref, " = k.", ref,
                                   " AND e.workspace = k.workspace AND ", NULL);
    return apr_pstrcat(b->p, head, key_cond(b, "e", n), ")", NULL);
}

/* n as a condition on the file of key table row k. */
static const char *pred(us_filter_builder *b, const us_odata_node *n)
{
    const char *s;
    us_odata_node m;
    switch (n->kind) {
    case US_ODATA_AND:
    case US_ODATA_OR: return flat_chain(b, n, pred);
    case US_ODATA_NOT: return apr_pstrcat(b->p, "(NOT ", pred(b, n->left), ")", NULL);
    default: break;
    }
    if (!is_key(&n->operand))
        return b->d->file_probe(b, apr_pstrcat(b->p, "k.", b->d->key_ref, NULL), expr(b, n));
    if (positive(n))
        return key_probe(b, n);
    m = *n;
    if (n->kind == US_ODATA_CMP) { /* eq null: no row with a non-null value */
        m.op = US_ODATA_NE;
        return apr_pstrcat(b->p, "(NOT ", key_probe(b, &m), ")", NULL);
    }
    /* in (..., null, ...): one term per value */
    m.kind = US_ODATA_CMP;
    m.op = US_ODATA_EQ;
    m.count = 1;
    m.values = &n->values[0];
    s = pred(b, &m);
    for (int i = 1; i < n->count; i++) {
        m.values = &n->values[i];
        s = apr_pstrcat(b->p, s, " OR ", pred(b, &m), NULL);
    }
    return apr_pstrcat(b->p, "(", s, ")", NULL);
}

/* More conjuncts count from the rows: one key table probe apiece makes
 * PostgreSQL's planning grow steeply (250 took half a minute). */
#define KEY_COUNT_MAX_TERMS 8

/* Whether n names a key the key table does not keep (US_FILTER_KEY_NAME_MAX) */
static int names_unkept_key(const us_odata_node *n)
{
    switch (n->kind) {
    case US_ODATA_AND:
    case US_ODATA_OR: return names_unkept_key(n->left) || names_unkept_key(n->right);
    case US_ODATA_NOT: return names_unkept_key(n->left);
    default: return is_key(&n->operand) && strlen(n->operand.path[0]) > US_FILTER_KEY_NAME_MAX;
    }
}

static int is_eq(const us_odata_node *n)
{
    return n->kind == US_ODATA_CMP && n->op == US_ODATA_EQ;
}

const char *us_filter_count_sql(apr_pool_t *p, const us_odata_node *n, const char *workspace,
                                apr_array_header_t *args, const us_filter_dialect *d)
{
    us_filter_builder b = { p, args, d };
    apr_array_header_t *terms = chain_terms(p, n, US_ODATA_AND);
    int driver = -1, first = args->nelts;
    if (terms->nelts > KEY_COUNT_MAX_TERMS || names_unkept_key(n))
        return NULL;
    /* an equality is usually the narrower index range */
    for (int i = 0; i < terms->nelts; i++) {
        const us_odata_node *t = APR_ARRAY_IDX(terms, i, const us_odata_node *);
        if (positive(t) && (driver < 0 || (is_eq(t) && !is_eq(APR_ARRAY_IDX(terms, driver, const us_odata_node *)))))
            driver = i;
    }
    if (driver < 0)
        return NULL;
    const char *s = apr_pstrcat(p, "SELECT COUNT(*) FROM us_file_keys k WHERE k.workspace = ",
                                us_filter_text_arg(&b, workspace), " AND ", NULL);
    s = apr_pstrcat(p, s, key_cond(&b, "k", APR_ARRAY_IDX(terms, driver, const us_odata_node *)), NULL);
    for (int i = 0; i < terms->nelts; i++)
        if (i != driver)
            s = apr_pstrcat(p, s, " AND ", pred(&b, APR_ARRAY_IDX(terms, i, const us_odata_node *)), NULL);
    return checked(s, args, first);
}
