"""What a lookup or a listing costs the server, and who waits for whom:

- a name that does not exist, looked up 200 times at the mount root (a
  shell or an editor probing .git), costs at most one LIST: the kernel keeps
  the answer as a negative entry for dir_cache;
- a name made afterwards through the mount (mkdir, cp, mv; the trash folder
  rm creates) is there at once all the same;
- an ls of a folder is answered from its cached listing while another sync
  of the folder is held up at the server, and while a LIST is;
- a remount lists a folder from its saved listing before the folder's
  SELECT has come back, and what changed meanwhile follows.

The mounts go through a relay (relay_helpers.py) that counts imapfs's
commands and holds one back until the test lets it go."""

import errno
import os
import threading
import time

import pytest

import helpers
import live_helpers as lh
import write_helpers as wh
from relay_helpers import command_relay  # noqa: F401  (fixture)

pytestmark = pytest.mark.deadline(120)


class Hold:
    """A hook for CommandRelay.arm: the command waits until release()."""

    def __init__(self):
        self.held = threading.Event()       # the command arrived
        self.go = threading.Event()

    def __call__(self):
        self.held.set()
        self.go.wait(60)

    def release(self):
        self.go.set()


def relayed_mount(server, relay, scratch_mounter, tmp_path, extra=()):
    url = "imap://%s@127.0.0.1:%d" % (server.env["USER"], relay.port)
    # dir_cache=60: nothing goes stale while a test runs
    opts = ["password_file=" + server.env["PASSWORD_FILE"], "plaintext", "timeout=10",
            "dir_cache=60", "cache_dir=" + str(tmp_path / "cache-relay")] + list(extra)
    return scratch_mounter(server, url=url, opts=opts)


def absent(path):
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ENOENT
    return False


def seed_folder(server, prefix, n):
    folder = wh.unique_folder(prefix)
    m = server.connect()
    try:
        msgs = wh.seed(m, folder, [wh.make_msg(wh.unique(prefix.lower()), i) for i in range(n)])
    finally:
        m.logout()
    return folder, msgs


def test_missing_name_at_root_costs_one_list(scratch_dovecot, command_relay, scratch_mounter,
                                             tmp_path):
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path)
    os.listdir(mnt.path)
    before = r.count("LIST")
    for _ in range(200):
        assert absent(os.path.join(mnt.path, ".git"))
    lists = r.count("LIST") - before
    assert lists <= 1, "200 lookups of a missing name sent %d LISTs" % lists


def test_names_made_through_the_mount_show_at_once(scratch_dovecot, command_relay,
                                                   scratch_mounter, tmp_path):
    src, _ = seed_folder(scratch_dovecot, "NegSrc", 2)
    dst, _ = seed_folder(scratch_dovecot, "NegDst", 0)
    trash = wh.unique_folder("NegTrash")
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path, ["trash=" + trash])
    src_dir, dst_dir = (helpers.folder_path(mnt.path, f) for f in (src, dst))
    new_dir = os.path.join(mnt.path, wh.unique_folder("NegNew"))
    copied = os.path.join(dst_dir, "copied.eml")
    moved = os.path.join(dst_dir, "moved.eml")
    trash_dir = os.path.join(mnt.path, trash)
    for p in (new_dir, copied, moved, trash_dir):
        assert absent(p) and absent(p), p       # the second answer is the kernel's

    os.mkdir(new_dir)
    assert os.path.isdir(new_dir)
    raw = wh.make_msg(wh.unique("negcp"), 5)["raw"]
    with open(copied, "wb") as f:
        f.write(raw)
    assert os.path.isfile(copied)
    names = sorted(os.listdir(src_dir))
    os.rename(os.path.join(src_dir, names[0]), moved)
    assert os.path.isfile(moved)
    # rm makes the trash folder itself: the kernel hears of it from the
    # notifier, which drops the negative entry, a moment later
    os.unlink(os.path.join(src_dir, names[1]))
    assert helpers.wait_for(lambda: os.path.isdir(trash_dir), 3), trash_dir
    assert len(os.listdir(trash_dir)) == 1


