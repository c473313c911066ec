"""MIME inputs for the receive-folder tests (spec receive-folders.md, section 5
"MIME inputs"), each with the PidTagMessageClass imapfs must derive (section 2).

Every builder returns a dict like write_helpers.make_msg(): raw (CRLF bytes),
msgid (with <>), subject, when (UTC datetime), sha, plus `cls` (the expected
class).  TNEF is built here from MS-OXTNEF (signature, key, attributes with
16-bit checksums, attMsgProps property lists); parse_tnef() decodes it again
so the builder can be checked (python3 mime_fixtures.py runs that check).

Run standalone:  /usr/bin/python3 tests/integration/mime_fixtures.py
"""

import base64
import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import random
import struct

UTC = dt.timezone.utc
DOMAIN = "imapfs-test.localhost"
CRLF = b"\r\n"

# -- TNEF (MS-OXTNEF) -------------------------------------------------------------

TNEF_SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 0x01, 0x02
ATT_TNEF_VERSION = 0x00089006
ATT_OEM_CODEPAGE = 0x00069007
ATT_MESSAGE_CLASS = 0x00078008       # id 0x8008, type 0x0007 (atpString... "class")
ATT_SUBJECT = 0x00018004
ATT_MSG_PROPS = 0x00069003

PT_LONG, PT_BOOLEAN, PT_STRING8, PT_UNICODE, PT_BINARY = 0x0003, 0x000B, 0x001E, \
    0x001F, 0x0102
PR_MESSAGE_CLASS = 0x001A
PR_IMPORTANCE = 0x0017
PR_TNEF_CORRELATION_KEY = 0x007F     # PidTagTnefCorrelationKey, PT_BINARY


def _pad4(b):
    return b + b"\0" * (-len(b) % 4)


def tnef_prop(prop_id, prop_type, value):
    """One MAPI property of an attMsgProps list (single-valued)."""
    tag = struct.pack("<HH", prop_type, prop_id)
    if prop_type == PT_LONG:
        return tag + struct.pack("<I", value)
    if prop_type == PT_BOOLEAN:
        return tag + struct.pack("<I", 1 if value else 0)
    if prop_type in (PT_STRING8, PT_UNICODE, PT_BINARY):
        if prop_type == PT_STRING8:
            data = value.encode("ascii") + b"\0"
        elif prop_type == PT_UNICODE:
            data = value.encode("utf-16-le") + b"\0\0"
        else:
            data = bytes(value)
        # count of values (1), byte length, bytes padded to 4
        return tag + struct.pack("<II", 1, len(data)) + _pad4(data)
    raise ValueError("unsupported property type 0x%04x" % prop_type)


def tnef_attr(level, attr_id, data):
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attr_id, len(data)) + data + \
        struct.pack("<H", checksum)


def build_tnef(*, cls=None, correlation_key=None, props_cls=None, key=0x1F2E,
               subject=None):
    """A TNEF stream (winmail.dat).
    cls:             attMessageClass (NUL-terminated), omitted if None
    props_cls:       PR_MESSAGE_CLASS_A in attMsgProps, omitted if None
    correlation_key: bytes of PidTagTnefCorrelationKey, omitted if None"""
    out = struct.pack("<IH", TNEF_SIGNATURE, key)
    out += tnef_attr(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000))
    out += tnef_attr(LVL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0))
    if cls is not None:
        out += tnef_attr(LVL_MESSAGE, ATT_MESSAGE_CLASS, cls.encode("ascii") + b"\0")
    if subject is not None:
        out += tnef_attr(LVL_MESSAGE, ATT_SUBJECT, subject.encode("ascii") + b"\0")
    props = [tnef_prop(PR_IMPORTANCE, PT_LONG, 1)]
    if props_cls is not None:
        props.append(tnef_prop(PR_MESSAGE_CLASS, PT_STRING8, props_cls))
    if correlation_key is not None:
        props.append(tnef_prop(PR_TNEF_CORRELATION_KEY, PT_BINARY, correlation_key))
    out += tnef_attr(LVL_MESSAGE, ATT_MSG_PROPS,
                     struct.pack("<I", len(props)) + b"".join(props))
    return out


