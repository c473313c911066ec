"""Test-mail generation and IMAP helpers for the imapfs test harness.

Python 3 standard library only.  Used by scripts/gen-mail, scripts/demo and
tests/integration.  The environment (`env`) is the dict that
scripts/dovecot-env writes to DIR/env.json.
"""

import base64
import datetime as dt
import hashlib
import imaplib
import json
import os
import quopri
import random
import re
import socket
import ssl
import time

MANIFEST = "mail-manifest.json"
MSGID_DOMAIN = "imapfs-test.localhost"
CRLF = b"\r\n"

# --------------------------------------------------------------------------
# modified UTF-7 (RFC 3501 5.1.3) and IMAP string helpers


def mutf7_encode(s):
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            enc = base64.b64encode(b).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + enc + "-")
            buf.clear()

    for ch in s:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "&":
            out.append(c)
            i += 1
            continue
        j = s.index("-", i)
        if j == i + 1:
            out.append("&")
        else:
            b64 = s[i + 1:j].replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def quote(s):
    """IMAP quoted string (mailbox names are ASCII after mUTF-7)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The server's hierarchy delimiter.  Folder names in this module and in the
# tests are always written with "/" (as the mount shows them); qmbox() turns
# "/" into this delimiter and parse_list() turns each LIST line's delimiter
# back into "/".  connect() sets it from env["DELIMITER"] (written by
# scripts/cyrus-env: "."; dovecot-env's servers use "/", the default).
DELIM = "/"


def server_name(name):
    """A UTF-8 folder name ("/" between levels) as the server spells it:
    modified UTF-7, the server's delimiter."""
    enc = mutf7_encode(name)
    return enc if DELIM == "/" else enc.replace("/", DELIM)


def qmbox(name):
    """Mailbox argument for imaplib from a UTF-8 folder name."""
    return quote(server_name(name))


_TOKEN = re.compile(rb'\s*(\((?:[^()]*)\)|"(?:[^"\\]|\\.)*"|NIL|[^\s()"]+)')


def _unquote(tok):
    if tok.startswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", tok[1:-1])
    return tok


def parse_list(data):
    """imaplib LIST response -> list of (flags:set, delim:str|None, name:str);
    the name with "/" between levels, whatever the server's delimiter."""
    out = []
    for item in data:
        if item is None:
            continue
        literal = None
        if isinstance(item, tuple):
            item, literal = item[0], item[1]
        toks = []
        pos = 0
        while len(toks) < (2 if literal is not None else 3):
            m = _TOKEN.match(item, pos)
            if not m:
                break
            toks.append(m.group(1))
            pos = m.end()
        flags = set(toks[0][1:-1].decode().split())
        delim = None if toks[1] == b"NIL" else _unquote(toks[1]).decode()
        raw = literal if literal is not None else _unquote(toks[2])
        name = mutf7_decode(raw.decode("ascii"))
        if delim and delim != "/":
            name = name.replace(delim, "/")
        out.append((flags, delim, name))
    return out


# --------------------------------------------------------------------------
# connections


def connect(env, starttls=False, timeout=60):
    global DELIM
    DELIM = env.get("DELIMITER") or "/"
    ctx = ssl.create_default_context(cafile=env["CA_FILE"])
    host = env.get("HOST", "localhost")
    if starttls:
        m = imaplib.IMAP4(host, int(env["IMAP_PORT"]), timeout=timeout)
        m.starttls(ctx)
    else:
        m = imaplib.IMAP4_SSL(host, int(env["IMAPS_PORT"]), ssl_context=ctx,
                              timeout=timeout)
    if env.get("SERVER") == "cyrus":
        # imaplib sends a literal and its closing CRLF in two writes; Cyrus
        # delays its ACK of the first, so without this every APPEND costs
        # ~40 ms (Nagle + delayed ACK)
        m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    m.login(env["USER"], env["PASSWORD"])
    return m


def load_env(d):
    with open(os.path.join(d, "env.json")) as f:
        return json.load(f)


