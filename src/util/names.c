/* names.c owns every translation between IMAP names/headers and the names
 * imapfs shows: mUTF-7 folders, RFC 2047 subjects and message file names. */
#include "names.h"
#include "chars.h"

#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIVISION_SLASH "\xE2\x88\x95" /* U+2215, stands in for '/' */
#define CHARSET_MAX 63

/* ---- growable byte buffer ------------------------------------------- */

/* Appends never report errors: a failed allocation is remembered and the
 * caller checks once, at buf_take(), which keeps the callers linear. */
struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

static bool buf_reserve(struct buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (n > 0 && buf_reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

static void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

/* Hands over the NUL-terminated contents, or NULL if any append failed. */
static char *buf_take(struct buf *b)
{
    buf_addc(b, '\0');
    if (b->failed) {
        buf_free(b);
        return NULL;
    }
    char *s = b->data;
    *b = (struct buf){0};
    return s;
}

/* Common tail of the char ** returning functions. */
static int buf_finish(struct buf *b, int rc, char **out)
{
    if (rc != 0) {
        buf_free(b);
        return rc;
    }
    *out = buf_take(b);
    return *out ? 0 : -ENOMEM;
}

/* ---- small character helpers ---------------------------------------- */

/* Locale-independent on purpose: "INBOX" and header names are ASCII, and
 * tolower() in e.g. a Turkish locale would not match 'I' with 'i'. */
static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_caseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Length of the span before the first sep (or the end); sep '\0' gives
 * strlen, which is what a flat namespace needs. */
static size_t span_until(const char *s, char sep)
{
    size_t n = 0;
    while (s[n] != '\0' && s[n] != sep)
        n++;
    return n;
}

/* ---- UTF-8 ---------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0.
 * Overlong forms, surrogates and values above U+10FFFF are rejected. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len;
    uint32_t c;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        c = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        c = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min_cp[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void buf_add_cp(struct buf *b, uint32_t cp)
{
    char enc[4];
    buf_add(b, enc, utf8_encode(cp, enc));
}

/* Unicode category Cf (as of Unicode 15): characters not shown themselves
 * that change how the text around them reads -- bidi embeddings, overrides,
 * isolates and marks, zero-width spaces and joiners, the soft hyphen, the
 * BOM, tags.  In a name they make one string look like another. */
static bool is_format_cp(uint32_t cp)
{
    static const uint32_t cf[][2] = {
        {0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C},
        {0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x0890, 0x0891},
        {0x08E2, 0x08E2}, {0x180E, 0x180E}, {0x200B, 0x200F},
        {0x202A, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F},
        {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD},
        {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3},
        {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F},
    };
    for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++)
        if (cp >= cf[i][0] && cp <= cf[i][1])
            return true;
    return false;
}

/* What a folder name may not hold: C0, DEL and C1 controls, line and
 * paragraph separators, and format characters but for the zero-width
 * non-joiner and joiner, which Persian and Indic words need (and which
 * cannot reorder text). */
static bool bad_folder_cp(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xA0) || cp == 0x2028 || cp == 0x2029)
        return true;
    return is_format_cp(cp) && cp != 0x200C && cp != 0x200D;
}

/* True for invalid UTF-8 too. */
static bool bad_folder_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        uint32_t cp;
        size_t len = utf8_seq(p, n, &cp);
        if (len == 0 || bad_folder_cp(cp))
            return true;
        p += len;
        n -= len;
    }
    return false;
}

/* windows-1252 0x80..0x9F; the five holes keep their ISO-8859-1 value. */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* Copies text that should be UTF-8 but may not be: stray 8-bit bytes are
 * almost always windows-1252/latin-1 in mail headers, and NUL would cut
 * the C string short, so both are converted rather than refused. */
static void emit_text(struct buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        uint32_t cp;
        size_t len = utf8_seq(p, n, &cp);
        if (len == 0) { /* only a byte >= 0x80 can fail to decode */
            cp = *p < 0xA0 ? cp1252_c1[*p - 0x80] : *p;
            len = 1;
        } else if (cp == 0) {
            cp = 0xFFFD;
        }
        buf_add_cp(out, cp);
        p += len;
        n -= len;
    }
}

/* ---- iconv ---------------------------------------------------------- */

