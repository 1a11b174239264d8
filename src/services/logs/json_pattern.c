/*
 * json_pattern: CloudWatch Logs' JSON filter patterns, `{ $.level = "ERROR" }`, for
 * FilterLogEvents and `aws logs tail --filter-pattern` (pattern.c hands over every pattern
 * that starts with '{'). Owns the pattern's small language and its matching; the log event
 * itself is parsed by jansson, and an event that is not a JSON object never matches.
 *
 *   pattern    := '{' or '}'
 *   or         := and ('||' and)*
 *   and        := unary ('&&' unary)*
 *   unary      := '(' or ')' | selector test
 *   selector   := '$' ('.' name | '[' index ']')*
 *   test       := ('=' | '!=') value          strings with '*' wildcards, or numbers
 *               | ('<' | '<=' | '>' | '>=') number
 *               | IS (NULL | TRUE | FALSE) | NOT EXISTS
 *
 * A comparison needs the selected field to exist ('!=' too). '=' compares numbers as numbers
 * when both sides are numbers, else the field's string with the value's wildcards.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/logs/logs_internal.h"

#define MAX_DEPTH 32
#define MAX_STEPS 32

enum node_kind { NODE_OR, NODE_AND, NODE_TEST };
enum test_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_NULL, OP_TRUE, OP_FALSE, OP_ABSENT };

struct step {
    char *name; /* NULL: an array index */
    size_t index;
};

struct node {
    enum node_kind kind;
    struct node *a, *b; /* OR, AND */
    /* TEST */
    struct step steps[MAX_STEPS];
    int nsteps;
    enum test_op op;
    char *text;    /* the value as written (strings: unquoted) */
    int is_number; /* the value is a number (bare, as JSON writes one) */
    double number;
};

struct json_pattern {
    struct node *root;
};

struct parser {
    const char *s;
    char *err;
    size_t errlen;
    int depth;
};

static void node_free(struct node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    for (int i = 0; i < n->nsteps; i++)
        free(n->steps[i].name);
    free(n->text);
    free(n);
}

void json_pattern_free(struct json_pattern *p)
{
    if (!p)
        return;
    node_free(p->root);
    free(p);
}

