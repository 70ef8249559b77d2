/* polyoms._speedups: the compiled fast path of the market channel's hot path.
 *
 * Two functions, each an exact stand-in for a pure-Python one (which stays the reference and the
 * fallback; see polyoms/core/speedups.py for how they are bound and switched):
 *
 * decode_price_change_frame(data) -> PriceChange | None
 *     What `msgspec.json.Decoder(PriceChange).decode(data)` returns, for the frames
 *     `decode_market_frame` sends to that decoder (bytes starting with '{' whose first 256 bytes hold
 *     '"price_changes":'), or None for any frame this parser does not fully recognise. It only
 *     accepts a strict subset of what msgspec accepts: printable-ASCII strings without escapes,
 *     strict JSON numbers, true/false/null and shallow arrays/objects under unknown keys, no duplicate
 *     keys, the required fields present with string values (null for best_bid/best_ask). Anything
 *     else (escapes, non-ASCII, control characters, numbers where strings belong, truncation,
 *     trailing data, deep nesting...) gives None and the caller runs msgspec, so the result and the
 *     errors are msgspec's by construction. Short strings (prices, sizes, sides) and ids (asset ids,
 *     market) are shared through small caches; strings are immutable, so this is not observable.
 *
 * apply_price_change(bookset, event) -> None
 *     `BookSet._apply_price_change_python(bookset, event)`, with the usual entry (exact types, an
 *     ASCII size with at most 12 digits, a price in the grid's text table, BUY/SELL) applied here and
 *     every other entry handed to the Python function `_apply_level_change` (the same code as the
 *     Python loop's body) before anything of that entry is changed. A message that is not made of the
 *     exact types (a subclass, a list of changes) goes to the Python implementation whole.
 *
 * Objects are read through the member descriptors of __slots__ / msgspec fields (offsets looked up
 * when the types are bound, checked to be object slots of those very types), only for objects whose
 * type is exactly the bound one. No Python code runs between reading a book's slots and writing them
 * back; everything read before a call that may run Python code (a hook, a method) is re-read after.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* pyconfig.h defines _GNU_SOURCE: memmem, memrchr */
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SPEEDUPS_ABI 2

#ifndef Py_T_OBJECT_EX
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif
#ifndef Py_T_OBJECT
#define Py_T_OBJECT T_OBJECT
#endif

/* --- bound types and offsets ------------------------------------------------------------------- */

static PyTypeObject *PriceChange_T, *PriceLevelChange_T, *Book_T, *BookSet_T, *Grid_T;
static PyObject *py_apply_message; /* BookSet._apply_price_change_python(bookset, event) */
static PyObject *py_apply_entry;   /* _apply_level_change(book, change, check, ts, hook) */

static Py_ssize_t off_pc_market, off_pc_changes, off_pc_ts;
enum { F_ASSET, F_PRICE, F_SIZE, F_SIDE, F_HASH, F_BB, F_BA, NF };
static Py_ssize_t off_lc[NF];
static Py_ssize_t off_b_text_index, off_b_bids, off_b_asks, off_b_occ_bids, off_b_occ_asks, off_b_bb,
    off_b_ba, off_b_n, off_b_grid, off_b_ts, off_b_awaiting;
static Py_ssize_t off_bs_books, off_bs_hook, off_bs_verify;
static Py_ssize_t off_g_bb_text, off_g_ba_text;

/* Interned names for the generic (attribute-protocol) paths. */
static PyObject *s_crossed_updates, *s_unknown_asset_updates, *s_awaiting_snapshot, *s_grid,
    *s_best_bid_text, *s_best_ask_text, *s_bb, *s_ba, *s_check_best_exactly, *s_get, *s_asset_id;
static PyObject *empty_str, *minus_one, *one;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static inline void
set_slot(PyObject *obj, Py_ssize_t off, PyObject *value /* stolen */)
{
    PyObject **p = (PyObject **)((char *)obj + off);
    PyObject *old = *p;
    *p = value;
    Py_XDECREF(old);
}

/* The offset of an object slot (__slots__ entry or msgspec field) defined by `type` itself. */
static int
slot_offset(PyTypeObject *type, const char *name, int allow_t_object, Py_ssize_t *out)
{
    PyObject *d = PyDict_GetItemString(type->tp_dict, name); /* borrowed; no error set */
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    PyMemberDescrObject *md = (PyMemberDescrObject *)d;
    PyMemberDef *m = md->d_member;
    if (md->d_common.d_type != type ||
        !(m->type == Py_T_OBJECT_EX || (allow_t_object && m->type == Py_T_OBJECT)) || m->offset <= 0 ||
        (size_t)m->offset + sizeof(PyObject *) > (size_t)type->tp_basicsize) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot of that type", type->tp_name, name);
        return -1;
    }
    *out = m->offset;
    return 0;
}

static int
check_names(PyTypeObject *type, const char *attr, const char *const *expected, Py_ssize_t n)
{
    PyObject *names = PyObject_GetAttrString((PyObject *)type, attr);
    if (names == NULL)
        return -1;
    int ok = PyTuple_CheckExact(names) && PyTuple_GET_SIZE(names) == n;
    for (Py_ssize_t k = 0; ok && k < n; k++) {
        PyObject *s = PyTuple_GET_ITEM(names, k);
        ok = PyUnicode_Check(s) && PyUnicode_CompareWithASCIIString(s, expected[k]) == 0;
    }
    Py_DECREF(names);
    if (!ok)
        PyErr_Format(PyExc_TypeError, "%s.%s is not the layout this module was built for", type->tp_name, attr);
    return ok ? 0 : -1;
}

static PyObject *
bind_events(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const pc_fields[] = {"market", "changes", "timestamp_text"};
    static const char *const pc_wire[] = {"market", "price_changes", "timestamp"};
    static const char *const lc_fields[] = {"asset_id", "price_text", "size_text", "side_text",
                                            "hash", "best_bid_text", "best_ask_text"};
    static const char *const lc_wire[] = {"asset_id", "price", "size", "side", "hash", "best_bid", "best_ask"};
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "bind_events(PriceChange, PriceLevelChange)");
        return NULL;
    }
    PyTypeObject *pc = (PyTypeObject *)args[0], *lc = (PyTypeObject *)args[1];
    Py_ssize_t o_pc[3], o_lc[NF];
    if (check_names(pc, "__struct_fields__", pc_fields, 3) < 0 ||
        check_names(pc, "__struct_encode_fields__", pc_wire, 3) < 0 ||
        check_names(lc, "__struct_fields__", lc_fields, NF) < 0 ||
        check_names(lc, "__struct_encode_fields__", lc_wire, NF) < 0)
        return NULL;
    for (int k = 0; k < 3; k++)
        if (slot_offset(pc, pc_fields[k], 1, &o_pc[k]) < 0)
            return NULL;
    for (int k = 0; k < NF; k++)
        if (slot_offset(lc, lc_fields[k], 1, &o_lc[k]) < 0)
            return NULL;
    off_pc_market = o_pc[0];
    off_pc_changes = o_pc[1];
    off_pc_ts = o_pc[2];
    memcpy(off_lc, o_lc, sizeof off_lc);
    Py_INCREF(pc);
    Py_XSETREF(PriceChange_T, pc);
    Py_INCREF(lc);
    Py_XSETREF(PriceLevelChange_T, lc);
    Py_RETURN_NONE;
}

static PyObject *
bind_book(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2]) ||
        !PyCallable_Check(args[3]) || !PyCallable_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "bind_book(Book, BookSet, _Grid, apply_message_python, apply_entry_python)");
        return NULL;
    }
    PyTypeObject *b = (PyTypeObject *)args[0], *bs = (PyTypeObject *)args[1], *g = (PyTypeObject *)args[2];
    Py_ssize_t o[16];
    if (slot_offset(b, "_text_index", 0, &o[0]) < 0 || slot_offset(b, "_bids", 0, &o[1]) < 0 ||
        slot_offset(b, "_asks", 0, &o[2]) < 0 || slot_offset(b, "_occ_bids", 0, &o[3]) < 0 ||
        slot_offset(b, "_occ_asks", 0, &o[4]) < 0 || slot_offset(b, "_bb", 0, &o[5]) < 0 ||
        slot_offset(b, "_ba", 0, &o[6]) < 0 || slot_offset(b, "_n", 0, &o[7]) < 0 ||
        slot_offset(b, "_grid", 0, &o[8]) < 0 || slot_offset(b, "_ts", 0, &o[9]) < 0 ||
        slot_offset(bs, "_books", 0, &o[10]) < 0 || slot_offset(bs, "level_hash_hook", 0, &o[11]) < 0 ||
        slot_offset(bs, "verify_best_prices", 0, &o[12]) < 0 ||
        slot_offset(g, "best_bid_text", 0, &o[13]) < 0 || slot_offset(g, "best_ask_text", 0, &o[14]) < 0 ||
        slot_offset(b, "awaiting_snapshot", 0, &o[15]) < 0)
        return NULL;
    off_b_text_index = o[0];
    off_b_bids = o[1];
    off_b_asks = o[2];
    off_b_occ_bids = o[3];
    off_b_occ_asks = o[4];
    off_b_bb = o[5];
    off_b_ba = o[6];
    off_b_n = o[7];
    off_b_grid = o[8];
    off_b_ts = o[9];
    off_bs_books = o[10];
    off_bs_hook = o[11];
    off_bs_verify = o[12];
    off_g_bb_text = o[13];
    off_g_ba_text = o[14];
    off_b_awaiting = o[15];
    Py_INCREF(b);
    Py_XSETREF(Book_T, b);
    Py_INCREF(bs);
    Py_XSETREF(BookSet_T, bs);
    Py_INCREF(g);
    Py_XSETREF(Grid_T, g);
    Py_INCREF(args[3]);
    Py_XSETREF(py_apply_message, args[3]);
    Py_INCREF(args[4]);
    Py_XSETREF(py_apply_entry, args[4]);
    Py_RETURN_NONE;
}

