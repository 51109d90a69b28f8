/*
 * libFuzzer target: the OData $filter parser (us_odata_parse). Oracles:
 * - an accepted filter, written back fully parenthesised, parses again to
 *   the same tree (the parser neither drops nor invents structure);
 * - a refused one has a message ending in "at position N", N no larger
 *   than the filter's length in characters;
 * - what one input allocates stays linear in its size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include "alloc_bound.h"
#include "us_odata.h"

static const char *const OPS[] = { "eq", "ne", "gt", "ge", "lt", "le" };
static const char *const FUNCS[] = { "contains", "startswith", "endswith" };
static const char *const FIELDS[] = { "", "name", "created_at", "size", "file_id" };

static const char *value(apr_pool_t *p, const us_odata_value *v)
{
    if (v->type != US_ODATA_STRING)
        return v->str; /* numbers, dates, keywords: as written */
    char *out = apr_palloc(p, v->len * 2 + 3), *o = out;
    *o++ = '\'';
    for (apr_size_t i = 0; i < v->len; i++) {
        if (v->str[i] == '\'')
            *o++ = '\'';
        *o++ = v->str[i];
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static const char *operand(apr_pool_t *p, const us_odata_operand *o)
{
    if (o->field != US_ODATA_META)
        return FIELDS[o->field];
    const char *s = o->path[0];
    for (int i = 1; i < o->depth; i++)
        s = apr_pstrcat(p, s, "/", o->path[i], NULL);
    return s;
}

static const char *render(apr_pool_t *p, const us_odata_node *n)
{
    const char *s;
    switch (n->kind) {
    case US_ODATA_AND: return apr_pstrcat(p, "(", render(p, n->left), ") and (", render(p, n->right), ")", NULL);
    case US_ODATA_OR: return apr_pstrcat(p, "(", render(p, n->left), ") or (", render(p, n->right), ")", NULL);
    case US_ODATA_NOT: return apr_pstrcat(p, "not (", render(p, n->left), ")", NULL);
    case US_ODATA_CMP: return apr_pstrcat(p, operand(p, &n->operand), " ", OPS[n->op], " ", value(p, n->values), NULL);
    case US_ODATA_FUNC:
        return apr_pstrcat(p, FUNCS[n->func], "(", operand(p, &n->operand), ",", value(p, n->values), ")", NULL);
    case US_ODATA_IN:
        s = apr_pstrcat(p, operand(p, &n->operand), " in (", NULL);
        for (int i = 0; i < n->count; i++)
            s = apr_pstrcat(p, s, i ? "," : "", value(p, &n->values[i]), NULL);
        return apr_pstrcat(p, s, ")", NULL);
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        apr_initialize();
        init = 1;
    }
    apr_pool_t *p;
    us_odata_node *root = NULL;
    const char *err = NULL;

    alloc_bound_start();
    apr_pool_create(&p, NULL);
    int ok = us_odata_parse(p, (const char *)data, size, &root, &err);
    alloc_bound_check(64 * 1024 + size * 64, "odata parse");
    if (ok) {
        if (!root)
            abort();
        const char *text = render(p, root);
        us_odata_node *again = NULL;
        /* the rendering adds parentheses: it may nest deeper than the limit */
        if (us_odata_parse(p, text, strlen(text), &again, &err) &&
            strcmp(render(p, again), text) != 0)
            abort();
    } else {
        /* the last one: the message may quote the input, which may hold the words */
        const char *at = NULL;
        for (const char *h = err; h && (h = strstr(h, " at position ")); h++)
            at = h;
        if (!at || at[13] < '0' || at[13] > '9')
            abort();
        if (strtoull(at + 13, NULL, 10) > size)
            abort();
    }
    apr_pool_destroy(p);
    return 0;
}
