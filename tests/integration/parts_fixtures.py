"""MIME messages and the expectations for the .parts directories
(tests/integration/test_parts.py) and the messages of the .search tests
(tests/integration/test_search.py).

The builders assemble the raw CRLF bytes themselves (so the bytes of every
section, an attached message's above all, are known exactly), with the
email package's encoders (base64 lines, quoted-printable, RFC 2047 words,
RFC 2231 values).  The expectation for a message comes from parsing those
bytes again with the email package (compat32): entries(), the oracle, walks
the tree numbering sections as IMAP does and names each leaf part as imapfs
must.  Every builder also says which entry names it means (`expect`,
`nested`): the oracle must agree with them (test_parts.py checks that, and
checks each leaf against the server's BODY.PEEK[SECTION] and BODYSTRUCTURE).

Builders return dicts like write_helpers.make_msg(): raw, msgid (with <>),
subject, when (UTC datetime), sha; plus key, expect (entry names of
NAME.eml.parts in section order), nested ({entry name of an attached
message: entry names of its .parts directory}) and sections_raw ({section:
exact bytes of BODY[section]} for attached messages).
"""

import base64
import datetime as dt
import email
import email.header
import email.policy
import email.quoprimime
import email.utils
import re
import urllib.parse

import helpers

UTC = dt.timezone.utc
CRLF = b"\r\n"
DOMAIN = "imapfs-test.localhost"
NAME_MAX = 255


# -- raw MIME assembly -------------------------------------------------------------

def b64(data):
    """base64 body lines (76 columns), CRLF between, none at the end."""
    return base64.encodebytes(data).rstrip(b"\n").replace(b"\n", CRLF)


def qp(text, charset):
    """quoted-printable body of `text` in `charset` (CRLF line breaks)."""
    raw = text.encode(charset)
    enc = email.quoprimime.body_encode(raw.decode("latin-1"), maxlinelen=76, eol="\r\n")
    return enc.encode("ascii")


def rfc2231(value, charset="utf-8"):
    """An RFC 2231 extended value: utf-8''%E2%82%AC.pdf"""
    return email.utils.encode_rfc2231(value, charset)


def rfc2047(value):
    """An RFC 2047 encoded word (base64, UTF-8)."""
    return email.header.Header(value, "utf-8").encode()


def leaf(ctype, body, cte=None, disp=None, extra=()):
    """A non-multipart part: {"h": header lines, "b": body bytes (encoded)}."""
    h = ["Content-Type: " + ctype]
    if cte:
        h.append("Content-Transfer-Encoding: " + cte)
    if disp:
        h.append("Content-Disposition: " + disp)
    h += list(extra)
    return {"h": [x.encode("utf-8") for x in h], "b": body}


def text_part(text, subtype="plain", charset="utf-8", cte=None, disp=None):
    b = text.encode(charset)
    if cte is None:
        cte = "7bit" if all(c < 0x80 for c in b) else "8bit"
    if cte == "quoted-printable":
        b = qp(text, charset)
    return leaf("text/%s; charset=%s" % (subtype, charset), b, cte, disp)


def binary_part(ctype, data, disp=None):
    return leaf(ctype, b64(data), "base64", disp)


def multipart(subtype, children, boundary, close=True, epilogue=b""):
    body = b""
    for c in children:
        body += b"--" + boundary.encode() + CRLF + render(c) + CRLF
    if close:
        body += b"--" + boundary.encode() + b"--" + CRLF + epilogue
    else:
        body = body[:-2]        # the last part runs to the end of the message
    return {"h": [('Content-Type: multipart/%s; boundary="%s"' % (subtype, boundary))
                  .encode()], "b": body}


def message_part(inner_raw, disp=None, ctype="message/rfc822"):
    return {"h": [("Content-Type: " + ctype).encode()] +
            ([("Content-Disposition: " + disp).encode()] if disp else []),
            "b": inner_raw}


def render(part):
    return CRLF.join(part["h"]) + CRLF + CRLF + part["b"]


def message(top, *, subject, msgid, when, frm="Sender <sender@example.org>",
            to="Alice <alice@example.org>", extra=()):
    """Raw message: RFC 5322 header + `top` (a leaf() or multipart())."""
    h = ["From: " + frm, "To: " + to,
         "Subject: " + (subject if subject.isascii() else rfc2047(subject)),
         "Date: " + email.utils.format_datetime(when),
         "Message-ID: <%s>" % msgid, "MIME-Version: 1.0"] + list(extra)
    return CRLF.join(x.encode() for x in h) + CRLF + render(top)