static struct node *fail(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct node *fail(struct parser *ps, const char *fmt, ...)
{
    if (!ps->err[0]) {
        int n = snprintf(ps->err, ps->errlen, "Invalid filter pattern: ");
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < ps->errlen)
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static void skip_space(struct parser *ps)
{
    while (*ps->s == ' ' || *ps->s == '\t')
        ps->s++;
}

static int take(struct parser *ps, const char *tok)
{
    skip_space(ps);
    size_t n = strlen(tok);
    if (strncmp(ps->s, tok, n) != 0)
        return 0;
    ps->s += n;
    return 1;
}

/* A keyword (IS, NOT, NULL, ...): a whole word, any case. */
static int take_word(struct parser *ps, const char *word)
{
    skip_space(ps);
    size_t n = strlen(word);
    if (strncasecmp(ps->s, word, n) != 0 || isalnum((unsigned char)ps->s[n]) || ps->s[n] == '_')
        return 0;
    ps->s += n;
    return 1;
}

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '@' || c == ':';
}

static int parse_selector(struct parser *ps, struct node *n)
{
    skip_space(ps);
    if (*ps->s != '$')
        return fail(ps, "expected a selector such as $.level at '%.20s'.", ps->s), -1;
    ps->s++;
    for (;;) {
        if (n->nsteps == MAX_STEPS)
            return fail(ps, "selector too deep."), -1;
        struct step *st = &n->steps[n->nsteps];
        if (*ps->s == '.') {
            const char *start = ++ps->s;
            while (name_char(*ps->s))
                ps->s++;
            if (ps->s == start)
                return fail(ps, "expected a field name after '.'."), -1;
            if (!(st->name = strndup(start, (size_t)(ps->s - start))))
                return -1;
        } else if (*ps->s == '[') {
            char *end;
            ps->s++;
            long v = strtol(ps->s, &end, 10);
            if (end == ps->s || *end != ']' || v < 0)
                return fail(ps, "expected an array index such as [0]."), -1;
            st->index = (size_t)v;
            ps->s = end + 1;
        } else {
            break;
        }
        n->nsteps++;
    }
    if (n->nsteps == 0)
        return fail(ps, "a selector names a field: $.name."), -1;
    return 0;
}

static int parse_value(struct parser *ps, struct node *n)
{
    skip_space(ps);
    const char *start = ps->s;
    if (*ps->s == '"') {
        struct buf v = BUF_INIT;
        for (ps->s++; *ps->s && *ps->s != '"'; ps->s++) {
            if (*ps->s == '\\' && (ps->s[1] == '"' || ps->s[1] == '\\'))
                ps->s++;
            buf_putc(&v, *ps->s);
        }
        if (*ps->s != '"') {
            buf_release(&v);
            return fail(ps, "unterminated quoted value."), -1;
        }
        ps->s++;
        n->text = v.data ? v.data : strdup("");
        return n->text ? 0 : -1;
    }
    while (*ps->s && !strchr(" \t(){}&|=!<>\"", *ps->s))
        ps->s++;
    if (ps->s == start)
        return fail(ps, "expected a value at '%.20s'.", start), -1;
    if (!(n->text = strndup(start, (size_t)(ps->s - start))))
        return -1;
    char *end;
    n->number = strtod(n->text, &end);
    n->is_number = *end == '\0';
    return 0;
}

static struct node *parse_or(struct parser *ps);

static struct node *parse_test(struct parser *ps)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->kind = NODE_TEST;
    if (parse_selector(ps, n) < 0)
        goto bad;
    static const struct {
        const char *tok;
        enum test_op op;
    } ops[] = {{"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
               {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (take(ps, ops[i].tok)) {
            n->op = ops[i].op;
            if (parse_value(ps, n) < 0)
                goto bad;
            if (n->op != OP_EQ && n->op != OP_NE && !n->is_number) {
                fail(ps, "'%s' compares numbers; '%s' is not one.", ops[i].tok, n->text);
                goto bad;
            }
            return n;
        }
    }
    if (take_word(ps, "IS")) {
        if (take_word(ps, "NULL"))
            n->op = OP_NULL;
        else if (take_word(ps, "TRUE"))
            n->op = OP_TRUE;
        else if (take_word(ps, "FALSE"))
            n->op = OP_FALSE;
        else {
            fail(ps, "IS takes NULL, TRUE or FALSE.");
            goto bad;
        }
        return n;
    }
    if (take_word(ps, "NOT") && take_word(ps, "EXISTS")) {
        n->op = OP_ABSENT;
        return n;
    }
    fail(ps, "expected =, !=, <, <=, >, >=, IS or NOT EXISTS after the selector.");
bad:
    node_free(n);
    return NULL;
}

static struct node *parse_unary(struct parser *ps)
{
    if (take(ps, "(")) {
        if (++ps->depth > MAX_DEPTH)
            return fail(ps, "too many nested parentheses.");
        struct node *n = parse_or(ps);
        ps->depth--;
        if (n && !take(ps, ")")) {
            node_free(n);
            return fail(ps, "missing ')'.");
        }
        return n;
    }
    return parse_test(ps);
}

static struct node *join(enum node_kind kind, struct node *a, struct node *b)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n) {
        node_free(a);
        node_free(b);
        return NULL;
    }
    n->kind = kind;
    n->a = a;
    n->b = b;
    return n;
}

static struct node *parse_and(struct parser *ps)
{
    struct node *left = parse_unary(ps);
    while (left && take(ps, "&&")) {
        struct node *right = parse_unary(ps);
        if (!right) {
            node_free(left);
            return NULL;
        }
        left = join(NODE_AND, left, right);
    }
    return left;
}