def check(resp, what):
    typ, data = resp
    if typ != "OK":
        raise RuntimeError("%s failed: %s %r" % (what, typ, data))
    return data


def list_folders(m):
    """UTF-8 folder names (delimiter '/'), sorted."""
    data = check(m.list('""', "*"), "LIST")
    return sorted(name for flags, delim, name in parse_list(data)
                  if "\\Noselect" not in flags and "\\NonExistent" not in flags)


_FETCH_ITEM = re.compile(
    rb"(UID|RFC822\.SIZE) (\d+)|INTERNALDATE \"([^\"]+)\"|FLAGS \(([^)]*)\)")


def parse_internaldate(s):
    """'17-Jul-1996 02:44:25 -0700' -> unix time (int)."""
    if isinstance(s, bytes):
        s = s.decode()
    return int(dt.datetime.strptime(s.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())


def fetch_meta(m, folder):
    """{uid: {"size", "internaldate", "flags"}} for every message (EXAMINE)."""
    typ, data = m.select(qmbox(folder), readonly=True)
    if typ != "OK":
        raise RuntimeError("EXAMINE %s failed: %r" % (folder, data))
    if int(data[0]) == 0:
        return {}
    data = check(m.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE FLAGS)"),
                 "FETCH meta")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            item = item[0]
        if not item or item == b")":
            continue
        rec = {}
        for mm in _FETCH_ITEM.finditer(item):
            if mm.group(1) == b"UID":
                rec["uid"] = int(mm.group(2))
            elif mm.group(1) == b"RFC822.SIZE":
                rec["size"] = int(mm.group(2))
            elif mm.group(3) is not None:
                rec["internaldate"] = parse_internaldate(mm.group(3))
            elif mm.group(4) is not None:
                rec["flags"] = sorted(f for f in mm.group(4).decode().split()
                                      if f != "\\Recent")
        if "uid" in rec:
            out[rec.pop("uid")] = rec
    return out


def fetch_body(m, uid, section="BODY.PEEK[]"):
    """Raw bytes of BODY.PEEK[...] for one UID of the selected folder."""
    data = check(m.uid("FETCH", str(uid), "(%s)" % section), "FETCH body")
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    if any(b"NIL" in (x if isinstance(x, bytes) else b"") for x in data):
        return b""
    raise RuntimeError("no body in FETCH response for uid %s: %r" % (uid, data[:2]))


def search_msgid(m, folder, msgid):
    m.select(qmbox(folder), readonly=True)
    data = check(m.uid("SEARCH", "HEADER", "Message-ID", quote(msgid)), "SEARCH")
    uids = [int(x) for x in data[0].split()]
    return uids


# --------------------------------------------------------------------------
# message content

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim "
         "ad minim veniam quis nostrud exercitation ullamco laboris nisi "
         "aliquip ex ea commodo consequat duis aute irure in reprehenderit "
         "voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
         "occaecat cupidatat non proident sunt culpa qui officia deserunt "
         "mollit anim id est laborum").split()
UTF8_LINES = [
    "Grüße aus München, die Straße ist nass und die Bäume sind grün.",
    "Съешь же ещё этих мягких французских булок да выпей чаю.",
    "いろはにほへと ちりぬるを わかよたれそ つねならむ",
    "Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "Emoji: 📬 ✉️ 🗂️ — “quotes” and ‘apostrophes’ … done.",
]
SENDERS = [
    b"Bob Example <bob@example.org>",
    b"=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>",
    b"=?iso-2022-jp?b?GyRCOzNFRBsoQg==?= <yamada@example.jp>",
    b"\"Carol, the Admin\" <carol@example.com>",
    b"noreply@example.net",
]


def ascii_text(rnd, size):
    lines, n = [], 0
    while n < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 11)))
        line = line[:1].upper() + line[1:] + "."
        lines.append(line)
        n += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def utf8_text(rnd, size):
    lines, n = [], 0
    while n < size:
        line = rnd.choice(UTF8_LINES)
        lines.append(line)
        n += len(line.encode()) + 2
    return "\r\n".join(lines) + "\r\n"