/* --- string caches ------------------------------------------------------------------------------ */

#define SHORT_MAX 16
#define SHORT_SLOTS 1024
#define LONG_SLOTS 256
#define LONG_MAX_LEN 128
static PyObject *short_cache[SHORT_SLOTS];
static PyObject *long_cache[LONG_SLOTS];

static inline PyObject *
new_ascii(const char *s, Py_ssize_t n)
{
    PyObject *u = PyUnicode_New(n, 127);
    if (u != NULL && n)
        memcpy(PyUnicode_DATA(u), s, (size_t)n);
    return u;
}

static inline uint64_t
load64(const char *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}

static inline PyObject *
cached_ascii(PyObject **cache, size_t slot, const char *s, Py_ssize_t n)
{
    PyObject *u = cache[slot];
    if (u != NULL && PyUnicode_GET_LENGTH(u) == n && memcmp(PyUnicode_DATA(u), s, (size_t)n) == 0)
        return Py_NewRef(u);
    u = new_ascii(s, n);
    if (u == NULL)
        return NULL;
    Py_XSETREF(cache[slot], Py_NewRef(u));
    return u;
}

/* Prices, sizes, sides, best prices: short and repetitive. */
static PyObject *
short_str(const char *s, Py_ssize_t n)
{
    if (n > SHORT_MAX)
        return new_ascii(s, n);
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)n;
    for (Py_ssize_t k = 0; k < n; k++)
        h = (h ^ (unsigned char)s[k]) * 1099511628211ULL;
    return cached_ascii(short_cache, (size_t)(h ^ (h >> 29)) & (SHORT_SLOTS - 1), s, n);
}

/* Asset ids and condition ids: long and few. */
static PyObject *
id_str(const char *s, Py_ssize_t n)
{
    if (n < 16 || n > LONG_MAX_LEN)
        return short_str(s, n);
    uint64_t h = (load64(s) * 0x9E3779B97F4A7C15ULL) ^ load64(s + n - 8) ^ (load64(s + n / 2 - 4) << 1) ^ (uint64_t)n;
    h *= 0xff51afd7ed558ccdULL;
    return cached_ascii(long_cache, (size_t)(h >> 40) & (LONG_SLOTS - 1), s, n);
}

/* --- portable helpers ---------------------------------------------------------------------------- */

/* bytearray.rfind(1, ...) over [p, p + n) */
static inline const char *
last_one(const char *p, size_t n)
{
#if defined(__GLIBC__)
    return memrchr(p, 1, n);
#else
    while (n--)
        if (p[n] == 1)
            return p + n;
    return NULL;
#endif
}

static inline const char *
find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
#if defined(__GLIBC__) || defined(__APPLE__)
    return memmem(hay, n, needle, m);
#else
    for (size_t k = 0; m <= n && k <= n - m; k++)
        if (memcmp(hay + k, needle, m) == 0)
            return hay + k;
    return NULL;
#endif
}

/* --- the frame parser ---------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} Cur;

typedef struct {
    const char *s; /* NULL: absent; NULL_MARK: JSON null */
    Py_ssize_t n;
} Span;

static const char null_mark_[1] = {0};
#define NULL_MARK (null_mark_)

typedef struct {
    Span f[NF];
} EntrySpans;

static inline void
skip_ws(Cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* A string at c->p made of bytes 0x20..0x7f other than '"' and '\\' (no escapes, ASCII only). */
static inline int
scan_str(Cur *c, const char **s, Py_ssize_t *n)
{
    const char *p = c->p, *end = c->end;
    if (p >= end || *p != '"')
        return -1;
    const char *start = ++p;
#if defined(__SSE2__)
    /* A signed byte below 0x20 is a control character or (negative) a non-ASCII byte. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmplt_epi8(x, space));
        int bits = _mm_movemask_epi8(m);
        if (bits) {
            p += __builtin_ctz((unsigned)bits);
            goto special;
        }
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
    while (end - p >= 8) {
        uint64_t w = load64(p);
        uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
        uint64_t m = (w & HIGHS) | ((w - ONES * 0x20) & ~w & HIGHS) | ((q - ONES) & ~q & HIGHS) |
                     ((b - ONES) & ~b & HIGHS);
        if (m) {
            p += __builtin_ctzll(m) >> 3;
            goto special;
        }
        p += 8;
    }
#endif
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x80)
            goto special;
        p++;
    }
    return -1;
special:
    if (*p != '"')
        return -1;
    *s = start;
    *n = p - start;
    c->p = p + 1;
    return 0;
}

static inline int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* units.parse_micro's fast path: `text.replace(".", "", 1)` all decimal digits (at most 12 here, so
 * the product fits), scaled by the places after the point (at most 6). -1: not that form. */
static int
decimal_micro(const char *t, Py_ssize_t tn, int64_t *out)
{
    static const int64_t scale_by_width[8] = {0, 1000000, 100000, 10000, 1000, 100, 10, 1};
    const char *dot = memchr(t, '.', (size_t)tn);
    int64_t scale = 1000000;
    if (dot != NULL) {
        Py_ssize_t width = tn - (dot - t);
        scale = width <= 7 ? scale_by_width[width] : 0;
    }
    Py_ssize_t ndigits = dot != NULL ? tn - 1 : tn;
    if (!scale || ndigits < 1 || ndigits > 12)
        return -1;
    int64_t value = 0;
    for (Py_ssize_t k = 0; k < tn; k++) {
        char ch = t[k];
        if (t + k == dot)
            continue;
        if (!is_digit(ch))
            return -1;
        value = value * 10 + (ch - '0');
    }
    *out = value * scale; /* < 10^12 * 10^6 */
    return 0;
}

static int
skip_number(Cur *c)
{
    const char *p = c->p, *end = c->end, *start = c->p;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return -1;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && is_digit(*p))
            p++;
    else
        return -1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p - start > 40)
        return -1;
    c->p = p;
    return 0;
}

static inline int
literal(Cur *c, const char *word, Py_ssize_t n)
{
    if (c->end - c->p < n || memcmp(c->p, word, (size_t)n) != 0)
        return -1;
    c->p += n;
    return 0;
}

#define MAX_DEPTH 16

/* Any JSON value (under a key we ignore), within the subset described at the top. */
static int
skip_value(Cur *c, int depth)
{
    const char *s;
    Py_ssize_t n;
    if (c->p >= c->end)
        return -1;
    switch (*c->p) {
    case '"':
        return scan_str(c, &s, &n);
    case 't':
        return literal(c, "true", 4);
    case 'f':
        return literal(c, "false", 5);
    case 'n':
        return literal(c, "null", 4);
    case '[':
        if (depth >= MAX_DEPTH)
            return -1;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 0;
        }
        for (;;) {
            if (skip_value(c, depth + 1) < 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == ']') {
                c->p++;
                return 0;
            }
            if (*c->p != ',')
                return -1;
            c->p++;
            skip_ws(c);
        }
    case '{':
        if (depth >= MAX_DEPTH)
            return -1;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return 0;
        }
        for (;;) {
            if (scan_str(c, &s, &n) < 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return -1;
            c->p++;
            skip_ws(c);
            if (skip_value(c, depth + 1) < 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == '}') {
                c->p++;
                return 0;
            }
            if (*c->p != ',')
                return -1;
            c->p++;
            skip_ws(c);
        }
    default:
        return skip_number(c);
    }
}

#define KEY_IS(k, n, lit) ((n) == (Py_ssize_t)(sizeof(lit) - 1) && memcmp((k), (lit), sizeof(lit) - 1) == 0)

static int
entry_field(const char *k, Py_ssize_t n)
{
    switch (n) {
    case 4:
        if (memcmp(k, "size", 4) == 0)
            return F_SIZE;
        if (memcmp(k, "side", 4) == 0)
            return F_SIDE;
        if (memcmp(k, "hash", 4) == 0)
            return F_HASH;
        return -1;
    case 5:
        return memcmp(k, "price", 5) == 0 ? F_PRICE : -1;
    case 8:
        if (memcmp(k, "asset_id", 8) == 0)
            return F_ASSET;
        if (memcmp(k, "best_bid", 8) == 0)
            return F_BB;
        if (memcmp(k, "best_ask", 8) == 0)
            return F_BA;
        return -1;
    default:
        return -1;
    }
}