static struct node *parse_or(struct parser *ps)
{
    struct node *left = parse_and(ps);
    while (left && take(ps, "||")) {
        struct node *right = parse_and(ps);
        if (!right) {
            node_free(left);
            return NULL;
        }
        left = join(NODE_OR, left, right);
    }
    return left;
}

int json_pattern_compile(const char *src, struct json_pattern **out, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    struct parser ps = {.s = src, .err = err, .errlen = errlen};
    if (!take(&ps, "{")) {
        fail(&ps, "a JSON filter pattern starts with '{'.");
        return -EINVAL;
    }
    struct node *root = parse_or(&ps);
    if (root && !take(&ps, "}")) {
        fail(&ps, "expected '}' at '%.20s'.", ps.s);
        node_free(root);
        root = NULL;
    }
    skip_space(&ps);
    if (root && *ps.s) {
        fail(&ps, "unexpected '%.20s' after the closing '}'.", ps.s);
        node_free(root);
        root = NULL;
    }
    if (!root) {
        if (err[0])
            return -EINVAL;
        snprintf(err, errlen, "Out of memory compiling the filter pattern.");
        return -ENOMEM;
    }
    struct json_pattern *p = calloc(1, sizeof(*p));
    if (!p) {
        node_free(root);
        snprintf(err, errlen, "Out of memory compiling the filter pattern.");
        return -ENOMEM;
    }
    p->root = root;
    *out = p;
    return 0;
}

/* '*' matches any run of characters; everything else itself. */
static int glob(const char *pat, const char *s)
{
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            mark = s;
        } else if (*pat == *s) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++mark;
        } else {
            return 0;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

static json_t *select_field(json_t *doc, const struct node *n)
{
    json_t *v = doc;
    for (int i = 0; v && i < n->nsteps; i++)
        v = n->steps[i].name ? json_object_get(v, n->steps[i].name)
                             : json_array_get(v, n->steps[i].index);
    return v;
}

static int equals(const struct node *n, json_t *v)
{
    if (json_is_number(v) && n->is_number)
        return json_number_value(v) == n->number;
    if (json_is_string(v))
        return glob(n->text, json_string_value(v));
    if (json_is_number(v)) { /* a wildcard or quoted number against a numeric field */
        char text[64];
        if (json_is_integer(v))
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
        else
            snprintf(text, sizeof(text), "%.17g", json_real_value(v));
        return glob(n->text, text);
    }
    return 0;
}

static int eval(const struct node *n, json_t *doc)
{
    switch (n->kind) {
    case NODE_OR:
        return eval(n->a, doc) || eval(n->b, doc);
    case NODE_AND:
        return eval(n->a, doc) && eval(n->b, doc);
    case NODE_TEST:
        break;
    }
    json_t *v = select_field(doc, n);
    if (n->op == OP_ABSENT)
        return v == NULL;
    if (!v)
        return 0;
    double x = json_number_value(v);
    switch (n->op) {
    case OP_EQ:
        return equals(n, v);
    case OP_NE:
        return !equals(n, v);
    case OP_LT:
        return json_is_number(v) && x < n->number;
    case OP_LE:
        return json_is_number(v) && x <= n->number;
    case OP_GT:
        return json_is_number(v) && x > n->number;
    case OP_GE:
        return json_is_number(v) && x >= n->number;
    case OP_NULL:
        return json_is_null(v);
    case OP_TRUE:
        return json_is_true(v);
    case OP_FALSE:
        return json_is_false(v);
    case OP_ABSENT:
        break;
    }
    return 0;
}

int json_pattern_match(const struct json_pattern *p, const char *msg, size_t len)
{
    while (len > 0 && (*msg == ' ' || *msg == '\t'))
        msg++, len--;
    if (len == 0 || *msg != '{')
        return 0;
    json_t *doc = json_loadb(msg, len, JSON_DECODE_ANY, NULL);
    int hit = json_is_object(doc) && eval(p->root, doc);
    json_decref(doc);
    return hit;
}
