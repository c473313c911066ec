"""A remount serves the listing an earlier mount saved at once, and checks
it with the server in the background (src/model/listing_refresh.c): `ls`
pays no round trip, the server's changes show up as soon as the check is
done, and nothing that acts on a message (open, read, getxattr) is served
from the unchecked listing."""

import errno
import os
import time

import pytest

import helpers
import link_helpers
import mailgen
import write_helpers as wh

RTT_MS = 400   # a slow link: a round trip is easy to tell from none


def expunge(server, folder, uid):
    m = server.connect()
    try:
        mailgen.check(m.select(mailgen.qmbox(folder)), "SELECT")
        mailgen.check(m.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        mailgen.check(m.expunge(), "EXPUNGE")
    finally:
        m.logout()


@pytest.mark.deadline(240)
def test_remount_serves_saved_listing_then_checks_it(scratch_dovecot, scratch_mounter, tmp_path):
    server = scratch_dovecot
    folder = wh.unique_folder("Saved")
    msgs = [wh.make_msg(wh.unique("sv"), i) for i in range(6)]
    m = server.connect()
    try:
        wh.seed(m, folder, msgs)
    finally:
        m.logout()
    link = link_helpers.Link(server.env["IMAP_PORT"], rtt_ms=RTT_MS)
    try:
        url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], link.port)
        opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext",
                "cache_dir=" + str(tmp_path / "cache")]
        mnt = scratch_mounter(server, url=url, opts=opts)
        d = helpers.folder_path(mnt.path, folder)
        saved = sorted(os.listdir(d))
        assert saved == sorted(wh.canonical(x, x["uid"]) for x in msgs)
        mnt.stop()

        # meanwhile, on the server: one message gone, one new
        gone, kept = msgs[0], msgs[1]
        expunge(server, folder, gone["uid"])
        new = wh.make_msg(wh.unique("svnew"), 9)
        m = server.connect()
        try:
            wh.seed(m, folder, [new], create=False)
        finally:
            m.logout()
        now = sorted([wh.canonical(x, x["uid"]) for x in msgs[1:]] +
                     [wh.canonical(new, new["uid"])])

        mnt = scratch_mounter(server, url=url, opts=opts)
        d = helpers.folder_path(mnt.path, folder)
        t0 = time.monotonic()
        first = sorted(os.listdir(d))
        took = time.monotonic() - t0
        assert first == saved, "the first ls after the remount is not the saved listing"
        assert took < RTT_MS / 1000 / 2, "the saved listing waited for the server: %.3f s" % took
        # what acts on a message waits for the check: the gone one is gone
        with pytest.raises(OSError) as ei:
            with open(os.path.join(d, wh.canonical(gone, gone["uid"])), "rb") as f:
                f.read()
        assert ei.value.errno in (errno.ENOENT, errno.ESTALE), ei.value
        with open(os.path.join(d, wh.canonical(kept, kept["uid"])), "rb") as f:
            assert f.read() == kept["raw"]
        # and the next ls shows the server's state
        deadline = time.monotonic() + 20
        got = first
        while got != now and time.monotonic() < deadline:
            time.sleep(0.1)
            got = sorted(os.listdir(d))
        assert got == now
        mnt.stop()
    finally:
        link.close()


@pytest.mark.deadline(240)
def test_saved_listing_of_a_deleted_folder(scratch_dovecot, scratch_mounter, tmp_path):
    """The folder went on the server while unmounted: its saved listing may
    be shown once, then the check finds it gone and the folder goes."""
    server = scratch_dovecot
    folder = wh.unique_folder("SavedGone")
    msgs = [wh.make_msg(wh.unique("svg"), i) for i in range(3)]
    m = server.connect()
    try:
        wh.seed(m, folder, msgs)
    finally:
        m.logout()
    cache = str(tmp_path / "cache")
    mnt = scratch_mounter(server, opts=server.opts(cache))
    assert len(os.listdir(helpers.folder_path(mnt.path, folder))) == 3
    mnt.stop()
    mnt = scratch_mounter(server, opts=server.opts(cache))
    d = helpers.folder_path(mnt.path, folder)
    os.listdir(d)
    m = server.connect()
    try:
        mailgen.check(m.delete(mailgen.qmbox(folder)), "DELETE")
    finally:
        m.logout()
    mnt.stop()
    mnt = scratch_mounter(server, opts=server.opts(cache))
    try:
        os.listdir(d)
    except FileNotFoundError:
        pass
    deadline = time.monotonic() + 20
    while os.path.exists(d) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not os.path.exists(d)
    with pytest.raises(FileNotFoundError):
        os.listdir(d)
    assert mnt.proc.poll() is None