/* Separator after a member: ',' (more follow) -> 1, the closing `close` -> 0, else -1. */
static inline int
after_member(Cur *c, char close)
{
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == ',') {
        c->p++;
        skip_ws(c);
        return 1;
    }
    if (*c->p == close) {
        c->p++;
        return 0;
    }
    return -1;
}

static inline int
colon(Cur *c)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':')
        return -1;
    c->p++;
    skip_ws(c);
    return 0;
}

/* One object of price_changes[], at '{'. */
static int
parse_entry(Cur *c, EntrySpans *e)
{
    memset(e, 0, sizeof *e);
    if (c->p >= c->end || *c->p != '{')
        return -1;
    c->p++;
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == '}')
        return -1; /* no required field */
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        if (scan_str(c, &k, &kn) < 0 || colon(c) < 0)
            return -1;
        int f = entry_field(k, kn);
        if (f < 0) {
            if (skip_value(c, 2) < 0)
                return -1;
        }
        else {
            Span *sp = &e->f[f];
            if (sp->s != NULL)
                return -1; /* a duplicate key: left to msgspec */
            if ((f == F_BB || f == F_BA) && c->p < c->end && *c->p == 'n') {
                if (literal(c, "null", 4) < 0)
                    return -1;
                sp->s = NULL_MARK;
                sp->n = 0;
            }
            else if (scan_str(c, &sp->s, &sp->n) < 0)
                return -1;
        }
        int more = after_member(c, '}');
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    if (!e->f[F_ASSET].s || !e->f[F_PRICE].s || !e->f[F_SIZE].s || !e->f[F_SIDE].s)
        return -1;
    return 0;
}

static PyObject *
span_str(const Span *sp, PyObject *(*make)(const char *, Py_ssize_t), PyObject *absent)
{
    if (sp->s == NULL || sp->s == NULL_MARK)
        return Py_NewRef(absent);
    return make(sp->s, sp->n);
}

static PyObject *
build_entry(const EntrySpans *e)
{
    PyObject *args[NF] = {NULL};
    PyObject *out = NULL;
    args[F_ASSET] = id_str(e->f[F_ASSET].s, e->f[F_ASSET].n);
    args[F_PRICE] = short_str(e->f[F_PRICE].s, e->f[F_PRICE].n);
    args[F_SIZE] = short_str(e->f[F_SIZE].s, e->f[F_SIZE].n);
    args[F_SIDE] = short_str(e->f[F_SIDE].s, e->f[F_SIDE].n);
    args[F_HASH] = span_str(&e->f[F_HASH], new_ascii, empty_str);
    args[F_BB] = span_str(&e->f[F_BB], short_str, Py_None);
    args[F_BA] = span_str(&e->f[F_BA], short_str, Py_None);
    for (int k = 0; k < NF; k++)
        if (args[k] == NULL)
            goto done;
    out = PyObject_Vectorcall((PyObject *)PriceLevelChange_T, args, NF, NULL);
done:
    for (int k = 0; k < NF; k++)
        Py_XDECREF(args[k]);
    return out;
}

#define LOCAL_ENTRIES 8
static const char PC_KEY[] = "\"price_changes\":";

static PyObject *
decode_price_change_frame(PyObject *mod, PyObject *data)
{
    if (PriceChange_T == NULL || !PyBytes_CheckExact(data))
        Py_RETURN_NONE;
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    /* decode_market_frame's own condition for its price_change decoder. */
    if (len < 1 || buf[0] != '{')
        Py_RETURN_NONE;
    const char *hit = find_bytes(buf, (size_t)(len < 256 ? len : 256), PC_KEY, sizeof(PC_KEY) - 1);
    if (hit == NULL || hit == buf)
        Py_RETURN_NONE;

    EntrySpans local[LOCAL_ENTRIES];
    EntrySpans *entries = local;
    Py_ssize_t count = 0, cap = LOCAL_ENTRIES;
    Span market = {NULL, 0}, ts = {NULL, 0};
    int have_changes = 0, have_type = 0;
    PyObject *result = NULL;
    Cur c = {buf + 1, buf + len};

    skip_ws(&c);
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        if (scan_str(&c, &k, &kn) < 0 || colon(&c) < 0)
            goto bail;
        if (KEY_IS(k, kn, "price_changes")) {
            if (have_changes || c.p >= c.end || *c.p != '[')
                goto bail;
            have_changes = 1;
            c.p++;
            skip_ws(&c);
            if (c.p < c.end && *c.p == ']')
                c.p++;
            else
                for (;;) {
                    if (count == cap) {
                        if (cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(EntrySpans))
                            goto bail;
                        EntrySpans *grown = PyMem_Malloc((size_t)(cap * 2) * sizeof(EntrySpans));
                        if (grown == NULL) {
                            PyErr_NoMemory();
                            goto error;
                        }
                        memcpy(grown, entries, (size_t)count * sizeof(EntrySpans));
                        if (entries != local)
                            PyMem_Free(entries);
                        entries = grown;
                        cap *= 2;
                    }
                    if (parse_entry(&c, &entries[count]) < 0)
                        goto bail;
                    count++;
                    int more = after_member(&c, ']');
                    if (more < 0)
                        goto bail;
                    if (!more)
                        break;
                }
        }
        else if (KEY_IS(k, kn, "market")) {
            if (market.s != NULL || scan_str(&c, &market.s, &market.n) < 0)
                goto bail;
        }
        else if (KEY_IS(k, kn, "timestamp")) {
            if (ts.s != NULL || scan_str(&c, &ts.s, &ts.n) < 0)
                goto bail;
        }
        else if (KEY_IS(k, kn, "event_type")) {
            const char *v;
            Py_ssize_t vn;
            if (have_type || scan_str(&c, &v, &vn) < 0 || !KEY_IS(v, vn, "price_change"))
                goto bail;
            have_type = 1;
        }
        else if (skip_value(&c, 1) < 0)
            goto bail;
        int more = after_member(&c, '}');
        if (more < 0)
            goto bail;
        if (!more)
            break;
    }
    skip_ws(&c);
    if (c.p != c.end || market.s == NULL || !have_changes)
        goto bail;

    /* Recognised: build the event exactly as msgspec would. */
    {
        PyObject *args[3] = {NULL, NULL, NULL};
        PyObject *changes = PyTuple_New(count);
        if (changes == NULL)
            goto error;
        args[1] = changes;
        for (Py_ssize_t k = 0; k < count; k++) {
            PyObject *entry = build_entry(&entries[k]);
            if (entry == NULL)
                goto build_done;
            PyTuple_SET_ITEM(changes, k, entry);
        }
        args[0] = id_str(market.s, market.n);
        args[2] = ts.s != NULL ? new_ascii(ts.s, ts.n) : Py_NewRef(empty_str);
        if (args[0] != NULL && args[2] != NULL)
            result = PyObject_Vectorcall((PyObject *)PriceChange_T, args, 3, NULL);
    build_done:
        for (int k = 0; k < 3; k++)
            Py_XDECREF(args[k]);
    }
    goto done;
bail:
    result = Py_NewRef(Py_None);
    goto done;
error:
    result = NULL;
done:
    if (entries != local)
        PyMem_Free(entries);
    return result;
}

/* An exact str whose characters are ASCII (readable as bytes through PyUnicode_DATA). */
static inline int
exact_ascii(PyObject *o)
{
    if (o == NULL || !PyUnicode_CheckExact(o))
        return 0;
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(o)) /* a legacy string: left to Python */
        return 0;
#endif
    return PyUnicode_IS_ASCII(o);
}

/* --- the user channel: order and trade events --------------------------------------------------- */

static PyTypeObject *OrderEvent_T, *TradeEvent_T, *MakerFill_T;

/* Text -> value tables handed over by Python (sides, enum values), copied to plain C arrays so that a
 * lookup is a few memcmp instead of a str object and a dict probe. */
#define TABLE_MAX 16
#define TABLE_KEY_MAX 32
typedef struct {
    Py_ssize_t n;
    char key[TABLE_KEY_MAX];
    PyObject *value;
} TableEntry;
typedef struct {
    int size;
    TableEntry e[TABLE_MAX];
} Table;
enum { T_SIDE, T_ORDER_EVENT_TYPE, T_ORDER_STATUS, T_ORDER_TYPE, T_TRADE_STATUS, T_TRADER_SIDE, NT };
static Table user_tables[NT];
static PyObject *default_order_event_type;
static int64_t seconds_limit;

static void
table_clear(Table *t)
{
    for (int k = 0; k < t->size; k++)
        Py_CLEAR(t->e[k].value);
    t->size = 0;
}

static int
table_from_dict(PyObject *d, Table *t)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    t->size = 0;
    if (!PyDict_Check(d) || PyDict_GET_SIZE(d) > TABLE_MAX) {
        PyErr_SetString(PyExc_TypeError, "a lookup table must be a dict of at most 16 entries");
        return -1;
    }
    while (PyDict_Next(d, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key) || PyUnicode_GET_LENGTH(key) >= TABLE_KEY_MAX) {
            table_clear(t);
            PyErr_SetString(PyExc_TypeError, "a lookup table's keys must be short ASCII str");
            return -1;
        }
        TableEntry *e = &t->e[t->size++];
        e->n = PyUnicode_GET_LENGTH(key);
        memcpy(e->key, PyUnicode_DATA(key), (size_t)e->n);
        e->value = Py_NewRef(value);
    }
    return 0;
}

