/* mailbox_read.c - owns the read path: opening a message, checking its
 * RFC822.SIZE against the body (at open, or when a read reaches its end),
 * and reads through the block cache. */
#include "mailbox_p.h"
#include "inode.h"
#include "util/log.h"
#include "cache/prefetch.h"
#include "cache/shared_bytes.h"

#include <stdint.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- reading ---- */

struct block_job {
	const struct mailbox_file *file;
	const struct cache_key *key;
	char *buf;
	size_t *len;
};

static int fetch_block_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct block_job *job = ctx;

	(void)st;
	if (imap_expect_validity(s, job->file->uidvalidity) < 0) {
		log_warn("UIDVALIDITY of %s changed under an open message: refusing to read",
			 job->file->server);
		return -ESTALE;
	}
	return imap_fetch_body(s, job->file->uid, job->key->block * CACHE_BLOCK_SIZE, CACHE_BLOCK_SIZE,
			       job->buf, job->len);
}

struct fill_ctx {
	struct mailbox *mb;
	const struct mailbox_file *file;
};

static int fill_block(const struct cache_key *key, char *buf, size_t *len, void *ctx)
{
	struct fill_ctx *fc = ctx;
	struct block_job job = { fc->file, key, buf, len };
	int r = pool_run(fc->mb->pool, fc->file->server, 0, fetch_block_fn, &job);

	if (r < 0)
		log_warn("cannot fetch UID %u of %s (block %u): %s", fc->file->uid, fc->file->server,
			 key->block, strerror(-r));
	return r == -ESTALE ? -EIO : r;
}

/* Length of block `block` of the message, fetching it into the cache. */
static long block_length(struct mailbox *mb, const struct mailbox_file *f, uint32_t block)
{
	struct cache_key key = { f->key, f->uidvalidity, f->uid, block, 0 };
	struct fill_ctx fc = { mb, f };
	size_t len = 0;
	long r = cache_read(mb->cache, &key, fill_block, &fc, 0, NULL, 0, &len);

	return r < 0 ? r : (long)len;
}

/* The block holding byte pos - 1 of a message (pos <= UINT32_MAX + 1). */
static uint32_t last_block(uint64_t pos)
{
	return pos ? (uint32_t)((pos - 1) / CACHE_BLOCK_SIZE) : 0;
}

#define MAX_BLOCK (UINT32_MAX / CACHE_BLOCK_SIZE) /* the last one IMAP can address */
/* A larger claim is checked at open: no server takes mail that large, so
 * it is likely a lie, which verified_size finds in a few FETCHes where a
 * reader would fetch all the bytes up to the claimed end first. */
#define UNCHECKED_MAX (256u << 20)

/* Size of a body whose last bytes are in block lo and whose block hi is
 * empty (lo < hi): found by halves. */
static int64_t size_between(struct mailbox *mb, const struct mailbox_file *f, uint32_t lo, uint32_t hi)
{
	long len;

	while (lo + 1 < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		len = block_length(mb, f, mid);
		if (len < 0)
			return len;
		if (len > 0 && len < (long)CACHE_BLOCK_SIZE)
			return (int64_t)mid * CACHE_BLOCK_SIZE + len; /* the end */
		if (len > 0)
			lo = mid;
		else
			hi = mid;
	}
	len = block_length(mb, f, lo);
	return len < 0 ? len : (int64_t)lo * CACHE_BLOCK_SIZE + len;
}

/* The size RFC822.SIZE claims is checked against the body itself: the block
 * holding the claimed end is read (a read needs it anyway), and a server that
 * lies (gmail has) gets found out here.  A body that is not where the claim
 * says is searched by doubling steps and halves: a claim near 4 GiB, or a
 * body without end, costs some 30 FETCHes, not 32,768.  IMAP numbers
 * (RFC822.SIZE, partial FETCH offsets) are 32-bit: a body found to go on past
 * UINT32_MAX is more than IMAP can address, and the size returned says so
 * (> UINT32_MAX). */