/* One iconv() call repeated until it stops asking for room. Returns
 * -EINVAL for input ending inside a character (callers may want to join
 * more input), -EILSEQ for anything else that is wrong. */
static int iconv_step(iconv_t cd, char **src, size_t *left, struct buf *out)
{
    size_t want = 64 + (left ? *left * 2 : 0);
    for (;;) {
        if (!buf_reserve(out, want))
            return -ENOMEM;
        char *dst = out->data + out->len;
        size_t room = out->cap - out->len;
        size_t r = iconv(cd, src, left, &dst, &room);
        out->len = (size_t)(dst - out->data);
        if (r != (size_t)-1)
            return 0;
        if (errno != E2BIG)
            return errno == EINVAL ? -EINVAL : -EILSEQ;
        want = (out->cap - out->len) * 2 + 64;
    }
}

/* Converts in[0..inlen) and appends to out. The final flush call is what
 * makes stateful converters (UTF-7, ISO-2022-JP) emit their last bytes. */
static int convert(const char *to, const char *from, char *in, size_t inlen,
                   struct buf *out)
{
    iconv_t cd = iconv_open(to, from);
    if (cd == (iconv_t)-1)
        return errno == ENOMEM ? -ENOMEM : -ENOTSUP;
    char *src = in;
    size_t left = inlen;
    int rc = inlen > 0 ? iconv_step(cd, &src, &left, out) : 0;
    if (rc == 0)
        rc = iconv_step(cd, NULL, NULL, out);
    iconv_close(cd);
    return rc;
}

/* ---- modified UTF-7 ------------------------------------------------- */

static int mutf7_convert(const char *to, const char *from, const char *in,
                         struct buf *out)
{
    /* iconv wants a char * source; a copy spares us casting const away */
    char *copy = strdup(in);
    if (!copy)
        return -ENOMEM;
    int rc = convert(to, from, copy, strlen(copy), out);
    free(copy);
    return rc == -EILSEQ ? -EINVAL : rc;
}

int names_utf8_to_mutf7(const char *in, char **out)
{
    struct buf b = {0};
    if (!in || !out)
        return -EINVAL;
    *out = NULL;
    return buf_finish(&b, mutf7_convert("UTF-7-IMAP", "UTF-8", in, &b), out);
}

/* Canonical means encoding the decoded text gives back the input. */
static int check_canonical(const char *in, const char *utf8)
{
    char *again;
    int rc = names_utf8_to_mutf7(utf8, &again);
    if (rc == 0 && strcmp(again, in) != 0)
        rc = -EINVAL;
    free(again);
    return rc;
}

int names_mutf7_to_utf8(const char *in, char **out)
{
    struct buf b = {0};
    char *utf8 = NULL;
    if (!in || !out)
        return -EINVAL;
    *out = NULL;
    int rc = mutf7_convert("UTF-8", "UTF-7-IMAP", in, &b);
    if (rc == 0 && b.len > 0 && memchr(b.data, '\0', b.len))
        rc = -EINVAL;
    rc = buf_finish(&b, rc, &utf8);
    if (rc == 0)
        rc = check_canonical(in, utf8);
    if (rc == 0)
        *out = utf8;
    else
        free(utf8);
    return rc;
}

/* ---- folder names <-> paths ----------------------------------------- */

/* '&' is refused because "&-" decodes to it, so it could not be told
 * apart from a delimiter after decoding. */
static bool delim_ok(char delim)
{
    unsigned char c = (unsigned char)delim;
    return c == '\0' || (c >= 0x20 && c < 0x7f && c != '&');
}

static int check_component(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)))
        return -EINVAL;
    return 0;
}

static bool is_inbox(const char *s, size_t n)
{
    return n == 5 && ascii_caseeq(s, "inbox", 5);
}

static int add_server_component(struct buf *b, const char *s, size_t n,
                                char delim, bool first)
{
    size_t start = b->len;
    if (first && is_inbox(s, n)) {
        buf_add(b, "INBOX", 5);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (delim == '/') {
            buf_addc(b, s[i]);
        } else if (s[i] == '/') {
            buf_add(b, DIVISION_SLASH, 3);
        } else if (n - i >= 3 && !memcmp(s + i, DIVISION_SLASH, 3)) {
            return -EINVAL;
        } else {
            buf_addc(b, s[i]);
        }
    }
    return b->len - start > NAMES_MAX ? -ENAMETOOLONG : 0;
}