def test_ls_served_while_a_sync_is_held(scratch_dovecot, command_relay, scratch_mounter,
                                        tmp_path):
    """The folder is watched: another client's APPEND makes the watcher sync
    it, and that sync's SELECT is held at the relay.  (A sync a lookup or a
    touch starts would do, but the kernel keeps the directory locked while
    those run, and ls would wait for the kernel, not for imapfs.)"""
    folder, _ = seed_folder(scratch_dovecot, "Held", 3)
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path, ["watch=" + folder])
    d = helpers.folder_path(mnt.path, folder)

    def watcher(state):
        return lambda st: st["watches"].get(folder, {}).get("state") == state

    assert watcher("idle")(lh.wait_status(mnt.path, watcher("idle"), 10))
    names = sorted(os.listdir(d))
    assert len(names) == 3
    hold = Hold()
    r.arm("SELECT", hold, text=folder)
    m = scratch_dovecot.connect()
    try:
        wh.seed(m, folder, [wh.make_msg(wh.unique("held"), 9)], create=False)
    finally:
        m.logout()
    try:
        assert hold.held.wait(10), "the watcher's sync sent no SELECT"
        assert watcher("syncing")(lh.read_status(mnt.path))
        t0 = time.monotonic()
        assert sorted(os.listdir(d)) == names
        took = time.monotonic() - t0
        assert took < 2, "ls waited %.1f s for the held sync" % took
        assert watcher("syncing")(lh.read_status(mnt.path)), "the sync was not held"
    finally:
        hold.release()
    assert helpers.wait_for(lambda: len(os.listdir(d)) == 4, 10)


def test_remount_lists_the_saved_listing_before_its_select(scratch_dovecot, command_relay,
                                                          scratch_mounter, tmp_path):
    """A remount (the same cache_dir) lists a folder from the listing saved
    at the last unmount while the folder's SELECT is still held at the
    relay: on a slow link that SELECT (and the changes after it) is a round
    trip or two.  What changed on the server in between reaches the kernel
    once the SELECT is let go: the message expunged leaves the listing, the
    one appended joins it, and every name reads as its message."""
    folder, msgs = seed_folder(scratch_dovecot, "Saved", 3)
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    saved = sorted(os.listdir(d))
    assert len(saved) == 3
    name_of = {int(os.getxattr(os.path.join(d, n), "user.imap.uid")): n for n in saved}
    mnt.stop()

    gone, kept = msgs[0], msgs[1:]
    added = wh.make_msg(wh.unique("saved"), 7)
    m = scratch_dovecot.connect()
    try:
        m.select('"%s"' % folder)
        m.uid("STORE", str(gone["uid"]), "+FLAGS.SILENT", "(\\Deleted)")
        m.expunge()
        wh.seed(m, folder, [added], create=False)
    finally:
        m.logout()

    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    hold = Hold()
    r.arm("SELECT", hold, text=folder)
    opened = {}

    def read(name):
        try:
            with open(os.path.join(d, name), "rb") as fh:
                opened[name] = fh.read()
        except OSError as e:
            opened[name] = e.errno

    try:
        t0 = time.monotonic()
        listed = sorted(os.listdir(d))
        took = time.monotonic() - t0
        assert took < 2, "ls waited %.1f s for the held SELECT" % took
        assert listed == saved
        assert hold.held.wait(10), "the remount's listing sent no SELECT"
        # a message is opened only once the server has said it is there
        readers = [threading.Thread(target=read, args=(name_of[x["uid"]],), daemon=True)
                   for x in (gone, kept[0])]
        for t in readers:
            t.start()
        time.sleep(0.5)
        assert not opened, "opened before the SELECT came back: %r" % sorted(opened)
    finally:
        hold.release()
    for t in readers:
        t.join(15)
    assert opened.get(name_of[kept[0]["uid"]]) == kept[0]["raw"]
    assert opened.get(name_of[gone["uid"]]) in (errno.ENOENT, errno.ESTALE), \
        "the expunged message read as %r" % (opened.get(name_of[gone["uid"]]),)

    want = {name_of[x["uid"]] for x in kept}

    def current():
        names = set(os.listdir(d))
        return names if len(names) == 3 and want < names and name_of[gone["uid"]] not in names \
            else None

    names = helpers.wait_for(current, 10)
    assert names, "the listing after the SELECT: %s" % sorted(os.listdir(d))
    assert name_of[gone["uid"]] not in names
    by_uid = {x["uid"]: x["raw"] for x in kept + [added]}
    for n in names:
        p = os.path.join(d, n)
        with open(p, "rb") as fh:
            assert fh.read() == by_uid[int(os.getxattr(p, "user.imap.uid"))], n


