#!/usr/bin/env python3
"""Generates the typed C API of a FlatBuffers schema for the runtime in wire/fb.h.

Usage: gen_wire.py SCHEMA.fbs OUT.h OUT.c [--prefix rw_]

It reads the subset of the schema language rolloutd uses (namespace, file_identifier,
enums with an integer base type, unions of tables, tables whose fields are scalars,
enums, strings, tables, unions and vectors of those, root_type) and writes:
  OUT.h  builders (T_start/T_add_f/T_end), accessors (T_f, T_has_f, ...), enum
         constants and names, the root's finish/root/verify entry points;
  OUT.c  one verifier and one JSON printer per table.
Field slots follow the FlatBuffers rules: declaration order, a union takes two slots
(its type tag, then its value). Anything outside the subset is a hard error.
"""
import re
import sys

SCALARS = {
    # fbs type: (C type, size, fb_ reader/adder suffix, printf format)
    "bool": ("bool", 1, "bool", None),
    "byte": ("int8_t", 1, "i8", "%d"),
    "ubyte": ("uint8_t", 1, "u8", "%u"),
    "short": ("int16_t", 2, "i16", "%d"),
    "ushort": ("uint16_t", 2, "u16", "%u"),
    "int": ("int32_t", 4, "i32", "%d"),
    "uint": ("uint32_t", 4, "u32", "%u"),
    "long": ("int64_t", 8, "i64", "%lld"),
    "ulong": ("uint64_t", 8, "u64", "%llu"),
}
PRINT_CAST = {"%lld": "(long long)", "%llu": "(unsigned long long)", "%d": "(int)", "%u": "(unsigned)"}


class Schema:
    def __init__(self):
        self.namespace = ""
        self.ident = None
        self.enums = {}  # name -> (base, [(name, value)])
        self.unions = {}  # name -> [member table names]
        self.tables = {}  # name -> [(field, type, default, deprecated)]
        self.order = []
        self.root = None


def die(msg):
    sys.exit("gen_wire: " + msg)


def parse(text):
    text = re.sub(r"//[^\n]*", "", text)
    s = Schema()
    pos = 0
    tok = re.compile(
        r"\s*(?:(namespace)\s+([\w.]+)\s*;|(file_identifier)\s+\"(....)\"\s*;|(file_extension)\s+\"\w+\"\s*;"
        r"|(root_type)\s+(\w+)\s*;|(enum)\s+(\w+)\s*:\s*(\w+)\s*\{([^}]*)\}|(union)\s+(\w+)\s*\{([^}]*)\}"
        r"|(table)\s+(\w+)\s*\{([^}]*)\}|(\S))",
        re.S,
    )
    while True:
        m = tok.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        g = m.groups()
        if g[0]:
            s.namespace = g[1]
        elif g[2]:
            s.ident = g[3]
        elif g[4]:
            pass
        elif g[5]:
            s.root = g[6]
        elif g[7]:
            name, base, body = g[8], g[9], g[10]
            if base not in SCALARS or base == "bool":
                die("enum %s: base type %s not supported" % (name, base))
            vals, nxt = [], 0
            for item in [i.strip() for i in body.split(",") if i.strip()]:
                mm = re.fullmatch(r"(\w+)\s*(?:=\s*(-?\d+))?", item)
                if not mm:
                    die("enum %s: cannot parse %r" % (name, item))
                v = int(mm.group(2)) if mm.group(2) is not None else nxt
                vals.append((mm.group(1), v))
                nxt = v + 1
            s.enums[name] = (base, vals)
        elif g[11]:
            s.unions[g[12]] = [i.strip() for i in g[13].split(",") if i.strip()]
        elif g[14]:
            fields = []
            for decl in [d.strip() for d in g[16].split(";") if d.strip()]:
                mm = re.fullmatch(r"(\w+)\s*:\s*(\[?\w+\]?)\s*(?:=\s*([-\w.]+))?\s*(\(([^)]*)\))?", decl, re.S)
                if not mm:
                    die("table %s: cannot parse field %r" % (g[15], decl))
                attrs = mm.group(5) or ""
                fields.append((mm.group(1), mm.group(2), mm.group(3), "deprecated" in attrs))
            s.tables[g[15]] = fields
            s.order.append(g[15])
        elif g[17]:
            die("unexpected %r near offset %d" % (g[17], m.start(17)))
    if text[pos:].strip():
        die("trailing text: %r" % text[pos : pos + 40])
    if not s.ident or not s.root:
        die("schema needs file_identifier and root_type")
    return s