def pdfish(n, seed=1):
    """PDF-looking binary with NUL bytes and every byte value."""
    body = bytes((i * 37 + seed) % 256 for i in range(n))
    return b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n\0\0\0" + body + b"\n%%EOF\n\0"


def jpegish(n, seed=2):
    return b"\xff\xd8\xff\xe0\0\x10JFIF\0" + bytes((i * 91 + seed) % 256
                                                  for i in range(n)) + b"\xff\xd9"


# -- the samples ---------------------------------------------------------------------

def _record(key, token, i, top, subject, when, expect, nested=None, sections_raw=None,
            **kw):
    msgid = "%s.%s.%d@%s" % (token, key, i, DOMAIN)
    raw = message(top, subject=subject, msgid=msgid, when=when, **kw)
    return {"key": key, "raw": raw, "msgid": "<%s>" % msgid, "subject": subject,
            "when": when, "sha": helpers.sha256(raw), "expect": list(expect),
            "nested": dict(nested or {}), "sections_raw": dict(sections_raw or {})}


HTML = "<html><body><p>Hello <b>world</b>, see the report.</p></body></html>\r\n"
LATIN = ("Gr\u00fc\u00dfe aus K\u00f6ln! \u00c7a va tr\u00e8s bien, na\u00efve "
         "fa\u00e7ade =equals= and a long line that certainly needs a soft line "
         "break because it goes on and on past seventy-six columns.\r\nZweite "
         "Zeile mit \u00e4\u00f6\u00fc\u00c4\u00d6\u00dc\u00df.\r\n")
EURO_LONG = "\u20ac" * 100 + ".bin"


def long_euro_disposition():
    """filename*0*= ... filename*4*=: 100 x U+20AC + .bin over 5 pieces."""
    enc = urllib.parse.quote(EURO_LONG.encode("utf-8"), safe="")
    # pieces on a %XX boundary: 20 euros (180 chars) each, ".bin" in the last
    pieces = [enc[i:i + 180] for i in range(0, 900, 180)]
    pieces[-1] += enc[900:]
    params = ["filename*0*=utf-8''" + pieces[0]]
    params += ["filename*%d*=%s" % (n, p) for n, p in enumerate(pieces[1:], 1)]
    return "attachment;\r\n " + ";\r\n ".join(params)


def cut_name(entry):
    b = entry.encode("utf-8")[:NAME_MAX]
    while b:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            b = b[:-1]
    return ""


def build_mixed(token, i=0):
    """multipart/mixed: text/plain + text/html alternative, named and unnamed
    PDF and JPEG attachments (binary, NUL bytes)."""
    top = multipart("mixed", [
        multipart("alternative", [
            text_part("Hello world,\r\nsee the report.\r\n"),
            text_part(HTML, "html")], "alt-" + token),
        binary_part("application/pdf", pdfish(5000),
                    'attachment; filename="report.pdf"'),
        binary_part('image/jpeg; name="photo.jpg"', jpegish(3000)),
        binary_part("application/pdf", pdfish(700, 5), "attachment"),
        binary_part("image/jpeg", jpegish(500, 7), "inline"),
    ], "mix-" + token)
    return _record("mixed", token, i, top, "Report and photo",
                   dt.datetime(2026, 11, 5, 10, 0, 0, tzinfo=UTC),
                   ["1.1 text.txt", "1.2 text.html", "2 report.pdf", "3 photo.jpg",
                    "4 application.pdf", "5 image.jpg"])