def b64_lines(data):
    enc = base64.b64encode(data)
    return CRLF.join(enc[i:i + 76] for i in range(0, len(enc), 76)) + CRLF


def fmt_date(when):
    return when.strftime("%a, %d %b %Y %H:%M:%S %z").encode()


def enc_word(text, charset, kind="b"):
    raw = text.encode(charset)
    if kind == "b":
        return b"=?%s?B?%s?=" % (charset.encode(), base64.b64encode(raw))
    q = quopri.encodestring(raw, header=True).replace(b"=\n", b"")
    q = q.replace(b"?", b"=3F")
    return b"=?%s?Q?%s?=" % (charset.encode(), q)


def build_message(rnd, *, subject, msgid, when, body="plain", size=800,
                  sender=None, extra_text=""):
    """Return the raw message (CRLF).  `subject` is the raw header value
    (bytes, may contain folding), or None for no Subject header."""
    h = [b"Return-Path: <sender@example.org>",
         b"From: " + (sender or rnd.choice(SENDERS)),
         b"To: Alice <alice@localhost>"]
    if subject is not None:
        h.append(b"Subject: " + subject if subject else b"Subject:")
    h += [b"Date: " + fmt_date(when),
          b"Message-ID: <" + msgid.encode() + b">",
          b"MIME-Version: 1.0"]
    extra = extra_text.encode()
    if body == "plain":
        h += [b"Content-Type: text/plain; charset=us-ascii",
              b"Content-Transfer-Encoding: 7bit"]
        payload = ascii_text(rnd, size).encode() + extra
    elif body == "utf8":
        h += [b"Content-Type: text/plain; charset=utf-8",
              b"Content-Transfer-Encoding: 8bit"]
        payload = utf8_text(rnd, size).encode() + extra
    elif body == "qp":
        h += [b"Content-Type: text/plain; charset=utf-8",
              b"Content-Transfer-Encoding: quoted-printable"]
        payload = quopri.encodestring(
            utf8_text(rnd, size).replace("\r\n", "\n").encode()).replace(b"\n", CRLF)
        if not payload.endswith(CRLF):
            payload += CRLF
        payload += extra
    elif body in ("alt", "attach"):
        boundary = ("==b%016x==" % rnd.getrandbits(64)).encode()
        text = ascii_text(rnd, min(size, 1500)).encode() + extra
        parts = []
        if body == "alt":
            h.append(b'Content-Type: multipart/alternative; boundary="' + boundary + b'"')
            html = (b"<html><body><p>" +
                    ascii_text(rnd, min(size, 1500)).encode().replace(CRLF, b"</p>\r\n<p>") +
                    b"</p></body></html>\r\n")
            parts.append(b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text)
            parts.append(b"Content-Type: text/html; charset=us-ascii\r\n\r\n" + html)
        else:
            h.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
            parts.append(b"Content-Type: text/plain; charset=utf-8\r\n"
                         b"Content-Transfer-Encoding: 8bit\r\n\r\n" +
                         utf8_text(rnd, 200).encode() + text)
            att_size = max(0, size * 3 // 4 - len(text))
            parts.append(b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
                         b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
                         b"Content-Transfer-Encoding: base64\r\n\r\n" +
                         b64_lines(rnd.randbytes(att_size)))
            parts.append(b"Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\r\n"
                         b"Content-Disposition: attachment;\r\n"
                         b" filename*=utf-8''N%C3%B6tizen.txt\r\n"
                         b"Content-Transfer-Encoding: base64\r\n\r\n" +
                         b64_lines(utf8_text(rnd, 300).encode()))
        payload = b"This is a multi-part message in MIME format.\r\n\r\n"
        for p in parts:
            payload += b"--" + boundary + CRLF + p
        payload += b"--" + boundary + b"--" + CRLF
    else:
        raise ValueError(body)
    raw = CRLF.join(h) + CRLF + CRLF + payload
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", raw), "bare CR/LF in message"
    return raw


# --------------------------------------------------------------------------
# the mail set

SMALL_FOLDERS = ["INBOX", "Entwürfe", "日本語", "A & B", "Name With Spaces",
                 "Archive", "Archive/2024", "Archive/2024/Q1", "Scratch", "Empty"]
BIG_FOLDER = "Big"
HUGE_FOLDER = "Huge"
UTC = dt.timezone.utc
TZS = [dt.timezone(dt.timedelta(hours=h, minutes=mi)) for h, mi in
       [(0, 0), (2, 0), (-5, 0), (9, 0), (5, 30), (-8, 0), (1, 0), (-3, -30)]]

LONG_CJK = ("漢字仮名交じり文の長い件名です" * 20)[:200]   # 200 chars, 600 bytes


def _fold_words(words):
    """Join encoded words with CRLF SP folding (one word per line)."""
    return b"\r\n ".join(words)


def special_subjects():
    """(key, raw Subject header value or None, intended decoded subject, body)."""
    long_words = [enc_word(LONG_CJK[i:i + 12], "utf-8")
                  for i in range(0, len(LONG_CJK), 12)]
    return [
        ("ascii", b"Quarterly report for Q3", "Quarterly report for Q3", "plain"),
        ("utf8_b", enc_word("Grüße aus Köln — Übersicht", "utf-8", "b"),
         "Grüße aus Köln — Übersicht", "utf8"),
        ("utf8_q", enc_word("Café crème brûlée", "utf-8", "q"),
         "Café crème brûlée", "qp"),
        ("latin1", enc_word("Prüfung der Änderungen", "iso-8859-1", "q"),
         "Prüfung der Änderungen", "plain"),
        ("koi8r", enc_word("Привет, мир", "koi8-r", "b"), "Привет, мир", "utf8"),
        ("iso2022jp", enc_word("会議の議事録", "iso-2022-jp", "b"), "会議の議事録", "utf8"),
        ("sjis", enc_word("お疲れ様です", "shift_jis", "b"), "お疲れ様です", "utf8"),
        ("slash", b"Budget 2024/2025 draft", "Budget 2024/2025 draft", "alt"),
        ("tabs", b"Tabs\there\t\tand  there", "Tabs\there\t\tand  there", "plain"),
        ("empty", b"", "", "plain"),
        ("nosubject", None, None, "plain"),
        ("long_cjk", _fold_words(long_words), LONG_CJK, "utf8"),
        ("folded", b"This is a folded\r\n subject line that\r\n\tcontinues here",
         "This is a folded subject line that\tcontinues here", "plain"),
        ("mixed", b"Re: " + enc_word("Café", "utf-8", "q") + b" meeting",
         "Re: Café meeting", "plain"),
        ("adjacent", enc_word("Hello ", "utf-8", "q") + b" " + enc_word("World", "utf-8", "q"),
         "Hello World", "plain"),
        ("padded", b"   padded subject   ", "   padded subject   ", "plain"),
        ("control", enc_word("ctl\x01char", "utf-8", "q"), "ctl\x01char", "plain"),
    ]


def _rand_when(rnd):
    start = dt.datetime(2019, 1, 1, tzinfo=UTC).timestamp()
    end = dt.datetime(2025, 6, 30, tzinfo=UTC).timestamp()
    t = rnd.uniform(start, end)
    return dt.datetime.fromtimestamp(int(t), tz=rnd.choice(TZS))


def _rand_flags(rnd):
    r = rnd.random()
    if r < 0.45:
        return ["\\Seen"]
    if r < 0.55:
        return ["\\Flagged", "\\Seen"]
    if r < 0.6:
        return ["\\Answered", "\\Seen"]
    if r < 0.65:
        return ["\\Flagged"]
    return []


def _plan_small(rnd, token):
    """List of dicts: folder, raw, flags, when, key, subject_text, msgid."""
    plan = []
    n = [0]

    def add(folder, subject_raw, subject_text, body, size, key=None,
            flags=None, when=None, extra_text=""):
        n[0] += 1
        msgid = "%s.%04d@%s" % (key or "msg", n[0], MSGID_DOMAIN)
        when = when or _rand_when(rnd)
        raw = build_message(rnd, subject=subject_raw, msgid=msgid, when=when,
                            body=body, size=size, extra_text=extra_text)
        plan.append({"folder": folder, "raw": raw,
                     "flags": _rand_flags(rnd) if flags is None else flags,
                     "when": when, "key": key, "subject_text": subject_text,
                     "msgid": msgid})

    # INBOX: the special subjects first (known names), then ordinary mail
    for i, (key, raw, text, body) in enumerate(special_subjects()):
        when = None
        flags = None
        if key == "ascii":
            # local date 2023-12-31, UTC date 2024-01-01
            when = dt.datetime(2023, 12, 31, 23, 30, 0,
                               tzinfo=dt.timezone(dt.timedelta(hours=-5)))
            flags = ["\\Seen"]
        elif key == "utf8_b":
            flags = []
        add("INBOX", raw, text, body, rnd.randint(300, 4000), key=key,
            flags=flags, when=when)
    kinds = ["plain", "utf8", "qp", "alt", "plain", "utf8"]
    for i in range(13 - 2):
        subj = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 7))).capitalize()
        add("INBOX", subj.encode(), subj, kinds[i % len(kinds)], rnd.randint(250, 30000))
    add("INBOX", b"Photos from the trip", "Photos from the trip", "attach",
        300 * 1024, key="attach_300k")
    add("INBOX", enc_word("Präsentation (final) – 1 MB", "utf-8"),
        "Präsentation (final) – 1 MB", "attach", 1000 * 1024, key="attach_1m")

    def ordinary(folder, count, subj_fn, bodies):
        for i in range(count):
            raw, text = subj_fn(i)
            add(folder, raw, text, bodies[i % len(bodies)], rnd.randint(300, 12000))

    de = ["Entwurf: Antwort an Frau Schäfer", "Änderungswünsche zum Vertrag",
          "Notizen für Montag", "Übergabe – offene Punkte", "Rückfrage Öffnungszeiten"]
    ordinary("Entwürfe", 5, lambda i: (enc_word(de[i], "utf-8", "q"), de[i]),
             ["utf8", "qp"])
    ja = ["お知らせ：システムメンテナンス", "見積書の送付について", "新年のご挨拶",
          "会議室の予約", "ありがとうございました"]
    charsets = ["iso-2022-jp", "utf-8", "shift_jis", "utf-8", "iso-2022-jp"]
    ordinary("日本語", 5, lambda i: (enc_word(ja[i], charsets[i]), ja[i]), ["utf8"])
    ab = ["Smith & Sons invoice", "Q&A session notes", "Tom & Jerry", "R&D budget"]
    ordinary("A & B", 4, lambda i: (ab[i].encode(), ab[i]), ["plain", "alt"])
    sp = ["Meeting notes", "Lunch on Friday?", "Re: Lunch on Friday?", "Fwd: slides"]
    ordinary("Name With Spaces", 4, lambda i: (sp[i].encode(), sp[i]), ["plain"])
    ordinary("Archive", 3, lambda i: (b"Old thread %d" % i, "Old thread %d" % i),
             ["plain", "utf8"])
    ordinary("Archive/2024", 3, lambda i: (b"2024 item %d" % i, "2024 item %d" % i),
             ["plain"])
    ordinary("Archive/2024/Q1", 4, lambda i: (b"Q1 report part %d" % i,
                                              "Q1 report part %d" % i), ["plain", "qp"])
    add("Archive/2024/Q1", b"The needle in the haystack", "The needle in the haystack",
        "plain", 900, key="token",
        extra_text="\r\nThe magic word is %s.\r\n" % token)
    ordinary("Scratch", 3, lambda i: (b"Scratch message %d" % i, "Scratch message %d" % i),
             ["plain"])
    return plan