static int build_path(const char *name, char delim, struct buf *b)
{
    if (bad_folder_text(name))
        return -EINVAL;
    /* p++ steps over the delimiter that ended the previous component */
    for (const char *p = name;; p++) {
        size_t n = span_until(p, delim);
        int rc = check_component(p, n);
        if (rc == 0)
            rc = add_server_component(b, p, n, delim, p == name);
        if (rc != 0)
            return rc;
        p += n;
        if (*p == '\0')
            return 0;
        buf_addc(b, '/');
    }
}

int names_folder_to_path(const char *mutf7, char delim, char **path)
{
    if (!mutf7 || !path)
        return -EINVAL;
    *path = NULL;
    if (!delim_ok(delim))
        return -EINVAL;
    char *utf8;
    int rc = names_mutf7_to_utf8(mutf7, &utf8);
    if (rc != 0)
        return rc;
    struct buf b = {0};
    rc = build_path(utf8, delim, &b);
    free(utf8);
    return buf_finish(&b, rc, path);
}

static void add_local_component(struct buf *b, const char *s, size_t n,
                                char delim, bool first)
{
    if (first && is_inbox(s, n)) {
        buf_add(b, "INBOX", 5);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (delim != '/' && n - i >= 3 && !memcmp(s + i, DIVISION_SLASH, 3)) {
            buf_addc(b, '/');
            i += 2;
        } else {
            buf_addc(b, s[i]);
        }
    }
}

static int build_folder(const char *path, char delim, struct buf *b)
{
    for (const char *p = path;; p++) {
        size_t n = span_until(p, '/');
        int rc = check_component(p, n);
        if (rc != 0)
            return rc;
        if (delim != '\0' && delim != '/' && memchr(p, delim, n))
            return -EINVAL;
        add_local_component(b, p, n, delim, p == path);
        p += n;
        if (*p == '\0')
            return 0;
        if (delim == '\0')
            return -EINVAL;
        buf_addc(b, delim);
    }
}

int names_path_to_folder(const char *path, char delim, char **mutf7)
{
    if (!path || !mutf7)
        return -EINVAL;
    *mutf7 = NULL;
    if (!delim_ok(delim) || bad_folder_text(path))
        return -EINVAL;
    struct buf b = {0};
    int rc = build_folder(path, delim, &b);
    if (rc != 0) {
        buf_free(&b);
        return rc;
    }
    char *name = buf_take(&b);
    if (!name)
        return -ENOMEM;
    rc = names_utf8_to_mutf7(name, mutf7);
    free(name);
    return rc;
}

/* ---- RFC 2047 ------------------------------------------------------- */

struct ew {
    char charset[CHARSET_MAX + 1];
    char enc; /* 'b' or 'q' */
    const char *text;
    size_t text_len;
    size_t raw_len; /* from "=?" to "?=" inclusive */
};

/* Only names iconv could know; keeps '/' and other oddities away from
 * iconv_open(). */
static bool is_charset_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != '\0' && strchr("-_.:+", c));
}

/* Parses "charset[*lang]?" at s; returns bytes used including the '?'. */
static size_t parse_charset(const char *s, size_t n, struct ew *w)
{
    size_t i = 0;
    while (i < n && i < CHARSET_MAX && is_charset_char(s[i]))
        i++;
    if (i == 0)
        return 0;
    memcpy(w->charset, s, i);
    w->charset[i] = '\0';
    if (i < n && s[i] == '*') /* RFC 2231 language, irrelevant here */
        while (i < n && s[i] != '?' && !is_wsp(s[i]))
            i++;
    return i < n && s[i] == '?' ? i + 1 : 0;
}

/* Recognises "=?charset?X?text?=" at s. Spaces inside text are allowed
 * because some mailers leave them unencoded in Q words. */