def build_names(token, i=0):
    """File names: RFC 2231 (plain and continued), RFC 2047, whitespace and
    control characters, '/', a name cut to 255 bytes, Disposition before
    Content-Type name, and the TYPE.EXT names of unnamed parts; a
    quoted-printable ISO-8859-1 text part."""
    top = multipart("mixed", [
        text_part(LATIN, charset="iso-8859-1", cte="quoted-printable"),
        binary_part("application/pdf", pdfish(1200, 3),
                    "attachment; filename*=" + rfc2231("\u20ac.pdf")),
        binary_part("application/octet-stream", b"\0\1\2 continued\0",
                    "attachment;\r\n filename*0*=utf-8''Quarterly%20;\r\n"
                    " filename*1*=Bericht%20%C3%BC.bin"),
        binary_part('image/png; name="%s"' % rfc2047("Gr\u00fc\u00dfe.png"),
                    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256))),
        text_part("slash\r\n", disp='attachment; filename="  dir/sub   name.txt "'),
        text_part("tabs\r\n", disp="attachment; filename*=" +
                  rfc2231("tab\t\t\nname\x01.txt")),
        binary_part("application/octet-stream", b"euro" * 50, long_euro_disposition()),
        text_part("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "calendar"),
        binary_part("application/octet-stream", b"\0" * 64),
        binary_part("image/gif", b"GIF89a\0\0\0\0" + bytes(range(40))),
        binary_part("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(40, 80))),
        text_part("a,b\r\n1,2\r\n", "csv"),
        binary_part("application/x-tar", b"ustar\0" * 10),
        binary_part('application/pdf; name="ct.pdf"', pdfish(300, 9),
                    'attachment; filename="cd.pdf"'),
    ], "nam-" + token)
    return _record("names", token, i, top, "Names of parts",
                   dt.datetime(2026, 11, 6, 11, 0, 0, tzinfo=UTC),
                   ["1 text.txt", "2 \u20ac.pdf", "3 Quarterly Bericht \u00fc.bin",
                    "4 Gr\u00fc\u00dfe.png", "5 dir\u2215sub name.txt", "6 tab name .txt",
                    cut_name("7 " + EURO_LONG), "8 text.ics", "9 application.bin",
                    "10 image.gif", "11 image.png", "12 text.csv",
                    "13 application.x-tar", "14 cd.pdf"])


def build_forward(token, i=0):
    """Attached messages: a multipart one (with an attachment and a message
    of its own), a single-part one named fwd.eml, one named `notes`."""
    deep = message(text_part("innermost\r\n"), subject="Innermost",
                   msgid="%s.deep.%d@%s" % (token, i, DOMAIN),
                   when=dt.datetime(2026, 1, 3, 8, 0, 0, tzinfo=UTC))
    inner1 = message(multipart("mixed", [
        text_part("inner text\r\n"),
        binary_part("application/pdf", pdfish(900, 11), 'attachment; filename="x.pdf"'),
        message_part(deep),
    ], "in1-" + token), subject="Inner one", msgid="%s.in1.%d@%s" % (token, i, DOMAIN),
        when=dt.datetime(2026, 1, 2, 8, 0, 0, tzinfo=UTC))
    inner2 = message(text_part("just text\r\n"), subject="Inner two",
                     msgid="%s.in2.%d@%s" % (token, i, DOMAIN),
                     when=dt.datetime(2026, 1, 4, 8, 0, 0, tzinfo=UTC))
    inner3 = message(text_part("<p>notes</p>\r\n", "html"), subject="Inner three",
                     msgid="%s.in3.%d@%s" % (token, i, DOMAIN),
                     when=dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC))
    top = multipart("mixed", [
        text_part("see the attached messages\r\n"),
        message_part(inner1),
        message_part(inner2, disp='attachment; filename="fwd.eml"'),
        message_part(inner3, ctype='message/rfc822; name="notes"'),
    ], "fwd-" + token)
    return _record("forward", token, i, top, "Fwd: three messages",
                   dt.datetime(2026, 11, 7, 12, 0, 0, tzinfo=UTC),
                   ["1 text.txt", "2 message.eml", "3 fwd.eml", "4 notes.eml"],
                   nested={"2 message.eml": ["2.1 text.txt", "2.2 x.pdf", "2.3 message.eml"],
                           "3 fwd.eml": ["3.1 text.txt"],
                           "4 notes.eml": ["4.1 text.html"],
                           "2 message.eml/2.3 message.eml": ["2.3.1 text.txt"]},
                   sections_raw={"2": inner1, "3": inner2, "4": inner3, "2.3": deep})


def build_single(token, i=0):
    return _record("single", token, i, text_part("only text, nothing attached\r\n"),
                   "Just text", dt.datetime(2026, 11, 8, 9, 30, 0, tzinfo=UTC),
                   ["1 text.txt"])


def build_single_pdf(token, i=0):
    """A message whose body is one named PDF (base64)."""
    top = binary_part('application/pdf; name="whole.pdf"', pdfish(2500, 13))
    return _record("single_pdf", token, i, top, "Only a PDF",
                   dt.datetime(2026, 11, 9, 9, 30, 0, tzinfo=UTC), ["1 whole.pdf"])


