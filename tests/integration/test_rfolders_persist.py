"""Where the receive-folder table lives (spec receive-folders.md section 4,
"Persistence"): in the private METADATA entry
/private/vendor/imapfs/receive-folders of the server when it advertises
METADATA (RFC 5464), otherwise in a private local file under
$XDG_STATE_HOME/imapfs/.  Renaming a folder through the mount updates the
rows pointing at it; removing it deletes them."""

import os
import stat
import time

import pytest

import write_helpers as wh

ENTRY = "/private/vendor/imapfs/receive-folders"


def make_folders(server, *names):
    m = server.connect()
    try:
        for n in names:
            wh.create_folder(m, n)
    finally:
        m.logout()


def state_files(state_home):
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(state_home, "imapfs")):
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def server_entry(server):
    m = server.connect()
    try:
        return wh.get_metadata(m, "", ENTRY)
    finally:
        m.logout()


# -- METADATA -------------------------------------------------------------------------

def test_metadata_server_harness(scratch_metadata_server):
    """dovecot-env --metadata: METADATA advertised, server annotations work."""
    m = scratch_metadata_server.connect()
    try:
        assert "METADATA" in wh.capabilities(m)
        assert wh.get_metadata(m, "", ENTRY) is None
    finally:
        m.logout()


@pytest.mark.slow
@pytest.mark.deadline(180)
def test_table_on_server_with_metadata(scratch_metadata_server, rf_mounter, tmp_path):
    server = scratch_metadata_server
    make_folders(server, "Samples", "Archive")
    a = rf_mounter(server, state=str(tmp_path / "stateA"), cache=str(tmp_path / "cA"))
    wh.rf_set(a.path, "IPM.Note.Sample Samples", "MY.Class Archive")
    value = wh.helpers.wait_for(lambda: server_entry(server), 5, 0.2)
    assert value is not None, "no METADATA entry %s on the server" % ENTRY
    assert b"IPM.Note.Sample" in value and b"MY.Class" in value, value[:500]
    rows_a = [(r["cls"], r["folder"], r["flags"], r["ts"]) for r in wh.rf_rows(a.path)]
    a.stop()
    # another machine: other cache, other state home
    b = rf_mounter(server, state=str(tmp_path / "stateB"), cache=str(tmp_path / "cB"))
    rows_b = [(r["cls"], r["folder"], r["flags"], r["ts"]) for r in wh.rf_rows(b.path)]
    assert rows_b == rows_a
    assert wh.rf_get(b.path, "IPM.Note.Sample.Simple") == ("Samples", "IPM.Note.Sample")
    # a change through B reaches the server too
    wh.rf_set(b.path, "MY.Class")
    ok = wh.helpers.wait_for(lambda: b"MY.Class" not in (server_entry(server) or b""),
                             5, 0.2)
    assert ok, "deleting a row did not update the METADATA entry"