def kind_of(s, t):
    """Returns (kind, detail) for a field type."""
    if t.startswith("["):
        e = t[1:-1]
        if e == "string":
            return ("vec_str", None)
        if e in s.tables:
            return ("vec_table", e)
        if e in SCALARS and e != "bool":
            return ("vec_scalar", e)
        die("vector of %s not supported" % e)
    if t in SCALARS:
        return ("scalar", t)
    if t in s.enums:
        return ("enum", t)
    if t == "string":
        return ("string", None)
    if t in s.tables:
        return ("table", t)
    if t in s.unions:
        return ("union", t)
    die("unknown type %s" % t)


def slots(s, table):
    """Yields (field, type, default, deprecated, kind, detail, slot id)."""
    sid = 0
    for f, t, d, dep in s.tables[table]:
        k, det = kind_of(s, t)
        if k == "union":
            sid += 1  # the type tag takes the slot before the value
        yield f, t, d, dep, k, det, sid
        sid += 1


def c_default(s, k, det, d):
    if k == "scalar" and det == "bool":
        return "true" if d == "true" else "false"
    if k == "enum":
        base, vals = s.enums[det]
        if d is None:
            return "0"
        if re.fullmatch(r"-?\d+", d):
            return d
        for n, v in vals:
            if n == d:
                return str(v)
        die("default %s not in enum %s" % (d, det))
    if d is None:
        return "0"
    return d + ("ull" if SCALARS[det][1] == 8 and not d.startswith("-") else "")


