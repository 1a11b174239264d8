/*
 * pattern: CloudWatch Logs text filter patterns, the subset FilterLogEvents
 * and `aws logs tail --filter-pattern` accept here: terms separated by
 * spaces, each a bare word or a "quoted phrase" (\" and \\ escape inside),
 * optionally prefixed by ? (any of the ?-terms must appear) or - (the term
 * must not appear); the others must all appear. Matching is case-sensitive
 * substring search, as AWS does for text terms. JSON patterns ({ $.x = ... })
 * are json_pattern.c's. Space-delimited ([a, b]) and regex (%...%) patterns
 * are refused with a message saying so, never silently treated as text.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/logs/logs_internal.h"

enum term_kind { TERM_ALL, TERM_ANY, TERM_NONE };

struct term {
    enum term_kind kind;
    char *text;
    size_t len;
};

struct logs_pattern {
    struct term *terms;
    size_t n;
    int has_any;
    struct json_pattern *json; /* a JSON pattern instead of terms */
};

void logs_pattern_free(struct logs_pattern *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->terms[i].text);
    free(p->terms);
    json_pattern_free(p->json);
    free(p);
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Characters that belong to the other pattern syntaxes: outside quotes they
 * mean the pattern is not a plain text one. */
static int special(char ch)
{
    return strchr("{}[]()=<>!&|%*$,\"", ch) != NULL;
}

static int add_term(struct logs_pattern *p, enum term_kind kind, const char *text, size_t len)
{
    struct term *nt = realloc(p->terms, (p->n + 1) * sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    p->terms = nt;
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    p->terms[p->n++] = (struct term){kind, copy, len};
    if (kind == TERM_ANY)
        p->has_any = 1;
    return 0;
}

int logs_pattern_compile(const char *src, struct logs_pattern **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *s = src;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '{') {
        struct json_pattern *json;
        int rc = json_pattern_compile(s, &json, err, errlen);
        if (rc < 0)
            return rc;
        struct logs_pattern *p = calloc(1, sizeof(*p));
        if (!p) {
            json_pattern_free(json);
            bad(err, errlen, "Out of memory compiling the filter pattern.");
            return -ENOMEM;
        }
        p->json = json;
        *out = p;
        return 0;
    }
    if (*s == '[')
        return bad(err, errlen,
                   "Invalid filter pattern: space-delimited filter patterns such as [w1, w2] are "
                   "not supported by Ignis yet. Use terms, \"quoted phrases\", ?term or -term.");
    if (*s == '%')
        return bad(err, errlen,
                   "Invalid filter pattern: regular expression filter patterns (%%...%%) are not "
                   "supported by Ignis yet. Use terms, \"quoted phrases\", ?term or -term.");
    struct logs_pattern *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    char *phrase = malloc(strlen(src) + 1);
    if (!phrase) {
        free(p);
        return -ENOMEM;
    }
    int rc = 0;
    while (*s && rc == 0) {
        if (*s == ' ' || *s == '\t') {
            s++;
            continue;
        }
        enum term_kind kind = TERM_ALL;
        if (*s == '?' || *s == '-') {
            kind = *s == '?' ? TERM_ANY : TERM_NONE;
            s++;
        }
        if (*s == '"') {
            size_t len = 0;
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                phrase[len++] = *s;
            }
            if (*s != '"') {
                rc = bad(err, errlen, "Invalid filter pattern: unterminated quoted term.");
                break;
            }
            s++;
            if (*s && *s != ' ' && *s != '\t') {
                rc = bad(err, errlen,
                         "Invalid filter pattern: expected a space after the quoted term \"%.*s\".",
                         (int)len, phrase);
                break;
            }
            if (len == 0) {
                rc = bad(err, errlen, "Invalid filter pattern: empty quoted term.");
                break;
            }
            rc = add_term(p, kind, phrase, len);
            continue;
        }
        const char *start = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        size_t len = (size_t)(s - start);
        if (len == 0) {
            rc = bad(err, errlen, "Invalid filter pattern: '%c' must be followed by a term.",
                     kind == TERM_ANY ? '?' : '-');
            break;
        }
        for (size_t i = 0; i < len; i++) {
            if (special(start[i])) {
                rc = bad(err, errlen,
                         "Invalid filter pattern: invalid character '%c' in term '%.*s'. Put "
                         "terms with characters other than letters, digits and punctuation such "
                         "as _ . : / - in double quotes; metric and JSON filter syntax is not "
                         "supported by Ignis yet.",
                         start[i], (int)len, start);
                break;
            }
        }
        if (rc == 0)
            rc = add_term(p, kind, start, len);
    }
    free(phrase);
    if (rc < 0) {
        logs_pattern_free(p);
        if (rc == -ENOMEM)
            bad(err, errlen, "Out of memory compiling the filter pattern.");
        return rc;
    }
    *out = p;
    return 0;
}

int logs_pattern_match(const struct logs_pattern *p, const char *msg, size_t len)
{
    if (!p)
        return 1;
    if (p->json)
        return json_pattern_match(p->json, msg, len);
    int any = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct term *t = &p->terms[i];
        int found = memmem(msg, len, t->text, t->len) != NULL;
        switch (t->kind) {
        case TERM_ALL:
            if (!found)
                return 0;
            break;
        case TERM_NONE:
            if (found)
                return 0;
            break;
        case TERM_ANY:
            any |= found;
            break;
        }
    }
    return !p->has_any || any;
}