static bool parse_ew(const char *s, size_t n, struct ew *w)
{
    if (n < 8 || s[0] != '=' || s[1] != '?')
        return false;
    size_t i = 2 + parse_charset(s + 2, n - 2, w);
    if (i == 2 || i + 2 > n || s[i + 1] != '?')
        return false;
    w->enc = ascii_lower(s[i]);
    if (w->enc != 'b' && w->enc != 'q')
        return false;
    w->text = s + i + 2;
    const char *q = memchr(w->text, '?', n - i - 2);
    if (!q || q + 1 >= s + n || q[1] != '=')
        return false;
    w->text_len = (size_t)(q - w->text);
    w->raw_len = (size_t)(q + 2 - s);
    return true;
}

static bool decode_q(const char *s, size_t n, struct buf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            buf_addc(b, ' ');
        } else if (s[i] != '=') {
            buf_addc(b, s[i]);
        } else if (i + 2 < n && chars_hex_value(s[i + 1]) >= 0 &&
                   chars_hex_value(s[i + 2]) >= 0) {
            buf_addc(b, (char)(chars_hex_value(s[i + 1]) * 16 + chars_hex_value(s[i + 2])));
            i += 2;
        } else {
            return false;
        }
    }
    return true;
}

/* Padding is optional and spaces are skipped: both are common breakage. */
static bool decode_b(const char *s, size_t n, struct buf *b)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t i = 0;
    for (; i < n && s[i] != '='; i++) {
        if (is_wsp(s[i]))
            continue;
        int v = chars_base64_value(s[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf_addc(b, (char)((acc >> bits) & 0xFF));
        }
    }
    while (i < n && s[i] == '=')
        i++;
    return i == n && bits < 6;
}

static bool decode_payload(const struct ew *w, struct buf *b)
{
    b->len = 0;
    if (w->enc == 'q')
        return decode_q(w->text, w->text_len, b);
    return decode_b(w->text, w->text_len, b);
}

/* Adjacent encoded words in one charset form a group, converted in one go
 * so a character split across words (a common mailer bug) survives. */
struct decoder {
    struct buf *out;
    struct buf word;               /* payload of the word being looked at */
    struct buf group;              /* payload of the current group */
    char charset[CHARSET_MAX + 1]; /* the group's; "" when there is none */
    const char *raw;               /* the group's raw text */
    size_t raw_len;
    const char *lead;              /* whitespace before the group */
    size_t lead_len;
    const char *ws;                /* whitespace seen after the group */
    size_t ws_len;
    bool after_word;               /* last thing emitted: a decoded word */
};

static int group_to_utf8(struct decoder *d, struct buf *utf8)
{
    int rc = convert("UTF-8", d->charset, d->group.data, d->group.len, utf8);
    if (rc == -ENOMEM || d->group.failed)
        d->out->failed = true;
    return rc;
}

static void flush_group(struct decoder *d)
{
    if (d->charset[0] == '\0')
        return;
    struct buf utf8 = {0};
    int rc = group_to_utf8(d, &utf8);
    /* RFC 2047 6.2: whitespace between two decoded words is not shown */
    if (rc != 0 || !d->after_word)
        emit_text(d->out, d->lead, d->lead_len);
    if (rc == 0)
        emit_text(d->out, utf8.data, utf8.len);
    else
        emit_text(d->out, d->raw, d->raw_len);
    d->after_word = rc == 0;
    buf_free(&utf8);
    d->charset[0] = '\0';
    d->group.len = 0;
}

static bool group_wants_more(struct decoder *d, const struct ew *w)
{
    size_t n = strlen(d->charset);
    if (n == 0 || n != strlen(w->charset) || !ascii_caseeq(d->charset, w->charset, n))
        return false;
    struct buf utf8 = {0};
    int rc = group_to_utf8(d, &utf8);
    buf_free(&utf8);
    return rc == -EINVAL;
}

static void on_word(struct decoder *d, const char *at, const struct ew *w)
{
    if (group_wants_more(d, w)) {
        buf_add(&d->group, d->word.data, d->word.len);
        d->raw_len = (size_t)(at + w->raw_len - d->raw);
        d->ws_len = 0;
        return;
    }
    flush_group(d);
    memcpy(d->charset, w->charset, strlen(w->charset) + 1);
    buf_add(&d->group, d->word.data, d->word.len);
    d->raw = at;
    d->raw_len = w->raw_len;
    d->lead = d->ws;
    d->lead_len = d->ws_len;
    d->ws_len = 0;
}