static inline PyObject * /* borrowed */
table_get(const Table *t, const char *s, Py_ssize_t n)
{
    for (int k = 0; k < t->size; k++)
        if (t->e[k].n == n && memcmp(t->e[k].key, s, (size_t)n) == 0)
            return t->e[k].value;
    return NULL;
}

static PyObject *
bind_user_events(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const order_fields[] = {
        "type", "id", "market", "asset_id", "side", "price", "original_size", "size_matched", "status",
        "owner", "order_owner", "outcome", "associate_trades", "order_type", "expiration", "maker_address",
        "created_at", "timestamp_ms"};
    static const char *const trade_fields[] = {
        "id", "taker_order_id", "market", "asset_id", "side", "size", "price", "status", "maker_orders",
        "fee_rate_bps", "outcome", "owner", "trade_owner", "maker_address", "transaction_hash",
        "bucket_index", "trader_side", "match_time", "last_update", "timestamp_ms", "err_msg"};
    static const char *const maker_fields[] = {"order_id", "matched_amount", "price", "asset_id", "owner",
                                               "maker_address", "fee_rate_bps", "outcome", "outcome_index",
                                               "side"};
    if (nargs != 3 + NT + 3 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2]) ||
        !PyLong_CheckExact(args[3 + NT + 1]) || !PyLong_CheckExact(args[3 + NT + 2])) {
        PyErr_SetString(PyExc_TypeError,
                        "bind_user_events(OrderEvent, TradeEvent, MakerOrderFill, sides, order_event_types, "
                        "order_statuses, order_types, trade_statuses, trader_sides, default_order_event_type, "
                        "seconds_limit, micro)");
        return NULL;
    }
    PyTypeObject *o = (PyTypeObject *)args[0], *t = (PyTypeObject *)args[1], *m = (PyTypeObject *)args[2];
    if (check_names(o, "__struct_fields__", order_fields, 18) < 0 ||
        check_names(t, "__struct_fields__", trade_fields, 21) < 0 ||
        check_names(m, "__struct_fields__", maker_fields, 10) < 0)
        return NULL;
    int overflow;
    long long limit = PyLong_AsLongLongAndOverflow(args[3 + NT + 1], &overflow);
    long long micro = PyLong_AsLongLongAndOverflow(args[3 + NT + 2], &overflow);
    if (PyErr_Occurred())
        return NULL;
    /* decimal_micro's scale table is for micro-units; the limit keeps `ts * 1000` inside int64. */
    if (micro != 1000000 || limit <= 0 || limit > INT64_MAX / 1000) {
        PyErr_SetString(PyExc_TypeError, "bind_user_events: unexpected MICRO or seconds limit");
        return NULL;
    }
    Table fresh[NT];
    for (int k = 0; k < NT; k++)
        if (table_from_dict(args[3 + k], &fresh[k]) < 0) {
            while (k--)
                table_clear(&fresh[k]);
            return NULL;
        }
    for (int k = 0; k < NT; k++) {
        table_clear(&user_tables[k]);
        user_tables[k] = fresh[k];
    }
    seconds_limit = limit;
    Py_XSETREF(default_order_event_type, Py_NewRef(args[3 + NT]));
    Py_XSETREF(OrderEvent_T, (PyTypeObject *)Py_NewRef(o));
    Py_XSETREF(TradeEvent_T, (PyTypeObject *)Py_NewRef(t));
    Py_XSETREF(MakerFill_T, (PyTypeObject *)Py_NewRef(m));
    Py_RETURN_NONE;
}

/* Every key of _FastOrder, _FastTrade and _FastMaker: one table, each event kind reads its own. */
enum {
    K_ID, K_ASSET_ID, K_SIDE, K_PRICE, K_ORIGINAL_SIZE, K_STATUS, K_TYPE, K_MARKET, K_SIZE_MATCHED, K_OWNER,
    K_ORDER_OWNER, K_OUTCOME, K_ASSOCIATE_TRADES, K_ORDER_TYPE, K_EXPIRATION, K_MAKER_ADDRESS, K_CREATED_AT,
    K_TIMESTAMP, K_EVENT_TYPE, K_SIZE, K_TAKER_ORDER_ID, K_MAKER_ORDERS, K_FEE_RATE_BPS, K_TRADE_OWNER,
    K_TRANSACTION_HASH, K_BUCKET_INDEX, K_TRADER_SIDE, K_MATCH_TIME, K_MATCHTIME, K_LAST_UPDATE, K_ERR_MSG,
    K_ORDER_ID, K_MATCHED_AMOUNT, K_OUTCOME_INDEX, NK
};
static const char *const user_keys[NK] = {
    [K_ID] = "id", [K_ASSET_ID] = "asset_id", [K_SIDE] = "side", [K_PRICE] = "price",
    [K_ORIGINAL_SIZE] = "original_size", [K_STATUS] = "status", [K_TYPE] = "type", [K_MARKET] = "market",
    [K_SIZE_MATCHED] = "size_matched", [K_OWNER] = "owner", [K_ORDER_OWNER] = "order_owner",
    [K_OUTCOME] = "outcome", [K_ASSOCIATE_TRADES] = "associate_trades", [K_ORDER_TYPE] = "order_type",
    [K_EXPIRATION] = "expiration", [K_MAKER_ADDRESS] = "maker_address", [K_CREATED_AT] = "created_at",
    [K_TIMESTAMP] = "timestamp", [K_EVENT_TYPE] = "event_type", [K_SIZE] = "size",
    [K_TAKER_ORDER_ID] = "taker_order_id", [K_MAKER_ORDERS] = "maker_orders", [K_FEE_RATE_BPS] = "fee_rate_bps",
    [K_TRADE_OWNER] = "trade_owner", [K_TRANSACTION_HASH] = "transaction_hash",
    [K_BUCKET_INDEX] = "bucket_index", [K_TRADER_SIDE] = "trader_side", [K_MATCH_TIME] = "match_time",
    [K_MATCHTIME] = "matchtime", [K_LAST_UPDATE] = "last_update", [K_ERR_MSG] = "err_msg",
    [K_ORDER_ID] = "order_id", [K_MATCHED_AMOUNT] = "matched_amount", [K_OUTCOME_INDEX] = "outcome_index",
};

/* The keys by length (filled at import): at most a few memcmp per key. */
#define KEY_LEN_MAX 16
#define KEYS_PER_LEN 6
static signed char keys_by_len[KEY_LEN_MAX + 1][KEYS_PER_LEN];

static int
init_user_keys(void)
{
    memset(keys_by_len, -1, sizeof keys_by_len);
    for (int k = 0; k < NK; k++) {
        size_t n = strlen(user_keys[k]);
        int slot = 0;
        while (n <= KEY_LEN_MAX && slot < KEYS_PER_LEN && keys_by_len[n][slot] >= 0)
            slot++;
        if (n > KEY_LEN_MAX || slot == KEYS_PER_LEN) {
            PyErr_SetString(PyExc_SystemError, "polyoms._speedups: user key table too small");
            return -1;
        }
        keys_by_len[n][slot] = (signed char)k;
    }
    return 0;
}

static inline int
user_key(const char *s, Py_ssize_t n)
{
    if (n > KEY_LEN_MAX)
        return -1;
    for (int slot = 0; slot < KEYS_PER_LEN; slot++) {
        int k = keys_by_len[n][slot];
        if (k < 0)
            return -1;
        if (memcmp(user_keys[k], s, (size_t)n) == 0)
            return k;
    }
    return -1;
}

/* A member's value, as far as msgspec's type check needs to know it. */
enum { V_ABSENT = 0, V_STR, V_NULL, V_INT, V_ARRAY, V_MAKERS, V_OTHER };
typedef struct {
    const char *s; /* V_STR: the characters; V_INT: the digits; V_ARRAY: from '[' to ']' */
    Py_ssize_t n;  /* V_MAKERS: how many */
    int kind;
} Val;
typedef struct {
    Val v[NK];
} Obj;

#define LOCAL_MAKERS 8
typedef struct {
    Obj *items;
    Py_ssize_t count, cap;
    Obj local[LOCAL_MAKERS];
} Makers;

/* Status of the steps below: OK, BAIL (not recognised: None, the Python path decides), ERR (raised). */
#define OK 0
#define BAIL 1
#define ERR (-1)

static int
user_value(Cur *c, Val *v)
{
    const char *start = c->p;
    if (start >= c->end)
        return BAIL;
    switch (*start) {
    case '"':
        v->kind = V_STR;
        return scan_str(c, &v->s, &v->n) < 0 ? BAIL : OK;
    case 'n':
        v->kind = V_NULL;
        return literal(c, "null", 4) < 0 ? BAIL : OK;
    case '[':
        if (skip_value(c, 2) < 0)
            return BAIL;
        v->kind = V_ARRAY;
        v->s = start;
        v->n = c->p - start;
        return OK;
    case '-':
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        if (skip_number(c) < 0)
            return BAIL;
        v->kind = V_INT;
        v->s = start;
        v->n = c->p - start;
        for (const char *p = start; p < c->p; p++)
            if (*p == '.' || *p == 'e' || *p == 'E')
                v->kind = V_OTHER; /* a float: never what an int or str field accepts */
        return OK;
    default:
        v->kind = V_OTHER;
        return skip_value(c, 2) < 0 ? BAIL : OK;
    }
}