static int64_t verified_size(struct mailbox *mb, const struct mailbox_file *f)
{
	uint32_t block = last_block(f->size), step = 1;
	long len = block_length(mb, f, block);

	if (len < 0 || (len > 0 && len < (long)CACHE_BLOCK_SIZE))
		return len < 0 ? len : (int64_t)block * CACHE_BLOCK_SIZE + len;
	if (len == 0) /* shorter than claimed */
		return block ? size_between(mb, f, 0, block) : 0;
	while (block < MAX_BLOCK) { /* longer, or exactly full */
		uint32_t probe = MAX_BLOCK - block > step ? block + step : MAX_BLOCK;

		len = block_length(mb, f, probe);
		if (len < 0)
			return len;
		if (len == 0)
			return size_between(mb, f, block, probe);
		if (len < (long)CACHE_BLOCK_SIZE)
			return (int64_t)probe * CACHE_BLOCK_SIZE + len;
		block = probe;
		step *= 2;
	}
	return ((int64_t)MAX_BLOCK + 1) * CACHE_BLOCK_SIZE; /* 4 GiB or more */
}

/* verified_size, with what no message can be: past what IMAP addresses,
 * or empty (its body is gone: expunged by another client while this
 * session still lists it -- never an EOF). */
static int64_t checked_size(struct mailbox *mb, const struct mailbox_file *file, const char *path)
{
	int64_t real = verified_size(mb, file);

	if (real > UINT32_MAX) {
		log_warn("UID %u of %s: the body goes on past 4 GiB, more than IMAP can address", file->uid,
			 path);
		return -EFBIG;
	}
	if (real == 0 && file->size > 0) {
		log_warn("UID %u of %s: the server returns no bytes for it (expunged?)", file->uid, path);
		return -EIO;
	}
	return real;
}

/* The size the body showed, kept in the listing: stat and later opens use
 * it, and it is never checked again (a message never changes). */
static void keep_size(struct msg *m, const struct mailbox_file *file, const char *path, uint64_t real)
{
	if (real != file->size) {
		log_warn("UID %u of %s: RFC822.SIZE says %llu bytes but the message has %llu", file->uid,
			 path, (unsigned long long)file->size, (unsigned long long)real);
		__atomic_store_n(&m->size, (uint32_t)real, __ATOMIC_RELAXED);
		__atomic_or_fetch(&m->flags, MSG_SIZE_CORRECTED, __ATOMIC_RELAXED);
	}
	__atomic_or_fetch(&m->flags, MSG_SIZE_VERIFIED, __ATOMIC_RELAXED);
}

#define REPLACE_TRIES 100 /* of 10 ms */

/* Block `block` of the message fetched again, alone, over what the cache
 * holds. */
static int refetch_block(struct mailbox *mb, const struct mailbox_file *f, uint32_t block)
{
	struct cache_key key = { f->key, f->uidvalidity, f->uid, block, 0 };
	struct fill_ctx fc = { mb, f };
	char *buf = malloc(CACHE_BLOCK_SIZE);
	size_t len = 0;
	int r = buf ? fill_block(&key, buf, &len, &fc) : -ENOMEM;
	bool kept = r == 0 && cache_put(mb->cache, &key, buf, len);
	int tries = 0;

	/* a reader copying the old bytes out holds them a moment (longer
	 * while the disk cache's queue is full): waited for, a little; the
	 * disk has the new bytes already */
	for (; r == 0 && !kept && tries < REPLACE_TRIES; tries++) {
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
		kept = cache_put_memory(mb->cache, &key, buf, len);
	}
	/* what held the block meanwhile may have been a fetch of the old
	 * bytes, queued for the disk after ours: ours go last */
	if (kept && tries > 0)
		cache_put(mb->cache, &key, buf, len);
	if (r == 0 && !kept) {
		log_warn("UID %u of %s: block %u fetched again could not replace the one held", f->uid,
			 f->server, block);
		r = -EIO;
	}
	free(buf);
	return r;
}