def parse_tnef(data):
    """Decode a TNEF stream strictly: {key, attrs: [(level, id, data)],
    class, props: {(id, type): value}}.  Raises ValueError when malformed
    (bad signature, length, checksum or property list)."""
    if len(data) < 6:
        raise ValueError("too short")
    sig, key = struct.unpack_from("<IH", data, 0)
    if sig != TNEF_SIGNATURE:
        raise ValueError("bad signature 0x%08x" % sig)
    pos, attrs = 6, []
    while pos < len(data):
        if pos + 9 > len(data):
            raise ValueError("truncated attribute header at %d" % pos)
        level, attr_id, length = struct.unpack_from("<BII", data, pos)
        if level not in (LVL_MESSAGE, LVL_ATTACHMENT):
            raise ValueError("bad level %d at %d" % (level, pos))
        pos += 9
        if pos + length + 2 > len(data):
            raise ValueError("attribute 0x%08x overruns the stream" % attr_id)
        body = data[pos:pos + length]
        (checksum,) = struct.unpack_from("<H", data, pos + length)
        if checksum != sum(body) & 0xFFFF:
            raise ValueError("bad checksum for attribute 0x%08x" % attr_id)
        attrs.append((level, attr_id, body))
        pos += length + 2
    out = {"key": key, "attrs": attrs, "class": None, "props": {}}
    for level, attr_id, body in attrs:
        if attr_id == ATT_MESSAGE_CLASS:
            if not body.endswith(b"\0"):
                raise ValueError("attMessageClass not NUL-terminated")
            out["class"] = body[:-1].decode("ascii")
        elif attr_id == ATT_MSG_PROPS:
            out["props"] = _parse_props(body)
    return out


def _parse_props(body):
    (count,) = struct.unpack_from("<I", body, 0)
    pos, props = 4, {}
    for _ in range(count):
        ptype, pid = struct.unpack_from("<HH", body, pos)
        pos += 4
        if pid >= 0x8000:
            raise ValueError("named properties are not generated here")
        if ptype in (PT_LONG, PT_BOOLEAN):
            (v,) = struct.unpack_from("<I", body, pos)
            pos += 4
        elif ptype in (PT_STRING8, PT_UNICODE, PT_BINARY):
            n, ln = struct.unpack_from("<II", body, pos)
            if n != 1:
                raise ValueError("value count %d" % n)
            pos += 8
            v = body[pos:pos + ln]
            if len(v) != ln:
                raise ValueError("property 0x%04x overruns" % pid)
            pos += ln + (-ln % 4)
            if ptype == PT_STRING8:
                v = v.rstrip(b"\0").decode("ascii")
            elif ptype == PT_UNICODE:
                v = v.decode("utf-16-le").rstrip("\0")
        else:
            raise ValueError("unexpected property type 0x%04x" % ptype)
        props[(pid, ptype)] = v
    if pos != len(body):
        raise ValueError("%d trailing bytes in attMsgProps" % (len(body) - pos))
    return props


# -- messages -----------------------------------------------------------------------

_N = [0]