def test_remount_of_a_folder_made_again_shows_the_new_one(scratch_dovecot, command_relay,
                                                          scratch_mounter, tmp_path):
    """Between two mounts another client deletes the folder and makes one of
    the same name (a new UIDVALIDITY, the same UIDs for other messages):
    the remount shows the saved listing at once, then the new folder's
    names only, and no name reads as another message."""
    folder, old = seed_folder(scratch_dovecot, "Again", 3)
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path)
    saved = sorted(os.listdir(helpers.folder_path(mnt.path, folder)))
    assert len(saved) == 3
    mnt.stop()

    m = scratch_dovecot.connect()
    try:
        m.select('"%s"' % folder)
        validity = m.response("UIDVALIDITY")[1][0]
        m.close()
        assert m.delete('"%s"' % folder)[0] == "OK"
        time.sleep(1.1)     # Dovecot's UIDVALIDITY is a time in seconds
        new = wh.seed(m, folder, [wh.make_msg(wh.unique("again"), i) for i in range(2)])
        m.select('"%s"' % folder, readonly=True)
        assert m.response("UIDVALIDITY")[1][0] != validity
    finally:
        m.logout()
    assert {x["uid"] for x in new} <= {x["uid"] for x in old}

    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    hold = Hold()
    r.arm("SELECT", hold, text=folder)
    try:
        assert sorted(os.listdir(d)) == saved
        assert hold.held.wait(10), "the remount's listing sent no SELECT"
    finally:
        hold.release()

    def current():
        names = set(os.listdir(d))
        return names if len(names) == 2 and not names & set(saved) else None

    names = helpers.wait_for(current, 10)
    assert names, "after the SELECT: %s" % sorted(os.listdir(d))
    by_uid = {x["uid"]: x["raw"] for x in new}
    for n in names:
        p = os.path.join(d, n)
        with open(p, "rb") as fh:
            assert fh.read() == by_uid[int(os.getxattr(p, "user.imap.uid"))], n
    # the notifier tells the kernel the old names went, a moment later
    assert helpers.wait_for(lambda: all(absent(os.path.join(d, n)) for n in saved), 10), \
        [n for n in saved if not absent(os.path.join(d, n))]


def test_remount_whose_select_fails_serves_the_saved_listing(scratch_dovecot, command_relay,
                                                            scratch_mounter, tmp_path):
    """The remount's SELECT of the folder is held past -o timeout: the sync
    fails, and the listing saved at the last unmount stays what the folder
    shows (as a listing in memory does after a failed refresh; -o
    offline=cached), its cached messages readable."""
    folder, msgs = seed_folder(scratch_dovecot, "SavedDown", 2)
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path, ["timeout=2"])
    d = helpers.folder_path(mnt.path, folder)
    saved = sorted(os.listdir(d))
    body = {}
    for n in saved:
        with open(os.path.join(d, n), "rb") as fh:
            body[n] = fh.read()
    assert sorted(body.values()) == sorted(x["raw"] for x in msgs)
    mnt.stop()

    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path, ["timeout=2"])
    d = helpers.folder_path(mnt.path, folder)
    log = os.path.join(str(tmp_path), "imapfs-w1.stderr")
    hold, again = Hold(), Hold()
    r.arm("SELECT", hold, text=folder)
    try:
        assert sorted(os.listdir(d)) == saved
        assert hold.held.wait(10), "the remount's listing sent no SELECT"

        def failed():
            with open(log, errors="replace") as fh:
                return "cannot list folder" in fh.read()

        assert helpers.wait_for(failed, 10), "the held SELECT did not fail the sync"
        # the next sync's SELECT fails as well (if the folder is not
        # resting from the first, which sends none)
        r.arm("SELECT", again, text=folder)
        for _ in range(2):
            assert sorted(os.listdir(d)) == saved
        for n in saved:
            with open(os.path.join(d, n), "rb") as fh:
                assert fh.read() == body[n], n
    finally:
        hold.release()
        again.release()


def test_ls_of_a_folder_while_a_list_is_held(scratch_dovecot, command_relay, scratch_mounter,
                                             tmp_path):
    """A missing name at the root sends a LIST, held at the relay; an ls of
    a folder, whose tree is recent enough, does not wait for it.  (The
    root's own ls would: the kernel keeps the root locked while the lookup
    runs.)"""
    folder, _ = seed_folder(scratch_dovecot, "ListHeld", 2)
    r = command_relay(scratch_dovecot.env["IMAP_PORT"])
    mnt = relayed_mount(scratch_dovecot, r, scratch_mounter, tmp_path)
    d = helpers.folder_path(mnt.path, folder)
    names = sorted(os.listdir(d))
    hold = Hold()
    r.arm("LIST", hold)
    probed = []
    prober = threading.Thread(
        target=lambda: probed.append(absent(os.path.join(mnt.path, wh.unique("Missing")))),
        daemon=True)
    prober.start()
    try:
        assert hold.held.wait(10), "the lookup sent no LIST"
        t0 = time.monotonic()
        assert sorted(os.listdir(d)) == names
        took = time.monotonic() - t0
        assert took < 2, "ls waited %.1f s for the held LIST" % took
        assert prober.is_alive(), "the LIST was not held"
    finally:
        hold.release()
        prober.join(30)
    assert probed == [True]