/* The real size of a file opened unchecked, checked when a read reaches
 * the end RFC822.SIZE claims or finds the body ending before it.  Reads of
 * the handle running in parallel may both check: the blocks are fetched
 * once (the cache's claims), and both find the same. */
static int64_t settle_size(struct mailbox *mb, struct mailbox_file *file)
{
	uint64_t found = __atomic_load_n(&file->found, __ATOMIC_RELAXED);
	struct folder *f = found ? NULL : mb_folder(mb, file->folder);
	struct listing *l;
	struct msg *m;
	int64_t real;
	int err;

	if (found)
		return (int64_t)(found - 1);
	real = checked_size(mb, file, f ? f->path : file->server);
	if (real >= 0 && (uint64_t)real != file->size) {
		/* the body disagrees with RFC822.SIZE: its end is fetched again,
		 * alone, before the claim is called wrong -- read ahead in one
		 * run with the blocks before it, it would show a longer body if
		 * the server spilled bytes past the range it was asked for */
		int64_t ran = real;
		int r = refetch_block(mb, file, last_block((uint64_t)real));

		real = r < 0 ? r : checked_size(mb, file, f ? f->path : file->server);
		if (real >= 0 && real != ran)
			log_warn("UID %u of %s: a FETCH of a range sent more than the body (%lld bytes; "
				 "its end fetched alone: %lld)",
				 file->uid, file->server, (long long)ran, (long long)real);
	}
	if (real < 0)
		return real;
	l = f ? mb_listing(mb, f, MB_ANY_AGE, &err) : NULL;
	m = l && l->uidvalidity == file->uidvalidity ? mb_listing_find(l, file->uid) : NULL;
	if (m)
		keep_size(m, file, f->path, (uint64_t)real);
	if (l)
		mb_listing_put(l);
	__atomic_store_n(&file->found, (uint64_t)real + 1, __ATOMIC_RELAXED);
	return real;
}

void mailbox_set_prefetch(struct mailbox *mb, struct prefetch *p)
{
	mb->prefetch = p;
}