def build_big(token, i=0, size=10 * 1024 * 1024):
    """A 2 KB text part and a ~10 MB binary attachment."""
    text = ("%s small text part line\r\n" % token) * 64
    text = text[:2048]
    top = multipart("mixed", [
        text_part(text),
        binary_part("application/octet-stream", bytes((j * 7 + 3) % 251 for j in range(size)),
                    'attachment; filename="big.bin"'),
    ], "big-" + token)
    return _record("big", token, i, top, "Big attachment",
                   dt.datetime(2026, 11, 10, 9, 0, 0, tzinfo=UTC),
                   ["1 text.txt", "2 big.bin"])


# malformed samples: `good` names the part (and its bytes) that is intact

def build_unclosed(token, i=0):
    top = multipart("mixed", [
        text_part("before the unclosed part\r\n"),
        binary_part("application/pdf", pdfish(800, 17), 'attachment; filename="cut.pdf"'),
    ], "unc-" + token, close=False)
    r = _record("unclosed", token, i, top, "Malformed unclosed multipart",
                dt.datetime(2026, 11, 11, 9, 0, 0, tzinfo=UTC),
                ["1 text.txt", "2 cut.pdf"])
    r["good"] = ("1 text.txt", b"before the unclosed part\r\n")
    return r


def build_bad_base64(token, i=0):
    bad = leaf("application/pdf", b"JVBERi0xLjQK@@@!!\r\n*&^%$#==ab=c\r\nQUJD\r\n===",
               "base64", 'attachment; filename="broken.pdf"')
    top = multipart("mixed", [text_part("intact text\r\n"), bad], "bad-" + token)
    r = _record("bad_base64", token, i, top, "Malformed base64",
                dt.datetime(2026, 11, 12, 9, 0, 0, tzinfo=UTC),
                ["1 text.txt", "2 broken.pdf"])
    r["good"] = ("1 text.txt", b"intact text\r\n")
    return r


def build_deep(token, i=0, depth=60):
    """Multiparts nested `depth` deep, a text part at the bottom; a second
    top-level part after the chain."""
    node = text_part("at the bottom\r\n")
    for d in range(depth - 1):
        node = multipart("mixed", [node], "d%d-%s" % (d, token))
    top = multipart("mixed", [node, text_part("after the chain\r\n",
                                              disp='attachment; filename="after.txt"')],
                    "top-" + token)
    r = _record("deep", token, i, top, "Malformed deep nesting",
                dt.datetime(2026, 11, 13, 9, 0, 0, tzinfo=UTC),
                [".".join(["1"] * depth) + " text.txt", "2 after.txt"])
    r["good"] = ("2 after.txt", b"after the chain\r\n")
    return r


GOOD = [build_mixed, build_names, build_forward, build_single, build_single_pdf]
MALFORMED = [build_unclosed, build_bad_base64, build_deep]


# -- the oracle (email package) --------------------------------------------------------

def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def section_key(section):
    return tuple(int(x) for x in section.split("."))


def _param(part, name, header):
    v = part.get_param(name, header=header)
    if v is None:
        return None
    if isinstance(v, tuple):        # RFC 2231 (continuations joined by the parser)
        v = email.utils.collapse_rfc2231_value(v, errors="replace",
                                               fallback_charset="utf-8")
    else:
        v = email.utils.unquote(v)
    if "=?" in v:                   # RFC 2047 words (in a quoted parameter)
        v = str(email.header.make_header(email.header.decode_header(v)))
    return v


def file_name(part):
    """The decoded, folded file name of a part, or None."""
    v = _param(part, "filename", "content-disposition")
    if v is None:
        v = _param(part, "name", "content-type")
    if v is None:
        return None
    v = re.sub(r"[\s\x00-\x1f\x7f]+", " ", v).strip(" ")
    v = v.replace("/", "\u2215")
    return v or None


EXT = {"plain": "txt", "html": "html", "jpeg": "jpg", "png": "png", "gif": "gif",
       "pdf": "pdf", "calendar": "ics", "octet-stream": "bin"}


def is_message(part):
    return part.get_content_type() == "message/rfc822"


def entry_name(section, part):
    fn = file_name(part)
    if is_message(part):
        name = fn or "message"
        if not name.endswith(".eml"):
            name += ".eml"
    elif fn:
        name = fn
    else:
        sub = part.get_content_subtype()
        name = "%s.%s" % (part.get_content_maintype(), EXT.get(sub, sub))
    return cut_name("%s %s" % (section, name))


def _walk(part, section, out):
    if part.get_content_maintype() == "multipart":
        for n, child in enumerate(part.get_payload(), 1):
            _walk(child, "%s.%d" % (section, n), out)
    else:
        out.append((section, part))