static int parse_makers(Cur *c, Makers *mk, Val *v);

/* One object at '{': its known members (a duplicate: BAIL), the others skipped. `mk`: where the
 * maker_orders objects go (NULL inside a maker: there the key is just skipped). */
static int
parse_user_object(Cur *c, Obj *o, Makers *mk)
{
    memset(o, 0, sizeof *o);
    if (c->p >= c->end || *c->p != '{')
        return BAIL;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return OK;
    }
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        if (scan_str(c, &k, &kn) < 0 || colon(c) < 0)
            return BAIL;
        int f = user_key(k, kn);
        int r;
        if (f < 0)
            r = skip_value(c, 2) < 0 ? BAIL : OK;
        else if (o->v[f].kind != V_ABSENT)
            r = BAIL;
        else if (f == K_MAKER_ORDERS && mk != NULL && c->p < c->end && *c->p == '[')
            r = parse_makers(c, mk, &o->v[f]);
        else
            r = user_value(c, &o->v[f]);
        if (r != OK)
            return r;
        int more = after_member(c, '}');
        if (more < 0)
            return BAIL;
        if (!more)
            return OK;
    }
}

static int
parse_makers(Cur *c, Makers *mk, Val *v)
{
    c->p++;
    skip_ws(c);
    v->kind = V_MAKERS;
    v->n = 0;
    mk->count = 0;
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return OK;
    }
    for (;;) {
        if (mk->count == mk->cap) {
            if (mk->cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(Obj))
                return BAIL;
            Obj *grown = PyMem_Malloc((size_t)(mk->cap * 2) * sizeof(Obj));
            if (grown == NULL) {
                PyErr_NoMemory();
                return ERR;
            }
            memcpy(grown, mk->items, (size_t)mk->count * sizeof(Obj));
            if (mk->items != mk->local)
                PyMem_Free(mk->items);
            mk->items = grown;
            mk->cap *= 2;
        }
        int r = parse_user_object(c, &mk->items[mk->count], NULL);
        if (r != OK)
            return r;
        mk->count++;
        v->n++;
        int more = after_member(c, ']');
        if (more < 0)
            return BAIL;
        if (!more)
            return OK;
    }
}

/* --- msgspec's field types and the conversions of _f_order / _f_trade, one field at a time --------- */

typedef PyObject *(*MakeStr)(const char *, Py_ssize_t);

/* `str` without a default */
static int
f_str(const Val *v, MakeStr make, PyObject **out)
{
    if (v->kind != V_STR)
        return BAIL;
    return (*out = make(v->s, v->n)) != NULL ? OK : ERR;
}

/* `str = ""` */
static int
f_str_or_empty(const Val *v, MakeStr make, PyObject **out)
{
    if (v->kind == V_ABSENT) {
        *out = Py_NewRef(empty_str);
        return OK;
    }
    return f_str(v, make, out);
}

/* `str | None = None`, then `or ""` */
static int
f_str_none_empty(const Val *v, MakeStr make, PyObject **out)
{
    if (v->kind == V_ABSENT || v->kind == V_NULL || (v->kind == V_STR && v->n == 0)) {
        *out = Py_NewRef(empty_str);
        return OK;
    }
    return f_str(v, make, out);
}

/* An enum field (msgspec matches the value exactly): `dflt` NULL: required; `nullable`: `| None`. */
static int
f_enum(const Val *v, const Table *t, PyObject *dflt, int nullable, PyObject **out)
{
    PyObject *x = NULL;
    if (v->kind == V_ABSENT)
        x = dflt;
    else if (v->kind == V_NULL && nullable)
        x = Py_None;
    else if (v->kind == V_STR)
        x = table_get(t, v->s, v->n);
    if (x == NULL)
        return BAIL;
    *out = Py_NewRef(x);
    return OK;
}

/* `side: str` through the sides table (`_SIDE_TEXT[w.side]`) */
static int
f_side(const Val *v, PyObject **out)
{
    return v->kind == V_STR ? f_enum(v, &user_tables[T_SIDE], NULL, 0, out) : BAIL;
}

/* A maker's `side: str | None`: `side_text[m.side] if m.side else None` */
static int
f_maker_side(const Val *v, PyObject **out)
{
    if (v->kind == V_ABSENT || v->kind == V_NULL || (v->kind == V_STR && v->n == 0)) {
        *out = Py_NewRef(Py_None);
        return OK;
    }
    return f_side(v, out);
}

/* `str` through _f_amount (`dflt`: the default's value, -1 for a required field) */
static int
f_amount(const Val *v, int64_t dflt, PyObject **out)
{
    int64_t x = dflt;
    if (v->kind == V_ABSENT ? dflt < 0 : v->kind != V_STR || decimal_micro(v->s, v->n, &x) < 0)
        return BAIL;
    return (*out = PyLong_FromLongLong(x)) != NULL ? OK : ERR;
}

/* `price: str` through _f_price: also inside [0, 1] */
static int
f_price(const Val *v, PyObject **out)
{
    int64_t x;
    if (v->kind != V_STR || decimal_micro(v->s, v->n, &x) < 0 || x > 1000000)
        return BAIL;
    return (*out = PyLong_FromLongLong(x)) != NULL ? OK : ERR;
}

/* Up to 18 ASCII digits (leading zeros allowed, as int() reads them). */
static int
digits_value(const char *s, Py_ssize_t n, int64_t *out)
{
    if (n < 1 || n > 18)
        return -1;
    int64_t x = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!is_digit(s[k]))
            return -1;
        x = x * 10 + (s[k] - '0');
    }
    *out = x;
    return 0;
}

/* `str | int | None` through _f_int: *present 0 for None. Negative numbers are left to Python. */
static int
whole(const Val *v, int *present, int64_t *x)
{
    *present = 0;
    switch (v->kind) {
    case V_ABSENT:
    case V_NULL:
        return OK;
    case V_STR:
        if (v->n == 0)
            return OK;
        /* fall through */
    case V_INT:
        if (digits_value(v->s, v->n, x) < 0)
            return BAIL;
        *present = 1;
        return OK;
    default:
        return BAIL;
    }
}

static inline int
int_or_none(int present, int64_t x, PyObject **out)
{
    *out = present ? PyLong_FromLongLong(x) : Py_NewRef(Py_None);
    return *out != NULL ? OK : ERR;
}

static int
f_whole(const Val *v, PyObject **out)
{
    int present;
    int64_t x;
    int r = whole(v, &present, &x);
    return r != OK ? r : int_or_none(present, x, out);
}

/* _f_ts: seconds become milliseconds */
static int
f_timestamp(const Val *v, PyObject **out)
{
    int present;
    int64_t x;
    int r = whole(v, &present, &x);
    if (r != OK)
        return r;
    if (present && x < seconds_limit)
        x *= 1000;
    return int_or_none(present, x, out);
}

/* `int | None = None`, kept as is */
static int
f_int(const Val *v, PyObject **out)
{
    if (v->kind == V_ABSENT || v->kind == V_NULL) {
        *out = Py_NewRef(Py_None);
        return OK;
    }
    int64_t x;
    if (v->kind != V_INT || digits_value(v->s, v->n, &x) < 0)
        return BAIL;
    return (*out = PyLong_FromLongLong(x)) != NULL ? OK : ERR;
}

/* `associate_trades: tuple[str, ...] | None`, then `or ()` */
static int
f_str_tuple(const Val *v, PyObject **out)
{
    if (v->kind == V_ABSENT || v->kind == V_NULL) {
        *out = PyTuple_New(0);
        return *out != NULL ? OK : ERR;
    }
    if (v->kind != V_ARRAY)
        return BAIL;
    PyObject *items = PyList_New(0);
    if (items == NULL)
        return ERR;
    Cur c = {v->s + 1, v->s + v->n};
    int r = OK;
    skip_ws(&c);
    if (c.p < c.end && *c.p == ']')
        c.p++;
    else
        for (;;) {
            const char *s;
            Py_ssize_t n;
            if (scan_str(&c, &s, &n) < 0) {
                r = BAIL;
                break;
            }
            PyObject *item = new_ascii(s, n);
            if (item == NULL || PyList_Append(items, item) < 0) {
                Py_XDECREF(item);
                r = ERR;
                break;
            }
            Py_DECREF(item);
            int more = after_member(&c, ']');
            if (more <= 0) {
                r = more < 0 ? BAIL : OK;
                break;
            }
        }
    if (r == OK)
        r = (*out = PyList_AsTuple(items)) != NULL ? OK : ERR;
    Py_DECREF(items);
    return r;
}

/* A field of `str | int | None` that this event does not use (match_time vs matchtime): its type only. */
static inline int
str_int_or_null(const Val *v)
{
    return v->kind == V_ABSENT || v->kind == V_NULL || v->kind == V_STR || v->kind == V_INT ? OK : BAIL;
}