def gen(s, P):
    h, c = [], []
    guard = "ROLLOUT_WIRE_GEN_H"
    h.append("/* Generated by wire/gen_wire.py from the schema: do not edit. */")
    h.append("#ifndef %s\n#define %s\n" % (guard, guard))
    h.append('#include <stdio.h>\n#include "fb.h"\n')
    h.append('#define %sFILE_IDENTIFIER "%s"\n' % (P, s.ident))
    for name, (base, vals) in s.enums.items():
        h.append("enum {")
        for n, v in vals:
            h.append("\t%s%s_%s = %d," % (P, name, n, v))
        h.append("};")
        h.append("/* Name of a %s value, or NULL when the value is not defined. */" % name)
        h.append("const char *%s%s_name(unsigned v);\n" % (P, name))
    for name, members in s.unions.items():
        h.append("enum {\n\t%s%s_NONE = 0," % (P, name))
        for i, m in enumerate(members, 1):
            h.append("\t%s%s_%s = %d," % (P, name, m, i))
        h.append("};")
        h.append("const char *%s%s_name(unsigned v);\n" % (P, name))
    for t in s.order:
        h.append("typedef struct %s%s %s%s_t; /* never defined: a table inside a verified buffer */" % (P, t, P, t))
    h.append("")
    for t in s.order:
        T = P + t
        h.append("/* ---- %s */" % t)
        h.append("static inline void %s_start(struct fb_builder *b)\n{\n\tfb_table_start(b);\n}" % T)
        h.append("static inline fb_ref_t %s_end(struct fb_builder *b)\n{\n\treturn fb_table_end(b);\n}" % T)
        for f, ty, d, dep, k, det, sid in slots(s, t):
            if dep:
                continue
            if k in ("scalar", "enum"):
                base = det if k == "scalar" else s.enums[det][0]
                ct, size, suf, _ = SCALARS[base]
                dv = c_default(s, k, det, d)
                h.append("static inline void %s_add_%s(struct fb_builder *b, %s v)\n{\n\tfb_table_add_%s(b, %d, v, %s);\n}" % (T, f, ct, suf, sid, dv))
                h.append("static inline %s %s_%s(const %s_t *t)\n{\n\treturn fb_read_%s(t, %d, %s);\n}" % (ct, T, f, T, suf, sid, dv))
                h.append("/* Overwrites the field in place (a buffer being prepared for sending, never one\n * another process can write). False when the builder left it out (it equalled the\n * default then): only a field written explicitly can be set. */")
                h.append("static inline bool %s_set_%s(%s_t *t, %s v)\n{\n\tuint8_t *p = (uint8_t *)fb_field(t, %d);\n\tif (!p)\n\t\treturn false;\n\tmemcpy(p, &v, %d);\n\treturn true;\n}" % (T, f, T, ct, sid, size))
            elif k == "union":
                h.append("static inline void %s_add_%s(struct fb_builder *b, uint8_t type, fb_ref_t v)\n{\n\tif (!v)\n\t\treturn;\n\tfb_table_add_u8(b, %d, type, 0);\n\tfb_table_add_ref(b, %d, v);\n}" % (T, f, sid - 1, sid))
                h.append("static inline uint8_t %s_%s_type(const %s_t *t)\n{\n\treturn fb_read_u8(t, %d, 0);\n}" % (T, f, T, sid - 1))
                h.append("static inline const void *%s_%s(const %s_t *t)\n{\n\treturn fb_read_ref(t, %d);\n}" % (T, f, T, sid))
                for m in s.unions[det]:
                    h.append("static inline const %s%s_t *%s_%s_as_%s(const %s_t *t)\n{\n\treturn %s_%s_type(t) == %s%s_%s ? (const %s%s_t *)fb_read_ref(t, %d) : NULL;\n}" % (P, m, T, f, m, T, T, f, P, det, m, P, m, sid))
            else:
                h.append("static inline void %s_add_%s(struct fb_builder *b, fb_ref_t v)\n{\n\tfb_table_add_ref(b, %d, v);\n}" % (T, f, sid))
                if k == "string":
                    h.append("/* NUL-terminated; NULL when absent. */")
                    h.append("static inline const char *%s_%s(const %s_t *t)\n{\n\treturn fb_read_string(t, %d, NULL);\n}" % (T, f, T, sid))
                    h.append("static inline size_t %s_%s_len(const %s_t *t)\n{\n\tsize_t n;\n\tfb_read_string(t, %d, &n);\n\treturn n;\n}" % (T, f, T, sid))
                elif k == "table":
                    h.append("static inline const %s%s_t *%s_%s(const %s_t *t)\n{\n\treturn (const %s%s_t *)fb_read_ref(t, %d);\n}" % (P, det, T, f, T, P, det, sid))
                elif k == "vec_scalar":
                    ct = SCALARS[det][0]
                    h.append("/* Element count; *p gets the first element (NULL when absent). */")
                    h.append("static inline size_t %s_%s(const %s_t *t, const %s **p)\n{\n\tconst void *e;\n\tsize_t n = fb_read_vec(t, %d, &e);\n\t*p = (const %s *)e;\n\treturn n;\n}" % (T, f, T, ct, sid, ct))
                elif k == "vec_str":
                    h.append("static inline fb_strvec_t %s_%s(const %s_t *t)\n{\n\treturn fb_read_refvec(t, %d);\n}" % (T, f, T, sid))
                elif k == "vec_table":
                    h.append("static inline fb_tabvec_t %s_%s(const %s_t *t)\n{\n\treturn fb_read_refvec(t, %d);\n}" % (T, f, T, sid))
                    h.append("static inline const %s%s_t *%s_%s_at(fb_tabvec_t v, size_t i)\n{\n\treturn (const %s%s_t *)fb_tabvec_at(v, i);\n}" % (P, det, T, f, P, det))
            h.append("static inline bool %s_has_%s(const %s_t *t)\n{\n\treturn fb_field(t, %d) != NULL;\n}" % (T, f, T, sid))
        h.append("")
    R = P + s.root
    h.append("/* ---- root: %s */" % s.root)
    h.append("/* Finishes the buffer with the file identifier; returns its size or a negative errno. */")
    h.append("static inline ssize_t %s_finish(struct fb_builder *b, fb_ref_t root)\n{\n\treturn fb_finish(b, root, %sFILE_IDENTIFIER);\n}" % (R, P))
    h.append("/* The root table of a buffer that passed %s_verify. */" % R)
    h.append("static inline const %s_t *%s_root(const void *buf)\n{\n\treturn (const %s_t *)fb_root(buf);\n}" % (R, R, R))
    h.append("/* The same, writable, for the _set_ helpers on a buffer this process owns. */")
    h.append("static inline %s_t *%s_root_mut(void *buf)\n{\n\treturn (%s_t *)fb_root(buf);\n}" % (R, R, R))
    h.append("/* Verifies buf[0..len): 0, or a negative enum fb_verify_error with res filled in. opts may be NULL. */")
    h.append("int %s_verify_ex(const void *buf, size_t len, const struct fb_verify_opts *opts, struct fb_verify_result *res);" % R)
    h.append("/* Verifies with the default limits: 0 or ROLLOUT_E_VERIFY. */")
    h.append("int %s_verify(const void *buf, size_t len);" % R)
    h.append("/* Prints a verified buffer as JSON in the shape of `flatc --json --strict-json`. Returns 0 or -errno. */")
    h.append("int %s_to_json(const void *buf, FILE *out);" % R)
    h.append("\n#endif")

    c.append("/* Generated by wire/gen_wire.py from the schema: do not edit. */")
    c.append('#include "rollout_wire_gen.h"\n#include "rollout/error.h"\n#include "fb_json.h"\n')
    for name, (base, vals) in s.enums.items():
        c.append("const char *%s%s_name(unsigned v)\n{\n\tswitch (v) {" % (P, name))
        for n, v in vals:
            c.append("\tcase %d:\n\t\treturn \"%s\";" % (v & 0xFFFFFFFF if v < 0 else v, n))
        c.append("\t}\n\treturn NULL;\n}\n")
    for name, members in s.unions.items():
        c.append("const char *%s%s_name(unsigned v)\n{\n\tswitch (v) {\n\tcase 0:\n\t\treturn \"NONE\";" % (P, name))
        for i, m in enumerate(members, 1):
            c.append("\tcase %d:\n\t\treturn \"%s\";" % (i, m))
        c.append("\t}\n\treturn NULL;\n}\n")
    for t in s.order:
        c.append("static int %sverify_%s(struct fb_verifier *v, uint32_t pos);" % (P.rstrip("_") + "__", t))
        c.append("static void %sjson_%s(struct fb_json *j, const uint8_t *t);" % (P, t))
    c.append("")
    VP = P.rstrip("_") + "__"
    for t in s.order:
        c.append("static int %sverify_%s(struct fb_verifier *v, uint32_t pos)\n{" % (VP, t))
        c.append("\tuint32_t vt, vs, ts;\n\tint64_t f, x;\n\tint rc;\n\t(void)f;\n\t(void)x;")
        c.append("\tif ((rc = fb__verify_table_start(v, pos, &vt, &vs, &ts)))\n\t\treturn rc;")
        for fname, ty, d, dep, k, det, sid in slots(s, t):
            if k in ("scalar", "enum"):
                base = det if k == "scalar" else s.enums[det][0]
                size = SCALARS[base][1]
                c.append("\tif ((f = fb__verify_field(v, pos, vt, vs, ts, %d, %d)) < 0)\n\t\treturn (int)f;" % (sid, size))
                if base == "bool":
                    c.append("\tif (f && v->buf[f] > 1)\n\t\treturn fb__verify_fail(v, FB_VERR_BOOL_INVALID, (uint32_t)f);")
                continue
            if k == "union":
                c.append("\t{\n\t\tint64_t ft = fb__verify_field(v, pos, vt, vs, ts, %d, 1);\n\t\tif (ft < 0)\n\t\t\treturn (int)ft;" % (sid - 1))
                c.append("\t\tif ((f = fb__verify_field(v, pos, vt, vs, ts, %d, 4)) < 0)\n\t\t\treturn (int)f;" % sid)
                c.append("\t\tuint8_t type = ft ? v->buf[ft] : 0;")
                c.append("\t\tif (!type && f)\n\t\t\treturn fb__verify_fail(v, FB_VERR_UNION_TYPE_MISSING, (uint32_t)f);")
                c.append("\t\tif (type && !f)\n\t\t\treturn fb__verify_fail(v, FB_VERR_UNION_VALUE_MISSING, (uint32_t)ft);")
                c.append("\t\tif (type) {\n\t\t\tif ((x = fb__verify_uoffset(v, (uint32_t)f)) < 0)\n\t\t\t\treturn (int)x;\n\t\t\tswitch (type) {")
                for i, m in enumerate(s.unions[det], 1):
                    c.append("\t\t\tcase %d:\n\t\t\t\trc = %sverify_%s(v, (uint32_t)x);\n\t\t\t\tbreak;" % (i, VP, m))
                c.append("\t\t\tdefault:\n\t\t\t\treturn fb__verify_fail(v, FB_VERR_UNION_TYPE_UNKNOWN, (uint32_t)ft);\n\t\t\t}\n\t\t\tif (rc)\n\t\t\t\treturn rc;\n\t\t}\n\t}")
                continue
            c.append("\tif ((f = fb__verify_field(v, pos, vt, vs, ts, %d, 4)) < 0)\n\t\treturn (int)f;" % sid)
            c.append("\tif (f) {\n\t\tif ((x = fb__verify_uoffset(v, (uint32_t)f)) < 0)\n\t\t\treturn (int)x;")
            if k == "string":
                c.append("\t\tif ((rc = fb__verify_string(v, (uint32_t)x)))\n\t\t\treturn rc;")
            elif k == "table":
                c.append("\t\tif ((rc = %sverify_%s(v, (uint32_t)x)))\n\t\t\treturn rc;" % (VP, det))
            elif k == "vec_scalar":
                c.append("\t\tuint32_t n;\n\t\tif ((rc = fb__verify_vector(v, (uint32_t)x, %d, &n)))\n\t\t\treturn rc;" % SCALARS[det][1])
            else:
                c.append("\t\tuint32_t n;\n\t\tif ((rc = fb__verify_vector(v, (uint32_t)x, 4, &n)))\n\t\t\treturn rc;")
                c.append("\t\tif (n > v->max_vec_len)\n\t\t\treturn fb__verify_fail(v, FB_VERR_VECTOR_TOO_LONG, (uint32_t)x);")
                c.append("\t\tfor (uint32_t i = 0; i < n; i++) {\n\t\t\tint64_t e = fb__verify_uoffset(v, (uint32_t)x + 4 + 4 * i);\n\t\t\tif (e < 0)\n\t\t\t\treturn (int)e;")
                if k == "vec_str":
                    c.append("\t\t\tif ((rc = fb__verify_string(v, (uint32_t)e)))\n\t\t\t\treturn rc;")
                else:
                    c.append("\t\t\tif ((rc = %sverify_%s(v, (uint32_t)e)))\n\t\t\t\treturn rc;" % (VP, det))
                c.append("\t\t}")
            c.append("\t}")
        c.append("\tfb__verify_table_end(v);\n\treturn 0;\n}\n")
    # JSON printers
    for t in s.order:
        c.append("static void %sjson_%s(struct fb_json *j, const uint8_t *t)\n{\n\tfb_json_open(j, '{');" % (P, t))
        for fname, ty, d, dep, k, det, sid in slots(s, t):
            if k in ("scalar", "enum"):
                base = det if k == "scalar" else s.enums[det][0]
                ct, size, suf, fmt = SCALARS[base]
                c.append("\tif (fb_field(t, %d)) {\n\t\tfb_json_key(j, \"%s\");" % (sid, fname))
                if base == "bool":
                    c.append("\t\tfb_json_raw(j, fb_read_bool(t, %d, false) ? \"true\" : \"false\");" % sid)
                elif k == "enum":
                    c.append("\t\t%s ev = fb_read_%s(t, %d, 0);\n\t\tconst char *en = %s%s_name((unsigned)ev);" % (ct, suf, sid, P, det))
                    c.append("\t\tif (en)\n\t\t\tfb_json_str(j, en, strlen(en));\n\t\telse\n\t\t\tfb_json_fmt(j, \"%s\", %sev);" % (fmt, PRINT_CAST[fmt]))
                else:
                    c.append("\t\tfb_json_fmt(j, \"%s\", %sfb_read_%s(t, %d, 0));" % (fmt, PRINT_CAST[fmt], suf, sid))
                c.append("\t}")
            elif k == "union":
                c.append("\tif (fb_field(t, %d)) {\n\t\tuint8_t ut = fb_read_u8(t, %d, 0);\n\t\tconst char *un = %s%s_name(ut);" % (sid - 1, sid - 1, P, det))
                c.append("\t\tfb_json_key(j, \"%s_type\");\n\t\tif (un)\n\t\t\tfb_json_str(j, un, strlen(un));\n\t\telse\n\t\t\tfb_json_fmt(j, \"%%u\", (unsigned)ut);" % fname)
                c.append("\t\tconst uint8_t *uv = fb_read_ref(t, %d);\n\t\tif (uv) {\n\t\t\tfb_json_key(j, \"%s\");\n\t\t\tswitch (ut) {" % (sid, fname))
                for i, m in enumerate(s.unions[det], 1):
                    c.append("\t\t\tcase %d:\n\t\t\t\t%sjson_%s(j, uv);\n\t\t\t\tbreak;" % (i, P, m))
                c.append("\t\t\tdefault:\n\t\t\t\tfb_json_raw(j, \"null\");\n\t\t\t}\n\t\t}\n\t}")
            elif k == "string":
                c.append("\tif (fb_field(t, %d)) {\n\t\tsize_t n;\n\t\tconst char *sv = fb_read_string(t, %d, &n);\n\t\tfb_json_key(j, \"%s\");\n\t\tfb_json_str(j, sv, n);\n\t}" % (sid, sid, fname))
            elif k == "table":
                c.append("\tif (fb_field(t, %d)) {\n\t\tfb_json_key(j, \"%s\");\n\t\t%sjson_%s(j, fb_read_ref(t, %d));\n\t}" % (sid, fname, P, det, sid))
            elif k == "vec_scalar":
                ct, size, suf, fmt = SCALARS[det]
                c.append("\tif (fb_field(t, %d)) {\n\t\tconst void *e;\n\t\tsize_t n = fb_read_vec(t, %d, &e);\n\t\tfb_json_key(j, \"%s\");\n\t\tfb_json_open(j, '[');" % (sid, sid, fname))
                c.append("\t\tfor (size_t i = 0; i < n; i++) {\n\t\t\t%s ev;\n\t\t\tmemcpy(&ev, (const uint8_t *)e + i * %d, %d);\n\t\t\tfb_json_item(j);\n\t\t\tfb_json_fmt(j, \"%s\", %sev);\n\t\t}\n\t\tfb_json_close(j, ']');\n\t}" % (ct, size, size, fmt, PRINT_CAST[fmt]))
            else:
                c.append("\tif (fb_field(t, %d)) {\n\t\tfb_strvec_t sv = fb_read_refvec(t, %d);\n\t\tfb_json_key(j, \"%s\");\n\t\tfb_json_open(j, '[');\n\t\tfor (size_t i = 0; i < sv.len; i++) {\n\t\t\tfb_json_item(j);" % (sid, sid, fname))
                if k == "vec_str":
                    c.append("\t\t\tfb_json_str(j, fb_strvec_at(sv, i), fb_strvec_at_len(sv, i));")
                else:
                    c.append("\t\t\t%sjson_%s(j, fb_tabvec_at(sv, i));" % (P, det))
                c.append("\t\t}\n\t\tfb_json_close(j, ']');\n\t}")
        c.append("\tfb_json_close(j, '}');\n}\n")
    c.append("int %s_verify_ex(const void *buf, size_t len, const struct fb_verify_opts *opts, struct fb_verify_result *res)\n{" % R)
    c.append("\tstruct fb_verify_opts d = {0};\n\tif (!opts)\n\t\topts = &d;")
    c.append("\tstruct fb_verifier v = {\n\t\t.buf = (const uint8_t *)buf,\n\t\t.len = (uint32_t)len,\n\t\t.depth_left = opts->max_depth ? opts->max_depth : 16,\n\t\t.tables_left = opts->max_tables ? opts->max_tables : 100000,\n\t\t.max_vec_len = opts->max_vec_len ? opts->max_vec_len : 65536,\n\t};")
    c.append("\tuint64_t max = opts->max_size ? opts->max_size : (64u << 20);\n\tint rc = 0;")
    c.append("\tif (!buf)\n\t\trc = fb__verify_fail(&v, FB_VERR_BUFFER_NULL, 0);")
    c.append("\telse if ((uintptr_t)buf & 7)\n\t\trc = fb__verify_fail(&v, FB_VERR_BUFFER_MISALIGNED, 0);")
    c.append("\telse if (len < 8)\n\t\trc = fb__verify_fail(&v, FB_VERR_BUFFER_TOO_SMALL, 0);")
    c.append("\telse if (len > max || len > 0x7fffffffu)\n\t\trc = fb__verify_fail(&v, FB_VERR_BUFFER_TOO_LARGE, 0);")
    c.append("\telse if (memcmp(v.buf + 4, %sFILE_IDENTIFIER, 4) != 0)\n\t\trc = fb__verify_fail(&v, FB_VERR_IDENTIFIER_MISMATCH, 4);" % P)
    c.append("\telse {\n\t\tint64_t root = fb__verify_uoffset(&v, 0);\n\t\trc = root < 0 ? (int)root : %sverify_%s(&v, (uint32_t)root);\n\t}" % (VP, s.root))
    c.append("\tif (res) {\n\t\tres->error = v.error;\n\t\tres->offset = v.offset;\n\t}\n\treturn rc;\n}\n")
    c.append("int %s_verify(const void *buf, size_t len)\n{\n\treturn %s_verify_ex(buf, len, NULL, NULL) ? ROLLOUT_E_VERIFY : 0;\n}\n" % (R, R))
    c.append("int %s_to_json(const void *buf, FILE *out)\n{\n\tstruct fb_json j;\n\tfb_json_init(&j, out);\n\t%sjson_%s(&j, fb_root(buf));\n\treturn fb_json_finish(&j);\n}" % (R, P, s.root))
    return "\n".join(h) + "\n", "\n".join(c) + "\n"


def main():
    args = sys.argv[1:]
    prefix = "rw_"
    if "--prefix" in args:
        i = args.index("--prefix")
        prefix = args[i + 1]
        del args[i : i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    with open(args[0]) as f:
        schema = parse(f.read())
    hdr, src = gen(schema, prefix)
    for path, text in ((args[1], hdr), (args[2], src)):
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