def leaves(msg, prefix=""):
    """[(section, part)] of the leaf parts of a message (top level: prefix
    ""; an attached message at section S: prefix S)."""
    out = []
    if msg.get_content_maintype() == "multipart":
        for n, child in enumerate(msg.get_payload(), 1):
            _walk(child, "%s.%d" % (prefix, n) if prefix else str(n), out)
    else:
        out.append((prefix + ".1" if prefix else "1", msg))
    return out


def entries(msg, prefix=""):
    """The oracle: [{section, name, part, message (bool), content}] in
    section order; content is the decoded body (None for an attached
    message: its raw section bytes come from the server)."""
    out = []
    for section, part in sorted(leaves(msg, prefix), key=lambda x: section_key(x[0])):
        m = is_message(part)
        out.append({"section": section, "name": entry_name(section, part), "part": part,
                    "message": m, "content": None if m else part.get_payload(decode=True),
                    "ctype": part.get_content_type(),
                    "cte": (part.get("Content-Transfer-Encoding") or "7bit").strip().lower()})
    return out


def inner_message(part):
    """The message inside a message/rfc822 part."""
    return part.get_payload()[0]


def all_dirs(raw):
    """{relative dir ("" = NAME.eml.parts, "2 message.eml" = its .parts,
    "2 message.eml/2.3 message.eml" ...): [entries]} for every parts
    directory of a message."""
    out = {}
    todo = [("", parse(raw), "")]
    while todo:
        rel, msg, prefix = todo.pop()
        es = entries(msg, prefix)
        out[rel] = es
        for e in es:
            if e["message"]:
                todo.append(((rel + "/" if rel else "") + e["name"],
                             inner_message(e["part"]), e["section"]))
    return out


def dir_path(parts_dir, rel):
    """Mount path of a parts directory: NAME.eml.parts[/S X.eml.parts...]."""
    p = parts_dir
    for comp in rel.split("/") if rel else ():
        p = p + "/" + comp + ".parts"
    return p


def decode_cte(data, cte):
    """What a part file holds, from the server's BODY[SECTION] bytes."""
    cte = (cte or "7bit").lower()
    if cte == "base64":
        return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", data) + b"==")
    if cte == "quoted-printable":
        import quopri
        return quopri.decodestring(data)
    return data


# -- the server's view: BODY.PEEK[SECTION], BODYSTRUCTURE ----------------------------

def fetch_section(m, uid, section):
    """BODY.PEEK[section] of a UID in the selected folder (bytes)."""
    from helpers import mailgen
    return mailgen.fetch_body(m, uid, "BODY.PEEK[%s]" % section)


def _join_response(data):
    out = b""
    for item in data:
        if isinstance(item, tuple):
            out += item[0] + CRLF + item[1]
        elif item:
            out += item
    return out


def _sexp(buf, pos=0):
    """Parse one IMAP value at buf[pos:]: list, bytes (string), None (NIL),
    or an atom (bytes).  Returns (value, new pos)."""
    while buf[pos:pos + 1] == b" ":
        pos += 1
    c = buf[pos:pos + 1]
    if c == b"(":
        pos += 1
        items = []
        while True:
            while buf[pos:pos + 1] == b" ":
                pos += 1
            if buf[pos:pos + 1] == b")":
                return items, pos + 1
            if pos >= len(buf):
                raise ValueError("unterminated list")
            v, pos = _sexp(buf, pos)
            items.append(v)
    if c == b'"':
        pos += 1
        out = b""
        while buf[pos:pos + 1] != b'"':
            if pos >= len(buf):
                raise ValueError("unterminated string")
            if buf[pos:pos + 1] == b"\\":
                pos += 1
            out += buf[pos:pos + 1]
            pos += 1
        return out, pos + 1
    if c == b"{":
        mm = re.match(rb"\{(\d+)\+?\}\r\n", buf[pos:])
        n = int(mm.group(1))
        start = pos + mm.end()
        return buf[start:start + n], start + n
    mm = re.match(rb"[^ ()\"]+", buf[pos:])
    if not mm:
        raise ValueError("bad token at %d: %r" % (pos, buf[pos:pos + 20]))
    tok = mm.group(0)
    return (None if tok.upper() == b"NIL" else tok), pos + mm.end()