def append(m, folder, raw, flags, when):
    fl = "(%s)" % " ".join(flags) if flags else None
    typ, data = m.append(qmbox(folder), fl, imaplib.Time2Internaldate(when), raw)
    if typ != "OK":
        raise RuntimeError("APPEND to %s failed: %r" % (folder, data))
    mm = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
    return int(mm.group(1)) if mm else None


def _crlf_to_lf(raw):
    return raw.replace(CRLF, b"\n")


def _big_messages(count, rnd):
    """(raw CRLF message, flags, when) of Big's messages, in order: the same
    sequence whether they go in as Maildir files or through IMAP."""
    for i in range(count):
        when = _rand_when(rnd)
        subj = "Big #%05d %s" % (i + 1, " ".join(rnd.choice(WORDS)
                                                   for _ in range(rnd.randint(1, 5))))
        raw = build_message(rnd, subject=subj.encode(),
                            msgid="big.%05d@%s" % (i + 1, MSGID_DOMAIN), when=when,
                            body="plain" if i % 7 else "utf8",
                            size=rnd.randint(200, 1500))
        flags = "S" if i % 3 else ""
        if i % 50 == 0:
            flags = "FS"
        yield raw, flags, when


def append_many(m, folder, items, batch=500):
    """APPEND (raw, [flags], when) items with MULTIAPPEND (RFC 3502), `batch`
    messages per command, as LITERAL+ non-synchronising literals: one round
    trip per batch instead of one per message.  The server must announce
    MULTIAPPEND and LITERAL+."""
    caps = set(c.upper() for c in m.capabilities)
    if "MULTIAPPEND" not in caps or "LITERAL+" not in caps:
        raise RuntimeError("the server lacks MULTIAPPEND or LITERAL+")
    items = list(items)
    for start in range(0, len(items), batch):
        tag = m._new_tag()
        parts = [tag + b" APPEND " + qmbox(folder).encode()]
        for raw, flags, when in items[start:start + batch]:
            parts.append(b" (" + " ".join(flags).encode() + b") " +
                         imaplib.Time2Internaldate(when).encode() +
                         b" {%d+}\r\n" % len(raw) + raw)
        m.send(b"".join(parts) + b"\r\n")
        typ, data = m._command_complete("APPEND", tag)
        if typ != "OK":
            raise RuntimeError("APPEND of %d messages to %s failed: %r" % (
                len(items[start:start + batch]), folder, data))