static int
call_struct(PyTypeObject *type, PyObject **args, Py_ssize_t n, int r, PyObject **out)
{
    if (r == OK)
        r = (*out = PyObject_Vectorcall((PyObject *)type, args, (size_t)n, NULL)) != NULL ? OK : ERR;
    for (Py_ssize_t k = 0; k < n; k++)
        Py_XDECREF(args[k]);
    return r;
}

/* _f_order */
static int
build_order(const Val *v, PyObject **out)
{
    PyObject *a[18] = {NULL};
    int r;
    (void)((r = f_enum(&v[K_TYPE], &user_tables[T_ORDER_EVENT_TYPE], default_order_event_type, 0, &a[0])) ||
           (r = f_str(&v[K_ID], new_ascii, &a[1])) || (r = f_str_or_empty(&v[K_MARKET], id_str, &a[2])) ||
           (r = f_str(&v[K_ASSET_ID], id_str, &a[3])) || (r = f_side(&v[K_SIDE], &a[4])) ||
           (r = f_price(&v[K_PRICE], &a[5])) || (r = f_amount(&v[K_ORIGINAL_SIZE], -1, &a[6])) ||
           (r = f_amount(&v[K_SIZE_MATCHED], 0, &a[7])) ||
           (r = f_enum(&v[K_STATUS], &user_tables[T_ORDER_STATUS], NULL, 0, &a[8])) ||
           (r = f_str_or_empty(&v[K_OWNER], id_str, &a[9])) ||
           (r = f_str_or_empty(&v[K_ORDER_OWNER], id_str, &a[10])) ||
           (r = f_str_or_empty(&v[K_OUTCOME], short_str, &a[11])) ||
           (r = f_str_tuple(&v[K_ASSOCIATE_TRADES], &a[12])) ||
           (r = f_enum(&v[K_ORDER_TYPE], &user_tables[T_ORDER_TYPE], Py_None, 1, &a[13])));
    if (r == OK) { /* `_f_int(w.expiration) or 0` */
        int present;
        int64_t x;
        r = whole(&v[K_EXPIRATION], &present, &x);
        if (r == OK)
            r = (a[14] = PyLong_FromLongLong(present ? x : 0)) != NULL ? OK : ERR;
    }
    (void)(r || (r = f_str_or_empty(&v[K_MAKER_ADDRESS], id_str, &a[15])) ||
           (r = f_whole(&v[K_CREATED_AT], &a[16])) || (r = f_timestamp(&v[K_TIMESTAMP], &a[17])));
    return call_struct(OrderEvent_T, a, 18, r, out);
}

/* the MakerOrderFill of _f_trade */
static int
build_maker(const Val *v, PyObject **out)
{
    PyObject *a[10] = {NULL};
    int r;
    (void)((r = f_str(&v[K_ORDER_ID], new_ascii, &a[0])) || (r = f_amount(&v[K_MATCHED_AMOUNT], -1, &a[1])) ||
           (r = f_price(&v[K_PRICE], &a[2])) || (r = f_str_or_empty(&v[K_ASSET_ID], id_str, &a[3])) ||
           (r = f_str_or_empty(&v[K_OWNER], id_str, &a[4])) ||
           (r = f_str_or_empty(&v[K_MAKER_ADDRESS], id_str, &a[5])) ||
           (r = f_whole(&v[K_FEE_RATE_BPS], &a[6])) || (r = f_str_or_empty(&v[K_OUTCOME], short_str, &a[7])) ||
           (r = f_int(&v[K_OUTCOME_INDEX], &a[8])) || (r = f_maker_side(&v[K_SIDE], &a[9])));
    return call_struct(MakerFill_T, a, 10, r, out);
}

static int
build_makers(const Val *v, const Makers *mk, PyObject **out)
{
    if (v->kind == V_ABSENT || v->kind == V_NULL) {
        *out = PyTuple_New(0);
        return *out != NULL ? OK : ERR;
    }
    if (v->kind != V_MAKERS)
        return BAIL;
    PyObject *t = PyTuple_New(v->n);
    if (t == NULL)
        return ERR;
    for (Py_ssize_t k = 0; k < v->n; k++) {
        PyObject *m = NULL;
        int r = build_maker(mk->items[k].v, &m);
        if (r != OK) {
            Py_DECREF(t);
            return r;
        }
        PyTuple_SET_ITEM(t, k, m);
    }
    *out = t;
    return OK;
}

/* _f_trade */
static int
build_trade(const Val *v, const Makers *mk, PyObject **out)
{
    PyObject *a[21] = {NULL};
    int r;
    /* `w.match_time if w.match_time is not None else w.matchtime`: both must have a valid type */
    const Val *mt = v[K_MATCH_TIME].kind != V_ABSENT && v[K_MATCH_TIME].kind != V_NULL ? &v[K_MATCH_TIME]
                                                                                       : &v[K_MATCHTIME];
    if (str_int_or_null(&v[K_MATCH_TIME]) != OK || str_int_or_null(&v[K_MATCHTIME]) != OK ||
        (v[K_TYPE].kind != V_ABSENT && v[K_TYPE].kind != V_STR))
        return BAIL;
    (void)((r = f_str(&v[K_ID], new_ascii, &a[0])) || (r = f_str_or_empty(&v[K_TAKER_ORDER_ID], new_ascii, &a[1])) ||
           (r = f_str_or_empty(&v[K_MARKET], id_str, &a[2])) || (r = f_str(&v[K_ASSET_ID], id_str, &a[3])) ||
           (r = f_side(&v[K_SIDE], &a[4])) || (r = f_amount(&v[K_SIZE], -1, &a[5])) ||
           (r = f_price(&v[K_PRICE], &a[6])) ||
           (r = f_enum(&v[K_STATUS], &user_tables[T_TRADE_STATUS], NULL, 0, &a[7])) ||
           (r = build_makers(&v[K_MAKER_ORDERS], mk, &a[8])) || (r = f_whole(&v[K_FEE_RATE_BPS], &a[9])) ||
           (r = f_str_or_empty(&v[K_OUTCOME], short_str, &a[10])) ||
           (r = f_str_or_empty(&v[K_OWNER], id_str, &a[11])) ||
           (r = f_str_or_empty(&v[K_TRADE_OWNER], id_str, &a[12])) ||
           (r = f_str_or_empty(&v[K_MAKER_ADDRESS], id_str, &a[13])) ||
           (r = f_str_none_empty(&v[K_TRANSACTION_HASH], new_ascii, &a[14])) ||
           (r = f_int(&v[K_BUCKET_INDEX], &a[15])) ||
           (r = f_enum(&v[K_TRADER_SIDE], &user_tables[T_TRADER_SIDE], Py_None, 1, &a[16])) ||
           (r = f_whole(mt, &a[17])) || (r = f_whole(&v[K_LAST_UPDATE], &a[18])) ||
           (r = f_timestamp(&v[K_TIMESTAMP], &a[19])) ||
           (r = f_str_none_empty(&v[K_ERR_MSG], new_ascii, &a[20])));
    return call_struct(TradeEvent_T, a, 21, r, out);
}

/* One event object at '{', appended to `events`. */
static int
user_event(Cur *c, Obj *o, Makers *mk, PyObject *events)
{
    int r = parse_user_object(c, o, mk);
    if (r != OK)
        return r;
    const Val *tag = &o->v[K_EVENT_TYPE];
    PyObject *event = NULL;
    if (tag->kind != V_STR)
        return BAIL;
    if (KEY_IS(tag->s, tag->n, "order"))
        r = build_order(o->v, &event);
    else if (KEY_IS(tag->s, tag->n, "trade"))
        r = build_trade(o->v, mk, &event);
    else
        return BAIL;
    if (r != OK)
        return r;
    r = PyList_Append(events, event) < 0 ? ERR : OK;
    Py_DECREF(event);
    return r;
}

static PyObject *
decode_user_frame(PyObject *mod, PyObject *data)
{
    const char *buf;
    Py_ssize_t len;
    if (OrderEvent_T == NULL)
        Py_RETURN_NONE;
    if (PyBytes_CheckExact(data)) {
        buf = PyBytes_AS_STRING(data);
        len = PyBytes_GET_SIZE(data);
    }
    else if (exact_ascii(data)) {
        buf = (const char *)PyUnicode_DATA(data);
        len = PyUnicode_GET_LENGTH(data);
    }
    else
        Py_RETURN_NONE;

    Cur c = {buf, buf + len};
    Obj obj;
    Makers mk;
    mk.items = mk.local;
    mk.count = 0;
    mk.cap = LOCAL_MAKERS;
    PyObject *events = PyList_New(0);
    if (events == NULL)
        return NULL;
    int r;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '{')
        r = user_event(&c, &obj, &mk, events);
    else if (c.p < c.end && *c.p == '[') {
        c.p++;
        skip_ws(&c);
        r = OK;
        if (c.p < c.end && *c.p == ']')
            c.p++;
        else
            for (;;) {
                r = user_event(&c, &obj, &mk, events);
                if (r != OK)
                    break;
                int more = after_member(&c, ']');
                if (more <= 0) {
                    r = more < 0 ? BAIL : OK;
                    break;
                }
            }
    }
    else
        r = BAIL;
    skip_ws(&c);
    if (r == OK && c.p != c.end)
        r = BAIL;
    if (mk.items != mk.local)
        PyMem_Free(mk.items);
    if (r == OK)
        return events;
    Py_DECREF(events);
    if (r == ERR)
        return NULL;
    Py_RETURN_NONE;
}