/* Position of m in name order (binary search of by_name). */
static size_t name_position(const struct listing *l, const struct msg *m)
{
	const char *name = mb_msg_name(l, m);
	size_t lo = 0, hi = l->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(mb_msg_name(l, &l->msgs[l->by_name[mid]]), name);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static const struct msg *msg_at(const struct listing *l, int order, size_t pos)
{
	return &l->msgs[order == 1 ? pos : l->by_name[pos]];
}

static uint32_t uid_at(const struct listing *l, int order, size_t pos)
{
	return msg_at(l, order, pos)->uid;
}

#define TAILS_MAX 8 /* messages larger than a block asked for with one batch */

/* The messages of a batch larger than a block.  A reader of whole bodies
 * (cat, grep) gets the rest of each body asked for now, beside the batch,
 * in one command per message (a FETCH at an offset has Dovecot read a
 * Maildir message from its start: one read of each body, not one per
 * range) -- as many as fit in the read-ahead window, which bounds the
 * memory it takes.  One whose size opening checks (larger than
 * UNCHECKED_MAX) gets at least its last block, which the check reads. */
static void read_ahead_tails(struct mailbox *mb, struct folder *f, const struct listing *l, int order,
			     size_t from, size_t to, bool whole)
{
	/* as far ahead as a reader of one large message gets (read_ahead_blocks) */
	uint32_t budget = whole ? prefetch_depth(mb->prefetch) : 0;
	unsigned n = 0;

	for (size_t i = from; i <= to && n < TAILS_MAX; i++) {
		const struct msg *m = msg_at(l, order, i);
		uint64_t size = mb_msg_size(m);
		uint32_t last = last_block(size);
		bool rest = last <= budget;

		if (size <= CACHE_BLOCK_SIZE ||
		    (__atomic_load_n(&m->flags, __ATOMIC_RELAXED) & MSG_SIZE_VERIFIED) ||
		    (!rest && size <= UNCHECKED_MAX))
			continue;
		if (rest)
			budget -= last;
		prefetch_claimed(mb->prefetch, f->server, mb_folder_key(mb, f), l->uidvalidity, m->uid,
				 rest ? 1 : last, last);
		n++;
	}
}

/* Whether the pass reads bodies whole, as the last message larger than a
 * block that it opened tells (a smaller one is read whole by the kernel's
 * read-ahead alone); with f->lock. */
static bool pass_reads_whole(struct folder *f, const struct listing *l)
{
	const struct msg *prev = f->last_opened ? mb_listing_find(l, f->last_opened) : NULL;

	if (prev && mb_msg_size(prev) > CACHE_BLOCK_SIZE)
		f->ahead_whole = __atomic_load_n(&f->read_far, __ATOMIC_RELAXED) == prev->uid;
	return f->ahead_whole;
}

/* What the prefetch needs of m.  Its body may go straight into the
 * kernel's page cache only at the size the kernel was told, and not in a
 * folder whose inodes named other messages before (mailbox_open keeps the
 * kernel's cache out of both). */
static struct prefetch_head head_of(struct folder *f, const struct msg *m)
{
	bool trusted = !(__atomic_load_n(&m->flags, __ATOMIC_RELAXED) & MSG_SIZE_CORRECTED) &&
		       !__atomic_load_n(&f->reloaded, __ATOMIC_RELAXED);

	return (struct prefetch_head){ m->uid, trusted ? mb_msg_size(m) : 0,
				       inode_of_message(f->id, m->uid) };
}

/* A reader opening messages one after another, in UID order (tar, cp -r,
 * grep -r walk readdir order) or name order (cat *), gets the next ones
 * fetched ahead, several per UID FETCH. */
static void read_ahead_messages(struct mailbox *mb, struct folder *f, const struct listing *l,
				const struct msg *m)
{
	unsigned depth = prefetch_depth(mb->prefetch);
	size_t upos = (size_t)(m - l->msgs), npos = l->by_name ? name_position(l, m) : SIZE_MAX;
	size_t pos = 0, from = 0, to = 0;
	struct prefetch_head heads[64];
	int order = 0;
	bool whole;

	if (!depth)
		return;
	pthread_mutex_lock(&f->lock);
	if (upos > 0 && l->msgs[upos - 1].uid == f->last_opened) {
		order = 1;
		pos = upos;
	} else if (npos != SIZE_MAX && npos > 0 && uid_at(l, 2, npos - 1) == f->last_opened) {
		order = 2;
		pos = npos;
	} else if (npos == 0 || upos == 0) {
		/* the first message: most likely the start of a pass over the
		 * folder (cat *, grep -r), whose next messages are asked for
		 * now, beside this one, rather than one round trip later */
		order = npos == 0 ? 2 : 1;
		pos = 0;
	}
	whole = pass_reads_whole(f, l);
	f->last_opened = m->uid;
	if (order && (f->ahead_order != order || f->ahead_to < pos || pos == 0)) {
		f->ahead_order = order;
		f->ahead_to = pos;
	}
	if (order && f->ahead_to < pos + depth / 2 + 1) {
		/* a new pass: this message in the same command as the next */
		from = pos == 0 ? 0 : f->ahead_to + 1;
		to = pos + depth < l->count - 1 ? pos + depth : l->count - 1;
		f->ahead_to = to;
	}
	pthread_mutex_unlock(&f->lock);
	for (size_t i = from, n = 0; order && i <= to && from <= to; i++) {
		heads[n++] = head_of(f, msg_at(l, order, i));
		if (n == sizeof(heads) / sizeof(heads[0]) || i == to) {
			prefetch_messages(mb->prefetch, f->server, mb_folder_key(mb, f), l->uidvalidity,
					  heads, n);
			n = 0;
		}
	}
	/* queued after the batch: the reader waits for the batch first, which
	 * so takes the session that has the folder selected (a tail queued
	 * first took it, and the batch paid a SELECT) */
	if (order && from <= to)
		read_ahead_tails(mb, f, l, order, from, to, whole);
}

/* A large message read from start to end gets its next blocks fetched.
 * off and size are those of the read (off inside the message). */
static void read_ahead_blocks(struct mailbox *mb, struct mailbox_file *f, uint64_t off, size_t size)
{
	unsigned depth = prefetch_depth(mb->prefetch);
	uint32_t last = last_block(f->size), block = (uint32_t)(off / CACHE_BLOCK_SIZE);
	uint32_t end = last_block(off + (size ? size : 1)), from, to, ahead;
	uint32_t prev;
	bool sequential;

	if (end > last)
		end = last;
	/* the block the previous read ended in: concurrent reads of one file
	 * only blur this guess, relaxed is enough */
	prev = __atomic_exchange_n(&f->last_block, end, __ATOMIC_RELAXED);
	/* a read from the start in large reads (cat, cp), or one that goes on
	 * where the previous one ended -- the kernel's reads span several
	 * blocks (256 KiB) and may arrive a little out of order; a small first
	 * read (head, file) waits until the reader goes on -- else head -c
	 * 4096 of a 10 MB mail would fetch its first MiB */
	if (block == 0)
		sequential = size >= CACHE_BLOCK_SIZE / 2;
	else
		sequential = prev != UINT32_MAX && block <= prev + 1 && prev < block + depth;
	if (!depth || !sequential || end >= last)
		return;
	ahead = __atomic_load_n(&f->ahead_block, __ATOMIC_RELAXED);
	if (ahead > end + depth / 2)
		return;
	to = end + depth < last ? end + depth : last;
	/* a short rest joins this run: on a server that stores LF (Dovecot's
	 * Maildir) each FETCH at an offset rereads the message up to it */
	if (last - to < depth / 2)
		to = last;
	from = ahead > end ? ahead + 1 : end + 1;
	if (from > to)
		return;
	__atomic_store_n(&f->ahead_block, to, __ATOMIC_RELAXED);
	/* claimed by the worker when it starts: a reader who gets to a block
	 * first fetches it itself rather than wait behind other jobs */
	prefetch_blocks(mb->prefetch, f->server, f->key, f->uidvalidity, f->uid, from, to);
}

/* A read spanning several blocks -- an uncached file's reads come as large
 * as the reader asked (python's read() of a whole file) -- gets the missing
 * ones, its first included, here: one FETCH per run of them (one in all
 * unless some in between are cached), rather than one per block. */
static void fetch_span(struct mailbox *mb, struct mailbox_file *f, uint64_t off, size_t size, uint64_t end)
{
	uint32_t first = (uint32_t)(off / CACHE_BLOCK_SIZE);
	uint32_t last = last_block(off + size < end ? off + size : end);

	if (last > first)
		prefetch_fetch_here(mb->prefetch, f->server, f->key, f->uidvalidity, f->uid, first, last);
}

/* Tells the folder this message is read past its first block: the pass
 * over the folder reads bodies whole (pass_reads_whole).  Once a file. */
static void note_read_far(struct mailbox *mb, const struct mailbox_file *file)
{
	struct folder *f = mb_folder(mb, file->folder);

	if (f)
		__atomic_store_n(&f->read_far, file->uid, __ATOMIC_RELAXED);
}

/* A cp the server does not have yet (-o writeback): read from the
 * journal's copy. */
static int open_copy(struct mailbox *mb, uint32_t upload, struct mailbox_file **out)
{
	struct mailbox_file *file = calloc(1, sizeof(*file));

	if (!file)
		return -ENOMEM;
	file->staged_fd = mb_pending_open_copy(mb, upload, &file->size);
	if (file->staged_fd < 0) {
		int r = file->staged_fd;

		free(file);
		return r;
	}
	*out = file;
	return 0;
}

int mailbox_open(struct mailbox *mb, uint64_t ino, struct mailbox_file **out, bool *uncached)
{
	struct mailbox_file *file;
	struct folder *f;
	struct listing *l;
	struct msg *m;
	uint32_t id, uid;
	int64_t real;
	int err;

	*out = NULL;
	*uncached = false;
	if (!inode_is_message(ino))
		return -EISDIR;
	if (mb_offline_refused(mb))
		return -EIO;
	err = mb_locate(mb, ino, &id, &uid, NULL);
	if (err == 0 && id == INODE_UPLOAD_FOLDER)
		return open_copy(mb, uid, out);
	f = err == 0 ? mb_folder(mb, id) : NULL;
	if (!f)
		return err ? err : -ENOENT;
	l = mb_listing(mb, f, MB_ANY_AGE, &err);
	if (!l)
		return err;
	m = mb_listing_find(l, uid);
	file = m ? calloc(1, sizeof(*file)) : NULL;
	if (file) {
		file->folder = f->id;
		file->last_block = UINT32_MAX; /* nothing read yet */
		file->key = mb_folder_key(mb, f);
		file->uidvalidity = l->uidvalidity;
		file->uid = m->uid;
		file->size = mb_msg_size(m);
		file->server = strdup(f->server);
	}
	if (!m || !file || !file->server) {
		mb_listing_put(l);
		mailbox_release(file);
		return m ? -ENOMEM : -ENOENT;
	}
	/* a message's size is checked once: it never changes */
	if (!(__atomic_load_n(&m->flags, __ATOMIC_RELAXED) & MSG_SIZE_VERIFIED)) {
		/* a first reading pass: ask for the next messages (and, at the
		 * start of a pass, this one) before checking this one's size */
		read_ahead_messages(mb, f, l, m);
		if (file->size > CACHE_BLOCK_SIZE && file->size <= UNCHECKED_MAX) {
			/* checked when a read gets to its end: a reader of its
			 * first bytes (head, file, a mail client's preview) never
			 * waits for the last block, which costs a round trip and
			 * the server a read of the whole body (Dovecot); until
			 * then the kernel caches nothing of it, as the size the
			 * kernel was told may be wrong */
			file->unchecked = true;
			*uncached = true;
			mb_listing_put(l);
			*out = file;
			return 0;
		}
		real = checked_size(mb, file, f->path);
		if (real < 0) {
			mb_listing_put(l);
			mailbox_release(file);
			return (int)real;
		}
		keep_size(m, file, f->path, (uint64_t)real);
		file->size = (uint64_t)real;
	}
	/* the kernel may still hold the size the server claimed, or pages of
	 * a message that had this inode before the folder was re-created */
	*uncached = (__atomic_load_n(&m->flags, __ATOMIC_RELAXED) & MSG_SIZE_CORRECTED) != 0 ||
		    __atomic_load_n(&f->reloaded, __ATOMIC_RELAXED);
	mb_listing_put(l);
	*out = file;
	return 0;
}

void mailbox_release(struct mailbox_file *f)
{
	if (!f)
		return;
	if (f->staged_fd > 0)
		close(f->staged_fd);
	free(f->server);
	free(f);
}

/* Adds bytes[at, at + n) to the pieces, which take over the reference. */
static void add_piece(struct mailbox_pieces *p, char *bytes, size_t at, size_t n)
{
	p->iov[p->count].iov_base = bytes + at;
	p->iov[p->count].iov_len = n;
	p->held[p->count++] = bytes;
}

/* The bytes of a copy being uploaded (its staged file), as one piece. */
static long read_staged(struct mailbox_file *f, size_t size, off_t off, struct mailbox_pieces *out)
{
	char *bytes = shared_bytes_new(size);
	ssize_t n = bytes ? pread(f->staged_fd, bytes, size, off) : -1;

	if (n <= 0) {
		long r = n < 0 ? (bytes ? -errno : -ENOMEM) : 0;

		shared_bytes_unref(bytes);
		return r;
	}
	add_piece(out, bytes, 0, (size_t)n);
	return (long)n;
}

/* One block's part of a read, from `at` on, at most want bytes, as a piece;
 * the count of bytes or -errno. */
static long read_block(struct mailbox *mb, struct fill_ctx *fc, const struct cache_key *key, size_t at,
		       size_t want, struct mailbox_pieces *out, size_t *block_len)
{
	char *bytes;
	size_t n;
	int r = cache_get(mb->cache, key, fill_block, fc, &bytes, block_len);

	if (r < 0)
		return r;
	n = cache_span(*block_len, at, want);
	if (n == 0) {
		shared_bytes_unref(bytes);
		return 0;
	}
	add_piece(out, bytes, at, n);
	return (long)n;
}

long mailbox_read_pieces(struct mailbox *mb, struct mailbox_file *f, size_t size, off_t off,
			 struct mailbox_pieces *out)
{
	struct fill_ctx fc = { mb, f };
	size_t done = 0;
	/* a file opened unchecked: the claimed end holds until the read gets
	 * to the block holding it (or finds the body ending before) */
	uint64_t found = f->unchecked ? __atomic_load_n(&f->found, __ATOMIC_RELAXED) : 0;
	bool settled = !f->unchecked || found;
	uint64_t end = found ? found - 1 : f->size; /* of the body */
	uint64_t settle_from = (uint64_t)last_block(f->size) * CACHE_BLOCK_SIZE;
	/* a block per piece: one more when the read starts inside a block */
	size_t room = size / CACHE_BLOCK_SIZE + 2;

	out->count = 0;
	out->iov = malloc(room * sizeof(*out->iov));
	out->held = malloc(room * sizeof(*out->held));
	if (!out->iov || !out->held)
		return -ENOMEM;
	if (off < 0)
		return -EINVAL;
	if (f->staged_fd > 0)
		return read_staged(f, size, off, out);
	if (mb_offline_refused(mb))
		return -EIO;
	/* the reader goes on past the first block: a read there -- or, for a
	 * file opened unchecked, whose reads come as the reader asked them
	 * (no page cache reading ahead of a small one), a read into it */
	if (((uint64_t)off >= CACHE_BLOCK_SIZE ||
	     (f->unchecked && (uint64_t)off + size > CACHE_BLOCK_SIZE)) &&
	    (uint64_t)off < end && !__atomic_exchange_n(&f->read_far, true, __ATOMIC_RELAXED))
		note_read_far(mb, f);
	if ((uint64_t)off < end) {
		read_ahead_blocks(mb, f, (uint64_t)off, size);
		fetch_span(mb, f, (uint64_t)off, size, end);
	}
	while (done < size) {
		uint64_t pos = (uint64_t)off + done;
		struct cache_key key = { f->key, f->uidvalidity, f->uid, (uint32_t)(pos / CACHE_BLOCK_SIZE),
					 0 };
		size_t at = pos % CACHE_BLOCK_SIZE, blen = 0;
		size_t want = size - done;
		int64_t real;
		long n = 0;

		if (!settled && pos >= settle_from) {
			real = settle_size(mb, f);
			if (real < 0)
				return done ? (long)done : (long)real;
			end = (uint64_t)real;
			settled = true;
		}
		if (pos >= end)
			break;
		if (want > end - pos)
			want = end - pos;
		n = read_block(mb, &fc, &key, at, want, out, &blen);
		if (n < 0)
			return done ? (long)done : n;
		if (n == 0 && !settled) {
			settle_from = pos; /* the body ends before the claimed end */
			continue;
		}
		if (n == 0) {
			/* short of the size the body was found to have: expunged
			 * meanwhile, or a confused server; never an early EOF */
			log_warn("UID %u of %s: no bytes at %llu of %llu (expunged?)", f->uid, f->server,
				 (unsigned long long)pos, (unsigned long long)end);
			return done ? (long)done : -EIO;
		}
		done += (size_t)n;
	}
	return (long)done;
}

void mailbox_read_done(struct mailbox_pieces *p)
{
	for (size_t i = 0; i < p->count; i++)
		shared_bytes_unref(p->held[i]);
	free(p->iov);
	free(p->held);
	p->count = 0;
	p->iov = NULL;
	p->held = NULL;
}