def _msg(token, kind, cls, content_headers, body, *, extra_headers=(), when=None,
         subject=None):
    """Assemble a CRLF message with the usual headers."""
    _N[0] += 1
    when = when or dt.datetime(2024, 3, 1 + _N[0] % 27, 9, _N[0] % 60, 0, tzinfo=UTC)
    subject = subject or "%s %s" % (kind, token)
    msgid = "<%s.%s.%d@%s>" % (token, kind, _N[0], DOMAIN)
    head = [
        "From: Bob Sender <bob@example.org>",
        "To: Alice <alice@localhost>",
        "Subject: " + subject,
        "Date: " + email.utils.format_datetime(when),
        "Message-ID: " + msgid,
        "MIME-Version: 1.0",
    ] + list(extra_headers) + list(content_headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    raw = CRLF.join(h.encode("utf-8") for h in head) + CRLF + CRLF + body
    return {"raw": raw, "msgid": msgid, "subject": subject, "when": when,
            "sha": hashlib.sha256(raw).hexdigest(), "cls": cls, "kind": kind}


def _b64(data):
    s = base64.b64encode(data).decode("ascii")
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\n"


def _rnd(token, kind):
    return random.Random("%s/%s" % (token, kind))


def plain(token, **kw):
    return _msg(token, "plain", "IPM.Note",
                ["Content-Type: text/plain; charset=us-ascii"],
                "Just a plain text message.\n", **kw)


def content_class_message(token, **kw):
    return _msg(token, "ccmessage", "IPM.Note",
                ["Content-Class: urn:content-classes:message",
                 "Content-Type: text/plain; charset=us-ascii"],
                "A message with Content-Class urn:content-classes:message.\n", **kw)


def dsn(token, actions=("failed", "delayed"), **kw):
    """multipart/report; report-type=delivery-status with one recipient per
    Action."""
    sev = {"delivered": 0, "expanded": 1, "relayed": 2, "delayed": 3, "failed": 4}
    suffix = {0: ".DR", 1: ".Expanded.DR", 2: ".Relayed.DR", 3: ".Delayed.DR",
              4: ".NDR"}[max(sev[a] for a in actions)]
    b = "dsn-%s" % token
    status = {"failed": "5.1.1", "delayed": "4.4.7", "delivered": "2.0.0",
              "expanded": "2.0.0", "relayed": "2.0.0"}
    per_rcpt = []
    for i, a in enumerate(actions):
        per_rcpt.append("Final-Recipient: rfc822; user%d@example.net\n"
                        "Action: %s\nStatus: %s\n" % (i, a, status[a]))
    body = (
        "--%s\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mx.example.org.\n\n"
        "--%s\n"
        "Content-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.org\n"
        "Arrival-Date: Fri, 01 Mar 2024 09:00:00 +0000\n\n"
        "%s\n"
        "--%s\n"
        "Content-Type: text/rfc822-headers\n\n"
        "From: Alice <alice@localhost>\n"
        "To: user0@example.net\n"
        "Subject: original\n"
        "Message-ID: <orig.%s@%s>\n\n"
        "--%s--\n" % (b, b, "\n".join(per_rcpt), b, token, DOMAIN, b))
    kind = "dsn-" + "-".join(actions)
    return _msg(token, kind, "REPORT.IPM.Note" + suffix,
                ['Content-Type: multipart/report; report-type=delivery-status; '
                 'boundary="%s"' % b], body,
                extra_headers=["Auto-Submitted: auto-replied"], **kw)


def mdn(token, disposition="displayed", **kw):
    positive = disposition in ("displayed", "dispatched", "processed")
    cls = "REPORT.IPM.Note.IPNRN" if positive else "REPORT.IPM.Note.IPNNRN"
    b = "mdn-%s" % token
    body = (
        "--%s\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "The message was %s.\n\n"
        "--%s\n"
        "Content-Type: message/disposition-notification\n\n"
        "Reporting-UA: mua.example.org; TestMUA\n"
        "Final-Recipient: rfc822; bob@example.org\n"
        "Original-Message-ID: <orig.%s@%s>\n"
        "Disposition: manual-action/MDN-sent-manually; %s\n\n"
        "--%s--\n" % (b, disposition, b, token, DOMAIN, disposition, b))
    return _msg(token, "mdn-" + disposition, cls,
                ['Content-Type: multipart/report; '
                 'report-type=disposition-notification; boundary="%s"' % b], body, **kw)


def smime_signed(token, **kw):
    b = "signed-%s" % token
    sig = _rnd(token, "sig").randbytes(700)
    body = (
        "This is a cryptographically signed message in MIME format.\n\n"
        "--%s\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "Signed text.\n\n"
        "--%s\n"
        "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment; filename=\"smime.p7s\"\n\n"
        "%s\n"
        "--%s--\n" % (b, b, _b64(sig), b))
    return _msg(token, "smime-signed", "IPM.Note.SMIME.MultipartSigned",
                ['Content-Type: multipart/signed; protocol="application/pkcs7-signature";'
                 ' micalg=sha-256; boundary="%s"' % b], body, **kw)


def smime_enveloped(token, **kw):
    return _msg(token, "smime-enveloped", "IPM.Note.SMIME",
                ['Content-Type: application/pkcs7-mime; smime-type=enveloped-data; '
                 'name="smime.p7m"',
                 "Content-Transfer-Encoding: base64",
                 'Content-Disposition: attachment; filename="smime.p7m"'],
                _b64(_rnd(token, "p7m").randbytes(1500)), **kw)


_CAL_CLASS = {
    ("REQUEST", None): "IPM.Schedule.Meeting.Request",
    ("REPLY", "ACCEPTED"): "IPM.Schedule.Meeting.Resp.Pos",
    ("REPLY", "TENTATIVE"): "IPM.Schedule.Meeting.Resp.Tent",
    ("REPLY", "DECLINED"): "IPM.Schedule.Meeting.Resp.Neg",
    ("CANCEL", None): "IPM.Schedule.Meeting.Canceled",
    ("PUBLISH", None): "IPM.Appointment",
}


def _ics(token, method, partstat):
    att = "ATTENDEE;CN=Alice;RSVP=TRUE:mailto:alice@localhost\n"
    if partstat:
        att = "ATTENDEE;PARTSTAT=%s;CN=Alice:mailto:alice@localhost\n" % partstat
    status = "STATUS:CANCELLED\n" if method == "CANCEL" else ""
    return ("BEGIN:VCALENDAR\n"
            "PRODID:-//imapfs tests//EN\n"
            "VERSION:2.0\n"
            "METHOD:%s\n"
            "BEGIN:VEVENT\n"
            "UID:%s@%s\n"
            "DTSTAMP:20240301T090000Z\n"
            "DTSTART:20240310T100000Z\n"
            "DTEND:20240310T110000Z\n"
            "SEQUENCE:0\n"
            "SUMMARY:Planning %s\n"
            "ORGANIZER;CN=Bob:mailto:bob@example.org\n"
            "%s%s"
            "END:VEVENT\n"
            "END:VCALENDAR\n" % (method, token, DOMAIN, token, att, status))


def calendar(token, method="REQUEST", partstat=None, **kw):
    """A top-level text/calendar; method=METHOD message."""
    cls = _CAL_CLASS[(method, partstat)]
    kind = "cal-" + method.lower() + ("-" + partstat.lower() if partstat else "")
    return _msg(token, kind, cls,
                ["Content-Class: urn:content-classes:calendarmessage",
                 "Content-Type: text/calendar; charset=utf-8; method=%s" % method,
                 "Content-Transfer-Encoding: 8bit"],
                _ics(token, method, partstat), **kw)


def calendar_alternative(token, method="REQUEST", partstat=None, **kw):
    """The Outlook/Exchange shape: multipart/alternative of text/plain and
    text/calendar; method=METHOD."""
    cls = _CAL_CLASS[(method, partstat)]
    b = "alt-%s" % token
    body = ("--%s\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            "You are invited.\n\n"
            "--%s\n"
            "Content-Type: text/calendar; charset=utf-8; method=%s\n"
            "Content-Transfer-Encoding: 8bit\n\n"
            "%s\n"
            "--%s--\n" % (b, b, method, _ics(token, method, partstat), b))
    kind = "calalt-" + method.lower() + ("-" + partstat.lower() if partstat else "")
    return _msg(token, kind, cls,
                ['Content-Type: multipart/alternative; boundary="%s"' % b], body, **kw)


def voicemail(token, **kw):
    b = "vm-%s" % token
    rnd = _rnd(token, "wav")
    pcm = rnd.randbytes(800)
    wav = (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " +
           struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" +
           struct.pack("<I", len(pcm)) + pcm)
    body = ("--%s\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            "You received a voice mail from Bob.\n\n"
            "--%s\n"
            "Content-Type: audio/wav; name=\"voicemail.wav\"\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=\"voicemail.wav\"\n\n"
            "%s\n"
            "--%s--\n" % (b, b, _b64(wav), b))
    return _msg(token, "voicemail", "IPM.Note.Microsoft.Voicemail.UM",
                ["Content-Class: voice",
                 'Content-Type: multipart/mixed; boundary="%s"' % b], body, **kw)


def tnef(token, cls="IPM.Note.Sample.Simple", *, correlator=True, where="attr",
         expected=None, **kw):
    """multipart/mixed: text/plain + application/ms-tnef (winmail.dat).
    where="attr": the class is in attMessageClass; "props": in attMsgProps
    PR_MESSAGE_CLASS_A.  correlator=True: X-MS-TNEF-Correlator equals
    PidTagTnefCorrelationKey (which holds the header value + a NUL, as
    Outlook writes it); False: the header is absent (the key stays in the
    TNEF), so the TNEF class must be ignored -> IPM.Note."""
    corr = "<%s.tnef.%s@%s>" % (_rnd(token, "corr").randbytes(8).hex().upper(),
                                token, DOMAIN)
    stream = build_tnef(cls=cls if where == "attr" else None,
                        props_cls=cls if where == "props" else None,
                        correlation_key=corr.encode("ascii") + b"\0")
    b = "tnef-%s" % token
    body = ("--%s\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            "This message has a TNEF attachment.\n\n"
            "--%s\n"
            "Content-Type: application/ms-tnef; name=\"winmail.dat\"\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=\"winmail.dat\"\n\n"
            "%s\n"
            "--%s--\n" % (b, b, _b64(stream), b))
    extra = ["X-MS-TNEF-Correlator: " + corr] if correlator else []
    exp = expected or (cls if correlator else "IPM.Note")
    kind = "tnef-%s-%s" % (where, "corr" if correlator else "nocorr")
    m = _msg(token, kind, exp, ['Content-Type: multipart/mixed; boundary="%s"' % b],
             body, extra_headers=extra, **kw)
    m["tnef"] = stream
    m["correlator"] = corr
    return m


def class_table(token):
    """The spec's "MIME inputs" table (section 5), in order."""
    return [
        plain(token),
        dsn(token, ("failed", "delayed")),
        dsn(token, ("delayed",)),
        mdn(token, "displayed"),
        mdn(token, "deleted"),
        smime_signed(token),
        smime_enveloped(token),
        calendar(token, "REQUEST"),
        calendar(token, "REPLY", "ACCEPTED"),
        calendar(token, "CANCEL"),
        calendar(token, "PUBLISH"),
        voicemail(token),
        content_class_message(token),
        tnef(token, "IPM.Note.Sample.Simple", correlator=True),
        tnef(token, "IPM.Note.Sample.Simple", correlator=False),
    ]


# -- self check ----------------------------------------------------------------------

def check_wellformed(msg):
    """Raise unless the message parses as MIME and any TNEF part decodes
    (with the class / correlation key the builder put there)."""
    raw = msg["raw"]
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF in %s" % msg["kind"]
    assert raw.count(b"\r\n\r\n") >= 1
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert parsed["Message-ID"] == msg["msgid"], msg["kind"]
    assert not parsed.defects, (msg["kind"], parsed.defects)
    for part in parsed.walk():
        assert not part.defects, (msg["kind"], part.get_content_type(), part.defects)
        if part.get_content_type() == "application/ms-tnef":
            data = part.get_payload(decode=True)
            assert data == msg["tnef"]
            t = parse_tnef(data)
            key = t["props"].get((PR_TNEF_CORRELATION_KEY, PT_BINARY))
            assert key == msg["correlator"].encode() + b"\0", key
            cls = t["class"] or t["props"].get((PR_MESSAGE_CLASS, PT_STRING8))
            assert cls, "TNEF without a class"
            hdr = parsed["X-MS-TNEF-Correlator"]
            if hdr is not None:
                assert hdr.encode() + b"\0" == key
        if part.get_content_type() == "text/calendar":
            text = part.get_payload(decode=True).decode()
            assert "METHOD:%s" % part.get_param("method") in text.replace("\r\n", "\n")
    if parsed.get_content_type() == "multipart/signed":
        assert [p.get_content_type() for p in parsed.get_payload()] == [
            "text/plain", "application/pkcs7-signature"]
    return parsed


def _selftest():
    # a hand-checked TNEF: signature, key, one attribute with its checksum
    t = build_tnef(cls="IPM.Note.Sample.Simple", correlation_key=b"<x@y>\0")
    assert t[:4] == bytes.fromhex("789f3e22"), t[:4].hex()
    level, attr_id, length = struct.unpack_from("<BII", t, 6)
    assert (level, attr_id, length) == (1, ATT_TNEF_VERSION, 4)
    assert t[15:19] == b"\x00\x00\x01\x00" and t[19:21] == b"\x01\x00"
    p = parse_tnef(t)
    assert p["class"] == "IPM.Note.Sample.Simple"
    assert p["props"][(PR_TNEF_CORRELATION_KEY, PT_BINARY)] == b"<x@y>\0"
    assert p["props"][(PR_IMPORTANCE, PT_LONG)] == 1
    bad = bytearray(t)
    bad[-3] ^= 1                       # corrupt attMsgProps data
    try:
        parse_tnef(bytes(bad))
        raise AssertionError("checksum error not detected")
    except ValueError:
        pass
    p = parse_tnef(build_tnef(props_cls="IPC.Foo"))
    assert p["class"] is None and p["props"][(PR_MESSAGE_CLASS, PT_STRING8)] == "IPC.Foo"
    msgs = class_table("selftest") + [
        tnef("selftest", where="props"), tnef("selftest", "IPC.Test.Thing"),
        calendar_alternative("selftest"), calendar("selftest", "REPLY", "DECLINED")]
    for m in msgs:
        check_wellformed(m)
    assert len({m["msgid"] for m in class_table("t")}) == len(class_table("t"))
    return len(msgs)


if __name__ == "__main__":
    print("ok: %d messages well-formed" % _selftest())