/* --- applying a price_change ---------------------------------------------------------------------- */

static inline int
exact_ssize(PyObject *v, Py_ssize_t *out)
{
    if (v == NULL || !PyLong_CheckExact(v))
        return -1;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    if (x < PY_SSIZE_T_MIN || x > PY_SSIZE_T_MAX)
        return -1;
    *out = (Py_ssize_t)x;
    return 0;
}

/* obj.<name> += 1 through the attribute protocol (rare: crossings, unknown assets). */
static int
increment_attr(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    PyObject *nv = PyNumber_InPlaceAdd(v, one);
    Py_DECREF(v);
    if (nv == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, nv);
    Py_DECREF(nv);
    return r;
}

static PyObject *
book_attr(PyObject *book, Py_ssize_t off, PyObject *name)
{
    PyObject *v = SLOT(book, off);
    return v != NULL ? Py_NewRef(v) : PyObject_GetAttr(book, name);
}

/* `table.get(key, -1) != current` as Python evaluates it: 1 differs, 0 equal, -1 error. */
static int
lookup_differs(PyObject *table, PyObject *key, PyObject *current)
{
    PyObject *v;
    if (PyDict_CheckExact(table)) {
        v = PyDict_GetItemWithError(table, key);
        if (v == NULL) {
            if (PyErr_Occurred())
                return -1;
            v = minus_one;
        }
        Py_INCREF(v);
    }
    else {
        v = PyObject_CallMethodObjArgs(table, s_get, key, minus_one, NULL);
        if (v == NULL)
            return -1;
    }
    int r;
    if (PyLong_CheckExact(v) && PyLong_CheckExact(current))
        r = PyObject_RichCompareBool(v, current, Py_NE);
    else {
        PyObject *ne = PyObject_RichCompare(v, current, Py_NE);
        r = ne == NULL ? -1 : PyObject_IsTrue(ne);
        Py_XDECREF(ne);
    }
    Py_DECREF(v);
    return r;
}

/* The venue's best prices after the change against the mirror's (the book was just updated):
 * `if check and change.best_bid_text is not None and not book.awaiting_snapshot: ...`. */
static int
check_best(PyObject *book, PyObject *change)
{
    PyObject *bbt = SLOT(change, off_lc[F_BB]);
    if (bbt == NULL) /* not reachable for a constructed struct; the attribute protocol raises */
        bbt = PyObject_GetAttrString(change, "best_bid_text");
    else
        Py_INCREF(bbt);
    if (bbt == NULL)
        return -1;
    int r = 0;
    PyObject *grid = NULL, *table = NULL, *cur = NULL, *bat = NULL;
    if (bbt == Py_None)
        goto done;
    PyObject *awaiting = book_attr(book, off_b_awaiting, s_awaiting_snapshot);
    if (awaiting == NULL)
        goto error;
    int aw = PyObject_IsTrue(awaiting);
    Py_DECREF(awaiting);
    if (aw < 0)
        goto error;
    if (aw)
        goto done;
    grid = book_attr(book, off_b_grid, s_grid);
    if (grid == NULL)
        goto error;
    table = Py_IS_TYPE(grid, Grid_T) && SLOT(grid, off_g_bb_text) != NULL ? Py_NewRef(SLOT(grid, off_g_bb_text))
                                                                          : PyObject_GetAttr(grid, s_best_bid_text);
    if (table == NULL)
        goto error;
    cur = book_attr(book, off_b_bb, s_bb);
    if (cur == NULL)
        goto error;
    int differs = lookup_differs(table, bbt, cur);
    if (differs < 0)
        goto error;
    if (!differs) {
        Py_CLEAR(table);
        Py_CLEAR(cur);
        table = Py_IS_TYPE(grid, Grid_T) && SLOT(grid, off_g_ba_text) != NULL
                    ? Py_NewRef(SLOT(grid, off_g_ba_text))
                    : PyObject_GetAttr(grid, s_best_ask_text);
        if (table == NULL)
            goto error;
        bat = SLOT(change, off_lc[F_BA]);
        bat = bat != NULL ? Py_NewRef(bat) : PyObject_GetAttrString(change, "best_ask_text");
        if (bat == NULL)
            goto error;
        cur = book_attr(book, off_b_ba, s_ba);
        if (cur == NULL)
            goto error;
        differs = lookup_differs(table, bat, cur);
        if (differs < 0)
            goto error;
    }
    if (differs) {
        PyObject *res = PyObject_CallMethodOneArg(book, s_check_best_exactly, change);
        if (res == NULL)
            goto error;
        Py_DECREF(res);
    }
    goto done;
error:
    r = -1;
done:
    Py_DECREF(bbt);
    Py_XDECREF(grid);
    Py_XDECREF(table);
    Py_XDECREF(cur);
    Py_XDECREF(bat);
    return r;
}

/* The level update of one entry, if it is the usual kind: 1 applied, 0 not this kind (nothing was
 * changed; the Python entry function applies it), -1 error. */