def write_big_imap(env, folder, count, rnd, log=print):
    """Big through IMAP (MULTIAPPEND), for a server whose mail store this
    script cannot write directly (env MAIL_DIR is None: Cyrus).  The same
    messages, flags and INTERNALDATEs as write_big_maildir."""
    t0 = time.monotonic()
    m = connect(env)
    try:
        fl = {"": [], "S": ["\\Seen"], "FS": ["\\Flagged", "\\Seen"]}
        append_many(m, folder, ((raw, fl[f], when) for raw, f, when in
                                _big_messages(count, rnd)))
    finally:
        try:
            m.logout()
        except Exception:
            pass
    log("  appended %d messages to %s in %.1fs" % (count, folder,
                                                  time.monotonic() - t0))


def write_big_maildir(env, folder, count, rnd, log=print):
    """Write `count` small messages straight into the folder's Maildir cur/.
    The folder must exist (CREATEd through IMAP); Dovecot picks the files up
    at its next sync.  INTERNALDATE = file mtime."""
    path = os.path.join(env["MAIL_DIR"], *mutf7_encode(folder).split("/"))
    cur = os.path.join(path, "cur")
    if not os.path.isdir(cur):
        raise RuntimeError("maildir %s does not exist" % cur)
    uid, gid = int(env["MAIL_UID"]), int(env["MAIL_GID"])
    chown = os.geteuid() == 0
    base = int(time.time())
    host = "gen"
    t0 = time.monotonic()
    for i in range(count):
        when = _rand_when(rnd)
        subj = "Big #%05d %s" % (i + 1, " ".join(rnd.choice(WORDS)
                                                   for _ in range(rnd.randint(1, 5))))
        raw = build_message(rnd, subject=subj.encode(),
                            msgid="big.%05d@%s" % (i + 1, MSGID_DOMAIN), when=when,
                            body="plain" if i % 7 else "utf8",
                            size=rnd.randint(200, 1500))
        lf = _crlf_to_lf(raw)
        flags = "S" if i % 3 else ""
        if i % 50 == 0:
            flags = "FS"
        name = "%d.M%dP%d.%s,S=%d,W=%d:2,%s" % (base, i, os.getpid(), host,
                                                len(lf), len(raw), flags)
        p = os.path.join(cur, name)
        with open(p, "wb") as f:
            f.write(lf)
        if chown:
            os.chown(p, uid, gid)
        t = when.timestamp()
        os.utime(p, (t, t))
    log("  wrote %d maildir files into %s in %.1fs" % (count, folder,
                                                      time.monotonic() - t0))