static void on_wsp(struct decoder *d, const char *at, size_t n)
{
    if (d->charset[0] == '\0') {
        emit_text(d->out, at, n);
        return;
    }
    d->ws = at;
    d->ws_len = n;
}

static void on_end(struct decoder *d)
{
    flush_group(d);
    emit_text(d->out, d->ws, d->ws_len);
    d->ws_len = 0;
}

static void on_text(struct decoder *d, const char *at, size_t n)
{
    on_end(d);
    emit_text(d->out, at, n);
    d->after_word = false;
}

static size_t wsp_run(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_wsp(s[i]))
        i++;
    return i;
}

/* Plain text up to the next place an encoded word or whitespace could
 * start; taken as a whole so multi-byte UTF-8 characters stay together. */
static size_t text_run(const char *s, size_t n)
{
    size_t i = 1;
    while (i < n && s[i] != '=' && !is_wsp(s[i]))
        i++;
    return i;
}

static void decode_words(const char *s, size_t n, struct buf *out)
{
    struct decoder d = {.out = out};
    size_t i = 0;
    while (i < n) {
        struct ew w;
        size_t step;
        if (parse_ew(s + i, n - i, &w)) {
            step = w.raw_len;
            if (decode_payload(&w, &d.word))
                on_word(&d, s + i, &w);
            else
                on_text(&d, s + i, step);
        } else if ((step = wsp_run(s + i, n - i)) > 0) {
            on_wsp(&d, s + i, step);
        } else {
            step = text_run(s + i, n - i);
            on_text(&d, s + i, step);
        }
        i += step;
    }
    on_end(&d);
    if (d.word.failed)
        out->failed = true;
    buf_free(&d.word);
    buf_free(&d.group);
}

/* A line break followed by SP/TAB is folding and disappears; any other
 * is malformed and becomes a space rather than gluing words together. */
static void unfold(const char *s, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n') {
            buf_addc(out, s[i]);
            continue;
        }
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        if (i + 1 < n && !is_wsp(s[i + 1]))
            buf_addc(out, ' ');
    }
}

char *names_decode_header(const char *raw, size_t len)
{
    struct buf text = {0}, out = {0};
    if (raw)
        unfold(raw, len, &text);
    decode_words(text.data, text.len, &out);
    if (text.failed)
        out.failed = true;
    buf_free(&text);
    return buf_take(&out);
}

/* ---- Subject field -------------------------------------------------- */

/* Returns the value start if line [s, end) is the field `name`, else NULL.
 * Whitespace before the colon is obsolete syntax (RFC 5322 4.5) but seen. */
static const char *field_value(const char *s, const char *end, const char *name)
{
    size_t n = strlen(name);

    if ((size_t)(end - s) < n + 1 || !ascii_caseeq(s, name, n))
        return NULL;
    s += n;
    while (s < end && is_wsp(*s))
        s++;
    return s < end && *s == ':' ? s + 1 : NULL;
}

static const char *line_end(const char *s, const char *end)
{
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    return nl ? nl : end;
}

static bool is_space_byte(char c)
{
    return is_wsp(c) || c == '\r' || c == '\n';
}

/* Finds field `name` in a header block; [*v, *e) is its value, folded
 * lines included, surrounding whitespace trimmed. */
static bool find_field(const char *block, size_t len, const char *name,
                       const char **v, const char **e)
{
    const char *end = block ? block + len : block;
    for (const char *p = block; p && p < end;) {
        const char *eol = line_end(p, end);
        if (eol == p || (eol == p + 1 && *p == '\r'))
            break; /* empty line: end of the header */
        *v = field_value(p, eol, name);
        if (*v) {
            /* continuation lines start with SP/TAB */
            while (end - eol > 1 && is_wsp(eol[1]))
                eol = line_end(eol + 1, end);
            while (*v < eol && is_space_byte(**v))
                (*v)++;
            while (eol > *v && is_space_byte(eol[-1]))
                eol--;
            *e = eol;
            return true;
        }
        p = eol < end ? eol + 1 : end;
    }
    return false;
}

char *names_subject_from_headers(const char *block, size_t len)
{
    const char *v, *e;

    if (!find_field(block, len, "subject", &v, &e))
        return strdup("");
    return names_decode_header(v, (size_t)(e - v));
}