static int
apply_level(PyObject *book, PyObject *change)
{
    if (!Py_IS_TYPE(book, Book_T))
        return 0;
    PyObject *price = SLOT(change, off_lc[F_PRICE]), *size = SLOT(change, off_lc[F_SIZE]),
             *side = SLOT(change, off_lc[F_SIDE]);
    if (price == NULL || !PyUnicode_CheckExact(price) || !exact_ascii(size) || !exact_ascii(side))
        return 0;

    int sell;
    Py_ssize_t side_len = PyUnicode_GET_LENGTH(side);
    const char *side_s = (const char *)PyUnicode_DATA(side);
    if (side_len == 4 && memcmp(side_s, "SELL", 4) == 0)
        sell = 1;
    else if (side_len == 3 && memcmp(side_s, "BUY", 3) == 0)
        sell = 0;
    else
        return 0;

    int64_t new_size;
    if (decimal_micro((const char *)PyUnicode_DATA(size), PyUnicode_GET_LENGTH(size), &new_size) < 0)
        return 0;

    PyObject *text_index = SLOT(book, off_b_text_index);
    if (text_index == NULL || !PyDict_CheckExact(text_index))
        return 0;
    PyObject *iobj = PyDict_GetItemWithError(text_index, price);
    if (iobj == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *levels = SLOT(book, sell ? off_b_asks : off_b_bids);
    PyObject *occ_obj = SLOT(book, sell ? off_b_occ_asks : off_b_occ_bids);
    Py_ssize_t i, bb, ba, n;
    if (exact_ssize(iobj, &i) < 0 || exact_ssize(SLOT(book, off_b_bb), &bb) < 0 ||
        exact_ssize(SLOT(book, off_b_ba), &ba) < 0 || exact_ssize(SLOT(book, off_b_n), &n) < 0 ||
        levels == NULL || !PyList_CheckExact(levels) || occ_obj == NULL || !PyByteArray_CheckExact(occ_obj) ||
        i < 0 || i >= PyList_GET_SIZE(levels) || i >= PyByteArray_GET_SIZE(occ_obj))
        return 0;
    PyObject *old = PyList_GET_ITEM(levels, i);
    if (!PyLong_CheckExact(old))
        return 0;
    PyObject *size_obj = PyLong_FromLongLong(new_size);
    if (size_obj == NULL)
        return -1;

    /* From here the entry is applied; no Python code runs until the book's state is consistent. */
    char *occ = PyByteArray_AS_STRING(occ_obj);
    Py_ssize_t occ_len = PyByteArray_GET_SIZE(occ_obj);
    int had = PyObject_IsTrue(old); /* an exact int: never fails */
    PyList_SET_ITEM(levels, i, size_obj);
    Py_DECREF(old);
    int crossed = 0;
    if (sell) {
        Py_ssize_t nba = ba;
        if (new_size) {
            if (!had) {
                occ[i] = 1;
                if (i < ba) {
                    nba = i;
                    crossed = i <= bb;
                }
            }
        }
        else if (had) {
            occ[i] = 0;
            if (i == ba) {
                const char *j = i + 1 < occ_len ? memchr(occ + i + 1, 1, (size_t)(occ_len - i - 1)) : NULL;
                nba = j == NULL ? n : j - occ;
            }
        }
        if (nba != ba) {
            PyObject *v = PyLong_FromSsize_t(nba);
            if (v == NULL)
                return -1;
            set_slot(book, off_b_ba, v);
        }
    }
    else {
        Py_ssize_t nbb = bb;
        if (new_size) {
            if (!had) {
                occ[i] = 1;
                if (i > bb) {
                    nbb = i;
                    crossed = i >= ba;
                }
            }
        }
        else if (had) {
            occ[i] = 0;
            if (i == bb) {
                const char *j = i > 1 ? last_one(occ + 1, (size_t)(i - 1)) : NULL;
                nbb = j == NULL ? 0 : j - occ;
            }
        }
        if (nbb != bb) {
            PyObject *v = PyLong_FromSsize_t(nbb);
            if (v == NULL)
                return -1;
            set_slot(book, off_b_bb, v);
        }
    }
    if (crossed && increment_attr(book, s_crossed_updates) < 0)
        return -1;
    return 1;
}

/* One entry whose book exists: level update, best-price check, timestamp, hook. */
static int
apply_entry(PyObject *book, PyObject *change, int check, PyObject *ts, PyObject *hook)
{
    int r = apply_level(book, change);
    if (r < 0)
        return -1;
    if (r == 0) {
        PyObject *args[5] = {book, change, check ? Py_True : Py_False, ts, hook};
        PyObject *res = PyObject_Vectorcall(py_apply_entry, args, 5, NULL);
        if (res == NULL)
            return -1;
        Py_DECREF(res);
        return 0;
    }
    if (check && check_best(book, change) < 0)
        return -1;
    set_slot(book, off_b_ts, Py_NewRef(ts)); /* book is exactly a Book here */
    if (hook != Py_None) {
        PyObject *args[2] = {book, change};
        PyObject *res = PyObject_Vectorcall(hook, args, 2, NULL);
        if (res == NULL)
            return -1;
        Py_DECREF(res);
    }
    return 0;
}

static PyObject *
change_asset(PyObject *change)
{
    PyObject *a = SLOT(change, off_lc[F_ASSET]);
    if (a == NULL)
        PyErr_SetObject(PyExc_AttributeError, s_asset_id);
    return a;
}

static PyObject *
apply_price_change(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_price_change(bookset, event)");
        return NULL;
    }
    if (Book_T == NULL || PriceChange_T == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "polyoms._speedups: types not bound");
        return NULL;
    }
    PyObject *self = args[0], *event = args[1];
    PyObject *books = NULL, *hook = NULL, *verify = NULL, *ts = NULL, *changes = NULL;
    if (Py_IS_TYPE(self, BookSet_T) && Py_IS_TYPE(event, PriceChange_T)) {
        books = SLOT(self, off_bs_books);
        hook = SLOT(self, off_bs_hook);
        verify = SLOT(self, off_bs_verify);
        ts = SLOT(event, off_pc_ts);
        changes = SLOT(event, off_pc_changes);
    }
    int usual = books != NULL && PyDict_CheckExact(books) && hook != NULL && verify != NULL && ts != NULL &&
                changes != NULL && PyTuple_CheckExact(changes);
    for (Py_ssize_t k = 0; usual && k < PyTuple_GET_SIZE(changes); k++) {
        PyObject *c = PyTuple_GET_ITEM(changes, k);
        usual = Py_IS_TYPE(c, PriceLevelChange_T) && SLOT(c, off_lc[F_ASSET]) != NULL;
    }
    if (!usual) /* anything else: the Python implementation, whole */
        return PyObject_Vectorcall(py_apply_message, args, 2, NULL);

    PyObject *last = NULL, *result = NULL;
    Py_INCREF(books);
    Py_INCREF(hook);
    Py_INCREF(verify);
    Py_INCREF(ts);
    Py_INCREF(changes);
    Py_ssize_t count = PyTuple_GET_SIZE(changes);
    /* check = verify and (count == 1 or (count == 2 and changes[0].asset_id != changes[1].asset_id)) */
    int v = PyObject_IsTrue(verify);
    if (v < 0)
        goto done;
    int check = 0;
    if (v) {
        if (count == 1)
            check = 1;
        else if (count == 2) {
            PyObject *a0 = change_asset(PyTuple_GET_ITEM(changes, 0)), *a1;
            if (a0 == NULL || (a1 = change_asset(PyTuple_GET_ITEM(changes, 1))) == NULL)
                goto done;
            PyObject *ne = PyObject_RichCompare(a0, a1, Py_NE);
            if (ne == NULL)
                goto done;
            check = PyObject_IsTrue(ne);
            Py_DECREF(ne);
            if (check < 0)
                goto done;
        }
        /* last = None if check or not verify else {c.asset_id: c for c in changes} */
        if (!check) {
            last = PyDict_New();
            if (last == NULL)
                goto done;
            for (Py_ssize_t k = 0; k < count; k++) {
                PyObject *c = PyTuple_GET_ITEM(changes, k), *a = change_asset(c);
                if (a == NULL || PyDict_SetItem(last, a, c) < 0)
                    goto done;
            }
        }
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *change = PyTuple_GET_ITEM(changes, k); /* the tuple is held */
        PyObject *asset = change_asset(change);
        if (asset == NULL)
            goto done;
        PyObject *book = PyDict_GetItemWithError(books, asset);
        if (book == NULL) {
            if (PyErr_Occurred() || increment_attr(self, s_unknown_asset_updates) < 0)
                goto done;
            continue;
        }
        Py_INCREF(book); /* a hook may drop it from the dict */
        if (last != NULL) {
            PyObject *l = PyDict_GetItemWithError(last, asset);
            if (l == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetObject(PyExc_KeyError, asset);
                Py_DECREF(book);
                goto done;
            }
            check = l == change;
        }
        int r = apply_entry(book, change, check, ts, hook);
        Py_DECREF(book);
        if (r < 0)
            goto done;
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(last);
    Py_DECREF(books);
    Py_DECREF(hook);
    Py_DECREF(verify);
    Py_DECREF(ts);
    Py_DECREF(changes);
    return result;
}

/* --- module --------------------------------------------------------------------------------------- */

static PyObject *
clear_caches(PyObject *mod, PyObject *unused)
{
    for (int k = 0; k < SHORT_SLOTS; k++)
        Py_CLEAR(short_cache[k]);
    for (int k = 0; k < LONG_SLOTS; k++)
        Py_CLEAR(long_cache[k]);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode_price_change_frame", (PyCFunction)decode_price_change_frame, METH_O,
     "decode_price_change_frame(data, /)\n--\n\n"
     "The current-format price_change in one frame as msgspec decodes it, or None if not recognised."},
    {"apply_price_change", (PyCFunction)(void (*)(void))apply_price_change, METH_FASTCALL,
     "apply_price_change(bookset, event, /)\n--\n\n"
     "BookSet.apply_price_change, compiled."},
    {"bind_events", (PyCFunction)(void (*)(void))bind_events, METH_FASTCALL,
     "bind_events(PriceChange, PriceLevelChange, /)\n--\n\nThe event types to read and build."},
    {"bind_book", (PyCFunction)(void (*)(void))bind_book, METH_FASTCALL,
     "bind_book(Book, BookSet, Grid, apply_message_python, apply_entry_python, /)\n--\n\n"
     "The book types and the Python implementations to hand unusual messages and entries to."},
    {"decode_user_frame", (PyCFunction)decode_user_frame, METH_O,
     "decode_user_frame(data, /)\n--\n\n"
     "The order/trade events of one user-channel frame as user_messages' fast path gives them, or None."},
    {"bind_user_events", (PyCFunction)(void (*)(void))bind_user_events, METH_FASTCALL,
     "bind_user_events(OrderEvent, TradeEvent, MakerOrderFill, sides, order_event_types, order_statuses, "
     "order_types, trade_statuses, trader_sides, default_order_event_type, seconds_limit, micro, /)\n--\n\n"
     "The user-event types to build and the lookups of their conversions."},
    {"clear_caches", (PyCFunction)clear_caches, METH_NOARGS,
     "clear_caches()\n--\n\nDrop the decoder's shared strings."},
    {NULL, NULL, 0, NULL},
};

static void
module_free(void *mod)
{
    clear_caches(NULL, NULL);
    Py_CLEAR(PriceChange_T);
    Py_CLEAR(PriceLevelChange_T);
    Py_CLEAR(Book_T);
    Py_CLEAR(BookSet_T);
    Py_CLEAR(Grid_T);
    Py_CLEAR(py_apply_message);
    Py_CLEAR(py_apply_entry);
    Py_CLEAR(OrderEvent_T);
    Py_CLEAR(TradeEvent_T);
    Py_CLEAR(MakerFill_T);
    Py_CLEAR(default_order_event_type);
    for (int k = 0; k < NT; k++)
        table_clear(&user_tables[k]);
}

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "polyoms._speedups",
    "Compiled fast path of the market channel's price_change decode and apply (see polyoms.core.speedups).",
    -1, methods, NULL, NULL, NULL, module_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject **names[] = {&s_crossed_updates, &s_unknown_asset_updates, &s_awaiting_snapshot, &s_grid,
                          &s_best_bid_text, &s_best_ask_text, &s_bb, &s_ba, &s_check_best_exactly,
                          &s_get, &s_asset_id};
    const char *texts[] = {"crossed_updates", "unknown_asset_updates", "awaiting_snapshot", "_grid",
                           "best_bid_text", "best_ask_text", "_bb", "_ba", "_check_best_exactly",
                           "get", "asset_id"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (*names[k] == NULL && (*names[k] = PyUnicode_InternFromString(texts[k])) == NULL)
            return NULL;
    if (empty_str == NULL && (empty_str = PyUnicode_FromStringAndSize("", 0)) == NULL)
        return NULL;
    if (minus_one == NULL && (minus_one = PyLong_FromLong(-1)) == NULL)
        return NULL;
    if (one == NULL && (one = PyLong_FromLong(1)) == NULL)
        return NULL;
    if (init_user_keys() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "ABI", SPEEDUPS_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