def generate(env, big=0, huge=False, seed=1, log=print):
    """Create folders and messages; write DIR/mail-manifest.json; return it."""
    rnd = random.Random(seed)
    token = "IMAPFS-UNIQUE-TOKEN-%08x" % rnd.getrandbits(32)
    plan = _plan_small(rnd, token)
    m = connect(env)
    try:
        existing = set(list_folders(m))
        folders = list(SMALL_FOLDERS)
        if big:
            folders.append(BIG_FOLDER)
        if huge:
            folders.append(HUGE_FOLDER)
        for f in folders:
            if f not in existing:
                check(m.create(qmbox(f)), "CREATE " + f)
                check(m.subscribe(qmbox(f)), "SUBSCRIBE " + f)
        for f in folders:
            typ, data = m.status(qmbox(f), "(MESSAGES)")
            if typ != "OK" or not data[0].rstrip().endswith(b"(MESSAGES 0)"):
                raise RuntimeError("folder %s is not empty (%r); generate into a "
                                   "fresh account" % (f, data))
        t0 = time.monotonic()
        known = {}
        for item in plan:
            uid = append(m, item["folder"], item["raw"], item["flags"], item["when"])
            if item["key"]:
                known[item["key"]] = {
                    "folder": item["folder"], "uid": uid, "msgid": item["msgid"],
                    "subject_text": item["subject_text"],
                    "internaldate": int(item["when"].timestamp()),
                    "flags": sorted(item["flags"]),
                    "sha256": hashlib.sha256(item["raw"]).hexdigest(),
                }
        log("  appended %d messages to %d small folders in %.1fs" % (
            len(plan), len(SMALL_FOLDERS), time.monotonic() - t0))
        counts = {f: 0 for f in SMALL_FOLDERS}
        for item in plan:
            counts[item["folder"]] += 1
        huge_info = None
        if huge:
            t0 = time.monotonic()
            hrnd = random.Random(seed + 1)
            when = dt.datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)
            raw = build_message(hrnd, subject=b"Huge attachment (20 MB)",
                                msgid="huge.0001@" + MSGID_DOMAIN, when=when,
                                body="attach", size=20 * 1024 * 1024)
            assert len(raw) >= 20 * 1024 * 1024, len(raw)
            uid = append(m, HUGE_FOLDER, raw, [], when)
            huge_info = {"folder": HUGE_FOLDER, "uid": uid, "size": len(raw),
                         "sha256": hashlib.sha256(raw).hexdigest()}
            counts[HUGE_FOLDER] = 1
            log("  appended a %.1f MB message to %s in %.1fs" % (
                len(raw) / 1e6, HUGE_FOLDER, time.monotonic() - t0))
        if big:
            if env.get("MAIL_DIR"):
                write_big_maildir(env, BIG_FOLDER, big, random.Random(seed + 2),
                                  log=log)
            else:
                write_big_imap(env, BIG_FOLDER, big, random.Random(seed + 2), log=log)
            counts[BIG_FOLDER] = big
    finally:
        try:
            m.logout()
        except Exception:
            pass
    manifest = {
        "seed": seed, "token": token,
        "token_msgid": known["token"]["msgid"], "token_folder": "Archive/2024/Q1",
        "small_folders": SMALL_FOLDERS, "big_folder": BIG_FOLDER if big else None,
        "huge_folder": HUGE_FOLDER if huge else None, "huge": huge_info,
        "counts": counts, "known": known,
    }
    verify(env, manifest, log=log)
    with open(os.path.join(env["DIR"], MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return manifest


def verify(env, manifest, log=print):
    """Check through IMAP that the account holds what the manifest says."""
    t0 = time.monotonic()
    m = connect(env)
    try:
        have = set(list_folders(m))
        want = set(manifest["counts"])
        missing = want - have
        if missing:
            raise RuntimeError("folders missing on the server: %s" % sorted(missing))
        for f, n in manifest["counts"].items():
            typ, data = m.select(qmbox(f), readonly=True)
            if typ != "OK" or int(data[0]) != n:
                raise RuntimeError("folder %s: expected %d messages, got %r" % (f, n, data))
        for key, k in manifest["known"].items():
            uids = search_msgid(m, k["folder"], k["msgid"])
            if uids != [k["uid"]]:
                raise RuntimeError("%s: Message-ID search gave %r, expected [%r]"
                                   % (key, uids, k["uid"]))
            body = fetch_body(m, k["uid"])
            if hashlib.sha256(body).hexdigest() != k["sha256"]:
                raise RuntimeError("%s: body differs from what was appended" % key)
            meta = fetch_meta_uid(m, k["uid"])
            if meta["internaldate"] != k["internaldate"]:
                raise RuntimeError("%s: INTERNALDATE %r != %r" % (
                    key, meta["internaldate"], k["internaldate"]))
            if meta["flags"] != k["flags"]:
                raise RuntimeError("%s: FLAGS %r != %r" % (key, meta["flags"], k["flags"]))
        if manifest.get("big_folder"):
            f = manifest["big_folder"]
            meta = fetch_meta(m, f)
            if len(meta) != manifest["counts"][f]:
                raise RuntimeError("%s: %d messages" % (f, len(meta)))
            # a sample: size matches the body, date is sane
            for uid in sorted(meta)[:: max(1, len(meta) // 20)]:
                body = fetch_body(m, uid)
                if len(body) != meta[uid]["size"]:
                    raise RuntimeError("%s uid %d: RFC822.SIZE %d != %d bytes" % (
                        f, uid, meta[uid]["size"], len(body)))
                if not body.startswith(b"Return-Path:") or b"\r\n\r\n" not in body:
                    raise RuntimeError("%s uid %d: odd body %r" % (f, uid, body[:60]))
        if manifest.get("huge"):
            h = manifest["huge"]
            meta = fetch_meta(m, h["folder"])
            if list(meta) != [h["uid"]] or meta[h["uid"]]["size"] != h["size"]:
                raise RuntimeError("Huge: %r" % meta)
            m.select(qmbox(h["folder"]), readonly=True)
            body = fetch_body(m, h["uid"])
            if hashlib.sha256(body).hexdigest() != h["sha256"]:
                raise RuntimeError("Huge: body differs")
    finally:
        try:
            m.logout()
        except Exception:
            pass
    log("  verified through IMAP in %.1fs" % (time.monotonic() - t0))


def fetch_meta_uid(m, uid):
    data = check(m.uid("FETCH", str(uid), "(UID RFC822.SIZE INTERNALDATE FLAGS)"),
                 "FETCH")
    rec = {}
    for item in data:
        if isinstance(item, tuple):
            item = item[0]
        for mm in _FETCH_ITEM.finditer(item or b""):
            if mm.group(1) == b"RFC822.SIZE":
                rec["size"] = int(mm.group(2))
            elif mm.group(3) is not None:
                rec["internaldate"] = parse_internaldate(mm.group(3))
            elif mm.group(4) is not None:
                rec["flags"] = sorted(f for f in mm.group(4).decode().split()
                                      if f != "\\Recent")
    return rec