def bodystructure(m, uid):
    """The parsed BODYSTRUCTURE of a UID in the selected folder."""
    from helpers import mailgen
    data = mailgen.check(m.uid("FETCH", str(uid), "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE")
    buf = _join_response(data)
    i = buf.index(b"(")
    top, _ = _sexp(buf, i)
    for k, v in zip(top[::2], top[1::2]):
        if isinstance(k, bytes) and k.upper() == b"BODYSTRUCTURE":
            return v
    raise RuntimeError("no BODYSTRUCTURE in %r" % buf[:300])


def _bs_walk(b, section, out):
    if isinstance(b[0], list):
        n = 0
        for child in b:
            if not isinstance(child, list):
                break
            n += 1
            _bs_walk(child, "%s.%d" % (section, n) if section else str(n), out)
    else:
        out.append((section or "1", (b[0] + b"/" + b[1]).decode().lower(), b))


def server_leaves(bs, prefix=""):
    """[(section, type/subtype)] of the leaves per the server's
    BODYSTRUCTURE (an attached message's body: server_leaves(its body, S))."""
    out = []
    if isinstance(bs[0], list):
        _bs_walk(bs, prefix, out)
    else:
        out.append((prefix + ".1" if prefix else "1", (bs[0] + b"/" + bs[1]).decode().lower(), bs))
    return out


def server_dirs(bs):
    """{relative dir: [(section, type)]} like all_dirs(), from BODYSTRUCTURE
    (sections and types only: the names are imapfs's business)."""
    out = {}
    todo = [("", bs, "")]
    while todo:
        rel, b, prefix = todo.pop()
        ls = server_leaves(b, prefix)
        out[rel] = [(s, t) for s, t, _ in ls]
        for s, t, node in ls:
            if t == "message/rfc822" and len(node) > 8 and isinstance(node[8], list):
                todo.append(((rel + "/" if rel else "") + s, node[8], s))
    return out


# -- search samples (test_search.py) -------------------------------------------------

SEARCH_ROWS = [
    # from, subject, date, body, flags
    ("alice@example.org", "Invoice October", (2026, 10, 3), "please pay soon", ["\\Seen"]),
    ("bob@example.org", "Lunch on Friday", (2026, 11, 2), "Rechnung anbei, danke", []),
    ("Alice Cooper <acooper@example.net>", "Gr\u00fc\u00dfe aus K\u00f6ln", (2026, 11, 5),
     "hello from the river", ["\\Flagged"]),
    ("carol@example.com", "invoice reminder", (2026, 11, 10), "second notice",
     ["\\Seen", "\\Flagged"]),
    ("bob@example.org", "Meeting notes", (2026, 10, 20), "agenda items", ["\\Flagged"]),
    ("dave@example.com", "Holiday photos", (2026, 11, 20), "sunny weather", ["\\Seen"]),
]

# query -> indices of SEARCH_ROWS that match
SEARCH_QUERIES = {
    'FROM "alice"': {0, 2},
    "SUBJECT invoice": {0, 3},
    "SINCE 1-Nov-2026": {1, 2, 3, 5},
    "OR SUBJECT invoice BODY Rechnung": {0, 1, 3},
    "UNSEEN FLAGGED": {2, 4},
    "NOT FROM bob": {0, 2, 3, 5},
    'SUBJECT "Gr\u00fc\u00dfe"': {2},
    "FROM alice SINCE 1-Nov-2026": {2},
}


def search_msg(token, i, frm, subject, when, body, tag=""):
    msgid = "%s.s%d@%s" % (token, i, DOMAIN)
    raw = message(text_part(body + "\r\n" + tag + "\r\n"), subject=subject, msgid=msgid,
                  when=when, frm=frm)
    return {"raw": raw, "msgid": "<%s>" % msgid, "subject": subject, "when": when,
            "sha": helpers.sha256(raw)}


def search_rows(token):
    """(messages, flags per message) of SEARCH_ROWS."""
    msgs, flags = [], []
    for i, (frm, subj, (y, mo, d), body, fl) in enumerate(SEARCH_ROWS):
        msgs.append(search_msg(token, i, frm, subj,
                               dt.datetime(y, mo, d, 10, 0, 0, tzinfo=UTC), body))
        flags.append(fl)
    return msgs, flags


if __name__ == "__main__":
    # self-check of the oracle against the declared names (no server)
    for b in GOOD + MALFORMED:
        r = b("selfcheck")
        dirs = all_dirs(r["raw"])
        got = [e["name"] for e in dirs[""]]
        assert got == r["expect"], (r["key"], got, r["expect"])
        for rel, names in r["nested"].items():
            assert [e["name"] for e in dirs[rel]] == names, (r["key"], rel, dirs[rel])
        print(r["key"], "ok", got)