char *names_header_field(const char *block, size_t len, const char *name)
{
    const char *v, *e;
    struct buf text = { 0 };

    if (!find_field(block, len, name, &v, &e) || v == e)
        return NULL;
    unfold(v, (size_t)(e - v), &text);
    return buf_take(&text);
}

/* ---- message file names --------------------------------------------- */

/* Proleptic Gregorian date of a day count since 1970-01-01, valid for the
 * whole int64 range (gmtime_r would fail beyond time_t or int years). It
 * counts from 0000-03-01 in 400-year eras so leap days fall at the end of
 * each year. */
static void civil_date(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    const int64_t era_days = 146097; /* days in 400 years */
    int64_t z = days + 719468;       /* days since 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - (era_days - 1)) / era_days;
    int64_t doe = z - era * era_days;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153; /* month, March = 0 */

    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int format_date(char *buf, size_t size, int64_t t)
{
    int64_t days = t / 86400 - (t % 86400 < 0);
    int64_t y;
    unsigned m, d;
    civil_date(days, &y, &m, &d);
    return snprintf(buf, size, "%04" PRId64 "-%02u-%02u ", y, m, d);
}

static bool is_space_cp(uint32_t cp)
{
    return cp <= 0x20 || (cp >= 0x7f && cp <= 0xA0) || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Writes the cleaned subject into dst, at most room bytes, and returns its
 * length. A space is only written together with the character after it, so
 * the result is trimmed at both ends even when cut short. */
static size_t clean_subject(char *dst, size_t room, const char *subject)
{
    const unsigned char *p = (const unsigned char *)subject;
    size_t left = strlen(subject), n = 0;
    bool gap = false;
    while (left > 0) {
        uint32_t cp;
        size_t len = utf8_seq(p, left, &cp);
        if (len == 0) {
            cp = 0xFFFD;
            len = 1;
        }
        p += len;
        left -= len;
        if (is_format_cp(cp))
            continue; /* invisible: dropped, not a word break */
        if (is_space_cp(cp)) {
            gap = n > 0;
            continue;
        }
        char enc[4];
        size_t elen = utf8_encode(cp == '/' ? 0x2215 : cp, enc);
        if (n + (gap ? 1 : 0) + elen > room)
            break;
        if (gap)
            dst[n++] = ' ';
        memcpy(dst + n, enc, elen);
        n += elen;
        gap = false;
    }
    return n;
}

int names_message_file(char *buf, size_t bufsize, enum names_mode mode,
                       int64_t internaldate, const char *subject_utf8,
                       uint32_t uid)
{
    static const char no_subject[] = "(no subject)";
    char suffix[32];

    if (!buf || bufsize < NAMES_MAX + 1)
        return -EINVAL;
    if (mode == NAMES_UID)
        return snprintf(buf, bufsize, "%" PRIu32 ".eml", uid);
    if (mode != NAMES_READABLE)
        return -EINVAL;

    size_t plen = (size_t)format_date(buf, bufsize, internaldate);
    size_t slen = (size_t)snprintf(suffix, sizeof suffix, ".%" PRIu32 ".eml", uid);
    size_t n = 0;
    if (subject_utf8)
        n = clean_subject(buf + plen, NAMES_MAX - plen - slen, subject_utf8);
    if (n == 0) {
        n = sizeof no_subject - 1;
        memcpy(buf + plen, no_subject, n);
    }
    memcpy(buf + plen + n, suffix, slen + 1);
    return (int)(plen + n + slen);
}

int names_parse_uid(const char *name, uint32_t *uid)
{
    if (!name || !uid)
        return -EINVAL;
    size_t len = strlen(name);
    if (len < 5 || strcmp(name + len - 4, ".eml") != 0)
        return -ENOENT;
    size_t end = len - 4, start = end;
    while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9')
        start--;
    if (start == end || end - start > 10 || name[start] == '0')
        return -ENOENT;
    if (start > 0 && name[start - 1] != '.')
        return -ENOENT;
    uint64_t v = 0;
    for (size_t i = start; i < end; i++)
        v = v * 10 + (uint64_t)(name[i] - '0');
    if (v > UINT32_MAX)
        return -ENOENT;
    *uid = (uint32_t)v;
    return 0;
}