# -- local file -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.deadline(180)
def test_local_file_without_metadata(scratch_dovecot, rf_mounter, tmp_path):
    server = scratch_dovecot
    m = server.connect()
    try:
        assert "METADATA" not in wh.capabilities(m)
    finally:
        m.logout()
    make_folders(server, "Samples")
    state = str(tmp_path / "state1")
    a = rf_mounter(server, state=state)
    wh.rf_set(a.path, "IPM.Note.Sample Samples")

    def written():
        for p in state_files(state):
            try:
                with open(p, "rb") as f:
                    if b"IPM.Note.Sample" in f.read():
                        return p
            except OSError:
                pass
        return None
    path = wh.helpers.wait_for(written, 5, 0.2)
    assert path, "no file under %s/imapfs/ holds the table: %s" % (
        state, state_files(state))
    for p in state_files(state):
        mode = stat.S_IMODE(os.stat(p).st_mode)
        assert mode & 0o077 == 0, "%s has mode %o (must be private)" % (p, mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = wh.rf_rows(a.path)
    a.stop()
    # remount, same state home, other cache: same table
    b = rf_mounter(server, state=state, cache=str(tmp_path / "other-cache"))
    assert wh.rf_rows(b.path) == rows
    b.stop()
    # another state home: a new (default) table
    c = rf_mounter(server, state=str(tmp_path / "state2"))
    assert [(r["cls"], r["folder"], r["flags"]) for r in wh.rf_rows(c.path)] == \
        wh.RF_DEFAULTS


# -- folder renames and removals ----------------------------------------------------

def test_rename_folder_updates_rows(scratch_dovecot, rf_mounter):
    old, new = wh.unique_folder("RnOld"), wh.unique_folder("RnNew")
    make_folders(scratch_dovecot, old)
    mount = rf_mounter(scratch_dovecot)
    wh.rf_set(mount.path, "IPM.Note.Rn %s" % old, "IPM.Note.Rn2 %s" % old)
    os.rename(os.path.join(mount.path, old), os.path.join(mount.path, new))
    got = wh.rf_map(mount.path)
    assert got["ipm.note.rn"] == (new, []) and got["ipm.note.rn2"] == (new, []), got
    assert wh.rf_get(mount.path, "IPM.Note.Rn.X") == (new, "IPM.Note.Rn")
    assert old not in wh.rf_read(mount.path)


def test_rename_parent_updates_child_rows(scratch_dovecot, rf_mounter):
    """Renaming a folder renames its subfolders too: rows pointing at a
    subfolder follow it."""
    old, new = wh.unique_folder("RpOld"), wh.unique_folder("RpNew")
    make_folders(scratch_dovecot, old, old + "/Sub")
    mount = rf_mounter(scratch_dovecot)
    wh.rf_set(mount.path, "IPM.Note.Sub %s/Sub" % old)
    os.rename(os.path.join(mount.path, old), os.path.join(mount.path, new))
    assert wh.rf_map(mount.path)["ipm.note.sub"] == (new + "/Sub", [])


def test_rename_default_row_target(scratch_dovecot, rf_mounter):
    old, new = wh.unique_folder("RdOld"), wh.unique_folder("RdNew")
    make_folders(scratch_dovecot, old)
    mount = rf_mounter(scratch_dovecot)
    wh.rf_set(mount.path, '"" %s' % old)
    os.rename(os.path.join(mount.path, old), os.path.join(mount.path, new))
    row = wh.rf_rows(mount.path)[0]
    assert (row["cls"], row["folder"], row["flags"]) == ("", new, ["nodelete"])


def test_rmdir_removes_rows(scratch_dovecot, rf_mounter):
    gone, keep = wh.unique_folder("RmMe"), wh.unique_folder("Keep")
    make_folders(scratch_dovecot, gone, keep)
    mount = rf_mounter(scratch_dovecot)
    wh.rf_set(mount.path, "IPM.Note.Rm %s" % gone, "IPM.Note.Rm.Sub %s" % gone,
              "IPM.Note.Keep %s" % keep)
    os.rmdir(os.path.join(mount.path, gone))
    got = wh.rf_map(mount.path)
    assert "ipm.note.rm" not in got and "ipm.note.rm.sub" not in got, got
    assert got["ipm.note.keep"] == (keep, [])
    assert wh.rf_get(mount.path, "IPM.Note.Rm.X") == ("INBOX", "IPM")
    # the default table rows are untouched
    assert [(r["cls"], r["folder"], r["flags"]) for r in wh.rf_rows(mount.path)
            if r["cls"].upper() in ("", "IPC", "IPM", "REPORT.IPM")] == wh.RF_DEFAULTS


def test_rename_persists(scratch_dovecot, rf_mounter, tmp_path):
    """The renamed row is what a later mount sees."""
    old, new = wh.unique_folder("RsOld"), wh.unique_folder("RsNew")
    make_folders(scratch_dovecot, old)
    a = rf_mounter(scratch_dovecot)
    wh.rf_set(a.path, "IPM.Note.Rs %s" % old)
    os.rename(os.path.join(a.path, old), os.path.join(a.path, new))
    a.stop()
    time.sleep(0.2)
    b = rf_mounter(scratch_dovecot)
    assert wh.rf_map(b.path)["ipm.note.rs"] == (new, [])


# -- a table that cannot be read is never overwritten ---------------------------------

@pytest.mark.slow
@pytest.mark.deadline(180)
def test_unreadable_table_not_overwritten(scratch_metadata_server, fault_proxy, scratch_mounter,
                                          rf_mounter, tmp_path):
    """The METADATA read at mount fails (the proxy cuts GETMETADATA twice: the
    first try and the pool's retry): the mount starts with the default rows,
    but a change through the control file reads the stored table first, so
    the rules set by an earlier mount survive beside the new one."""
    server = scratch_metadata_server
    make_folders(server, "Samples", "Archive")
    first = rf_mounter(server, state=str(tmp_path / "state0"))
    wh.rf_set(first.path, "IPM.Note.Sample Samples")
    first.stop()
    assert b"IPM.Note.Sample\tSamples" in (server_entry(server) or b"")
    port, log = fault_proxy(server.env["IMAP_PORT"], cut_on="GETMETADATA", cut_when="request",
                            cut_count=2)
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], port)
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=5",
            "cache_dir=" + str(tmp_path / "cache-proxied")]
    a = scratch_mounter(server, url=url, opts=opts)
    text = wh.helpers.read_text(log)
    assert text.count("CUT request") == 2, text[-2000:]
    wh.rf_set(a.path, "MY.Class Archive")
    value = server_entry(server) or b""
    assert b"IPM.Note.Sample\tSamples" in value, value[:500]
    assert b"MY.Class\tArchive" in value, value[:500]
