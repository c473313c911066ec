/* parts.c - owns the `.parts` view (parts.h): message structures fetched
 * once (BODYSTRUCTURE, and the decoded size of each part in the same
 * session), kept for the last PARSED_KEEP messages, and part reads through
 * the block cache.  Lock: parts.lock, a leaf (src/README, "Locks"); no
 * fetch runs under it. */
#include "parts.h"
#include "mailbox_p.h"
#include "parts_names.h"
#include "inode.h"
#include "mapi/mime.h"
#include "util/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARSED_KEEP 32             /* message structures kept */
#define LOCAL_PART_MAX (64u << 20) /* a part decoded here, bytes at most */
#define SMALL_PART \
	(16u << 10)     /* encoded parts up to this are decoded
				    * when listed: cheaper than their ends */
#define END_BYTES 2048u /* of a base64 part, to count its lines */

/* Where a part's bytes come from. */
enum part_source {
	FROM_RAW,     /* BODY[section] ranges as they are: no transfer encoding,
		       * or an attached message's raw bytes */
	FROM_DECODED, /* BODY[section] whole, decoded here, every block cached */
	FROM_BINARY,  /* BINARY[section] ranges: the server decodes */
	FROM_NOWHERE, /* its size could not be learnt (over LOCAL_PART_MAX,
		       * or the server would not give it): reads are EIO */
};

/* A leaf part's decoded size, and where its bytes come from. */
struct part_size {
	const struct mime_part *part;
	uint64_t size;
	enum part_source source;
};

struct parsed {
	uint32_t folder, uid, uidvalidity;
	unsigned refs; /* parts.lock */
	struct mime_message tree;
	struct part_size *sizes;
	size_t nsizes;
};

/* The last part decoded here whose section the cache cannot name (a
 * forward of a forward ...): kept whole, so that reading it 128 KiB at a
 * time fetches it once, not once a read.  At most LOCAL_PART_MAX. */
struct spare_part {
	uint32_t folder, uid, uidvalidity;
	char section[VNODE_TEXT_MAX + 1];
	char *data; /* NULL: none */
	size_t len;
};

struct parts {
	struct mailbox *mb;
	struct vnodes *vnodes;
	/* Leaf lock: protects kept, next, every parsed's refs and spare. */
	pthread_mutex_t lock;
	struct parsed *kept[PARSED_KEEP];
	size_t next;
	struct spare_part spare;
};

struct parts *parts_new(struct mailbox *mb, struct vnodes *v)
{
	struct parts *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->mb = mb;
	p->vnodes = v;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

static void parsed_free(struct parsed *m)
{
	imap_structure_free(&m->tree);
	free(m->sizes);
	free(m);
}

static void parsed_put(struct parts *p, struct parsed *m)
{
	bool last;

	if (!m)
		return;
	pthread_mutex_lock(&p->lock);
	last = --m->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		parsed_free(m);
}

void parts_free(struct parts *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < PARSED_KEEP; i++)
		if (p->kept[i])
			parsed_put(p, p->kept[i]);
	free(p->spare.data);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int parts_is_dir_name(const char *name)
{
	size_t n = strlen(name), s = strlen(PARTS_EML PARTS_SUFFIX);

	return n > s && strcmp(name + n - s, PARTS_EML PARTS_SUFFIX) == 0;
}

/* ---- fetching a structure ---- */

static bool is_encoded(const struct mime_part *part)
{
	return part->encoding &&
	       (strcmp(part->encoding, "base64") == 0 || strcmp(part->encoding, "quoted-printable") == 0);
}

/* Every leaf of the tree, attached messages' insides included. */
static int add_leaves(const struct mime_part *part, struct parsed *m, size_t *cap)
{
	if (mime_is(part, "multipart", NULL)) {
		for (size_t i = 0; i < part->nchildren; i++)
			if (add_leaves(&part->children[i], m, cap) < 0)
				return -ENOMEM;
		return 0;
	}
	if (m->nsizes == *cap) {
		size_t ncap = *cap ? 2 * *cap : 8;
		struct part_size *v = realloc(m->sizes, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->sizes = v;
		*cap = ncap;
	}
	m->sizes[m->nsizes++] = (struct part_size){ part, part->octets, FROM_RAW };
	return part->message ? add_leaves(part->message, m, cap) : 0;
}

/* The bytes of part, as this file shows them: BODY[section] decoded by
 * its transfer encoding (an attached message's as they are).  *data is
 * malloc'd. */
static int fetch_local(struct imap_session *s, uint32_t uid, const struct mime_part *part, char **data,
		       size_t *len)
{
	char *raw = NULL;
	size_t rawlen = 0;
	int r = imap_fetch_part(s, uid, part->part_id, LOCAL_PART_MAX, &raw, &rawlen);

	if (r < 0)
		return r;
	if (parts_is_attached(part) || !is_encoded(part)) {
		*data = raw;
		*len = rawlen;
		return 0;
	}
	r = mime_decode(part->encoding, raw, rawlen, data, len);
	free(raw);
	return r;
}

/* Keeps decoded bytes in the cache, a block per key (when the section has
 * a code); the block `want` also copied into out (may be NULL). */
static void keep_blocks(struct cache *cache, struct cache_key k, const char *data, size_t len, char *out,
			size_t *out_len)
{
	uint32_t want = k.block;
	size_t first = (size_t)want * CACHE_BLOCK_SIZE;

	if (out) {
		*out_len =
			first < len ? (len - first < CACHE_BLOCK_SIZE ? len - first : CACHE_BLOCK_SIZE) : 0;
		memcpy(out, data + (first < len ? first : len), *out_len);
	}
	if (!k.section)
		return;
	for (size_t at = 0; at < len; at += CACHE_BLOCK_SIZE) {
		k.block = (uint32_t)(at / CACHE_BLOCK_SIZE);
		if (k.block != want || !out)
			cache_put(cache, &k, data + at,
				  len - at < CACHE_BLOCK_SIZE ? len - at : CACHE_BLOCK_SIZE);
	}
}

/* A base64 part's decoded size from its first and last bytes, when its
 * lines are regular; -EINVAL when they say nothing certain. */
static int size_from_ends(struct imap_session *s, uint32_t uid, const struct mime_part *part, uint64_t *size)
{
	char head[END_BYTES], tail[END_BYTES + 1];
	size_t hlen = 0, tlen = 0;
	int r;

	if (part->octets < 2 * END_BYTES || part->octets > UINT32_MAX)
		return -EINVAL;
	r = imap_fetch_part_range(s, uid, part->part_id, 0, END_BYTES, head, &hlen);
	/* one byte more than is left: the body must end where BODYSTRUCTURE
	 * says, or the count is of something else */
	if (r == 0)
		r = imap_fetch_part_range(s, uid, part->part_id, (uint32_t)(part->octets - END_BYTES),
					  END_BYTES + 1, tail, &tlen);
	if (r < 0)
		return r;
	if (hlen != END_BYTES || tlen != END_BYTES)
		return -EINVAL;
	return parts_base64_size(head, hlen, tail, tlen, part->octets, size);
}

struct structure_job {
	struct parts *p;
	struct parsed *m;
	uint64_t folder_key; /* the folder's cache key */
};

/* How an encoded part is read, and its decoded size: a small one, a
 * quoted-printable one, or a base64 one with irregular lines decoded now
 * (its blocks then cached); a large regular base64 one counted from its
 * ends and read through BINARY (or decoded here at the first read). */
static int size_encoded(struct imap_session *s, struct structure_job *job, struct part_size *ps, bool binary)
{
	const struct mime_part *part = ps->part;
	char *data = NULL;
	size_t len = 0;
	int r;

	if (part->octets > SMALL_PART && strcmp(part->encoding, "base64") == 0) {
		r = size_from_ends(s, job->m->uid, part, &ps->size);
		if (r == 0) {
			ps->source = binary ? FROM_BINARY : FROM_DECODED;
			return 0;
		}
		if (r != -EINVAL)
			return r;
	}
	if (part->octets > LOCAL_PART_MAX) {
		log_warn("UID %u part %s: %llu bytes encoded, more than imapfs decodes itself: reads are EIO",
			 job->m->uid, part->part_id, (unsigned long long)part->octets);
		ps->size = 0;
		ps->source = FROM_NOWHERE;
		return 0;
	}
	r = fetch_local(s, job->m->uid, part, &data, &len);
	if (r == -EIO && !imap_dead(s)) { /* this part only: the others stay readable */
		ps->size = 0;
		ps->source = FROM_NOWHERE;
		return 0;
	}
	if (r == 0) {
		struct cache_key k = { job->folder_key, job->m->uidvalidity, job->m->uid, 0,
				       cache_section_code(part->part_id) };

		ps->size = len;
		ps->source = FROM_DECODED;
		keep_blocks(job->p->mb->cache, k, data, len, NULL, NULL);
	}
	free(data);
	return r;
}

static int structure_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct structure_job *job = ctx;
	struct parsed *m = job->m;
	size_t cap = 0;
	bool binary;
	int r;

	(void)st;
	if (imap_expect_validity(s, m->uidvalidity) < 0)
		return -ESTALE;
	imap_structure_free(&m->tree);
	free(m->sizes);
	m->sizes = NULL;
	m->nsizes = 0;
	r = imap_fetch_structure(s, m->uid, &m->tree);
	if (r < 0)
		return r;
	if (add_leaves(&m->tree.root, m, &cap) < 0)
		return -ENOMEM;
	binary = imap_has_binary(s);
	for (size_t i = 0; i < m->nsizes && r == 0; i++)
		if (is_encoded(m->sizes[i].part) && !parts_is_attached(m->sizes[i].part))
			r = size_encoded(s, job, &m->sizes[i], binary);
	return r;
}

/* The structure of message uid of folder, fetched when not kept; put it
 * back with parsed_put. */
static int get_parsed(struct parts *p, uint32_t folder, uint32_t uid, struct parsed **out)
{
	uint32_t validity = (uint32_t)mailbox_generation(p->mb, inode_of_message(folder, uid));
	struct structure_job job = { p, NULL, 0 };
	struct folder *f = mb_folder(p->mb, folder);
	const char *server = f ? atomic_load(&f->server) : NULL;
	struct parsed *m = NULL, *old;
	int r;

	if (!server || validity == 0)
		return -ENOENT;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < PARSED_KEEP && !m; i++) {
		struct parsed *k = p->kept[i];

		if (k && k->folder == folder && k->uid == uid && k->uidvalidity == validity)
			m = k;
	}
	if (m)
		m->refs++;
	pthread_mutex_unlock(&p->lock);
	if (m) {
		*out = m;
		return 0;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*m = (struct parsed){ .folder = folder, .uid = uid, .uidvalidity = validity, .refs = 2 };
	job.m = m;
	job.folder_key = mb_folder_key(p->mb, f);
	r = pool_run(p->mb->pool, server, 0, structure_fn, &job);
	if (r < 0) {
		log_warn("cannot read the structure of UID %u of %s: %s", uid, server,
			 strerror(r == -ESTALE ? EIO : -r));
		parsed_free(m);
		return r == -ESTALE || r == -E2BIG || r == -EINVAL ? -EIO : r;
	}
	pthread_mutex_lock(&p->lock);
	old = p->kept[p->next];
	p->kept[p->next] = m;
	p->next = (p->next + 1) % PARSED_KEEP;
	pthread_mutex_unlock(&p->lock);
	parsed_put(p, old);
	*out = m;
	return 0;
}

/* ---- names and attributes ---- */

static const struct part_size *size_of(const struct parsed *m, const char *section)
{
	for (size_t i = 0; i < m->nsizes; i++)
		if (strcmp(m->sizes[i].part->part_id, section) == 0)
			return &m->sizes[i];
	return NULL;
}

/* The message's own attributes (for the time and owner of its views). */
static int message_stat_of(struct parts *p, uint32_t folder, uint32_t uid, struct stat *st)
{
	return mailbox_getattr(p->mb, inode_of_message(folder, uid), st);
}

static void dir_stat(const struct stat *msg, uint64_t ino, struct stat *st)
{
	*st = *msg;
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0500;
	st->st_nlink = 2;
	st->st_size = 0;
	st->st_blocks = 0;
}

static void file_stat(const struct stat *msg, uint64_t ino, uint64_t size, struct stat *st)
{
	*st = *msg;
	st->st_ino = ino;
	st->st_mode = S_IFREG | 0400;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (st->st_size + 511) / 512;
}

int parts_lookup_in_folder(struct parts *p, uint64_t parent, const char *name, struct stat *st)
{
	char message[NAMES_MAX + 1];
	size_t n = strlen(name) - strlen(PARTS_SUFFIX);
	struct vnode_key k = { VNODE_PARTS_DIR, 0, 0, "" };
	struct stat msg;
	uint64_t ino;
	int r;

	if (!parts_is_dir_name(name) || n > NAMES_MAX)
		return -ENOENT;
	memcpy(message, name, n);
	message[n] = 0;
	r = mailbox_lookup(p->mb, parent, message, &msg);
	if (r < 0)
		return r;
	if (!S_ISREG(msg.st_mode) || !inode_is_message(msg.st_ino) || inode_is_upload(msg.st_ino))
		return -ENOENT;
	k.folder = inode_folder(msg.st_ino);
	k.uid = inode_uid(msg.st_ino);
	r = vnodes_lookup(p->vnodes, &k, &ino);
	if (r == 0)
		dir_stat(&msg, ino, st);
	return r;
}

int parts_list(struct parts *p, const struct vnode_key *k, struct view_entry **out, size_t *n)
{
	struct part_entry *entries = NULL;
	struct view_entry *v = NULL;
	struct parsed *m = NULL;
	struct stat msg;
	size_t count = 0;
	int r = message_stat_of(p, k->folder, k->uid, &msg);

	if (r == 0)
		r = get_parsed(p, k->folder, k->uid, &m);
	if (r == 0)
		r = parts_entries(&m->tree, k->text, &entries, &count);
	if (r == 0 && count && !(v = calloc(count, sizeof(*v))))
		r = -ENOMEM;
	for (size_t i = 0; i < count && r == 0; i++) {
		const struct part_size *ps = size_of(m, entries[i].part->part_id);

		v[i].name = strdup(entries[i].name);
		v[i].text = strdup(entries[i].part->part_id);
		v[i].kind = VNODE_PART_FILE;
		v[i].has_parts = entries[i].attached;
		v[i].folder = k->folder;
		v[i].uid = k->uid;
		file_stat(&msg, 0, ps ? ps->size : 0, &v[i].st);
		if (!v[i].name || !v[i].text)
			r = -ENOMEM;
	}
	free(entries);
	parsed_put(p, m);
	if (r < 0) {
		view_entries_free(v, count);
		return r;
	}
	*out = v;
	*n = count;
	return 0;
}

int parts_lookup(struct parts *p, const struct vnode_key *k, const char *name, struct stat *st)
{
	struct view_entry *v = NULL;
	size_t n = 0, len = strlen(name);
	bool dir = len > strlen(PARTS_SUFFIX) && strcmp(name + len - strlen(PARTS_SUFFIX), PARTS_SUFFIX) == 0;
	int r = k->kind == VNODE_PARTS_DIR ? parts_list(p, k, &v, &n) : -ENOTDIR;

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n && r == -ENOENT; i++) {
		if (strcmp(v[i].name, name) == 0) {
			r = vnodes_count_entry(p->vnodes, &v[i]);
			*st = v[i].st;
		} else if (dir && v[i].has_parts &&
			   strncmp(v[i].name, name, len - strlen(PARTS_SUFFIX)) == 0 &&
			   v[i].name[len - strlen(PARTS_SUFFIX)] == 0 && parts_is_dir_name(name)) {
			v[i].kind = VNODE_PARTS_DIR;
			r = vnodes_count_entry(p->vnodes, &v[i]);
			dir_stat(&v[i].st, v[i].st.st_ino, st);
		}
	}
	view_entries_free(v, n);
	return r;
}

int parts_getattr(struct parts *p, uint64_t ino, const struct vnode_key *k, struct stat *st)
{
	struct parsed *m = NULL;
	const struct part_size *ps;
	struct stat msg;
	int r = message_stat_of(p, k->folder, k->uid, &msg);

	if (r < 0)
		return r;
	if (k->kind == VNODE_PARTS_DIR) {
		dir_stat(&msg, ino, st);
		return 0;
	}
	r = get_parsed(p, k->folder, k->uid, &m);
	if (r < 0)
		return r;
	ps = size_of(m, k->text);
	if (ps)
		file_stat(&msg, ino, ps->size, st);
	parsed_put(p, m);
	return ps ? 0 : -ENOENT;
}

/* ---- reading ---- */

struct part_read {
	struct parts *p;
	struct parsed *m;
	const struct part_size *ps;
	const char *server;
};

struct block_job {
	struct part_read *rd;
	const struct cache_key *key;
	char *buf;
	size_t *len;
};

/* The bytes a block of the part holds by its size, which the server's
 * answer must match: a size counted from a base64 part's ends assumes
 * regular lines, and a block that says otherwise fails the read rather
 * than give a file whose length is not its size. */
static int check_block(const struct block_job *job, size_t got)
{
	uint64_t at = (uint64_t)job->key->block * CACHE_BLOCK_SIZE, size = job->rd->ps->size;
	uint64_t want = size - at < CACHE_BLOCK_SIZE ? size - at : CACHE_BLOCK_SIZE;

	if (got == want)
		return 0;
	log_warn("UID %u part %s: block %u holds %zu bytes where its size (%llu) says %llu: EIO",
		 job->rd->m->uid, job->rd->ps->part->part_id, job->key->block, got, (unsigned long long)size,
		 (unsigned long long)want);
	return -EIO;
}

static int part_block_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct block_job *job = ctx;
	const struct mime_part *part = job->rd->ps->part;
	uint64_t at = (uint64_t)job->key->block * CACHE_BLOCK_SIZE, left = job->rd->ps->size - at;
	/* the last block asks for a byte more: one past the size shows */
	uint32_t ask = left < CACHE_BLOCK_SIZE ? (uint32_t)left + 1 : CACHE_BLOCK_SIZE;
	char *data = NULL;
	size_t len = 0;
	int r;

	(void)st;
	if (imap_expect_validity(s, job->rd->m->uidvalidity) < 0)
		return -ESTALE;
	switch (job->rd->ps->source) {
	case FROM_RAW:
		r = imap_fetch_part_range(s, job->rd->m->uid, part->part_id, (uint32_t)at, ask, job->buf,
					  job->len);
		return r < 0 ? r : check_block(job, *job->len);
	case FROM_BINARY:
		r = imap_fetch_binary(s, job->rd->m->uid, part->part_id, (uint32_t)at, ask, job->buf,
				      job->len);
		return r < 0 ? r : check_block(job, *job->len);
	case FROM_DECODED:
		break;
	case FROM_NOWHERE:
		return -EIO;
	}
	r = fetch_local(s, job->rd->m->uid, part, &data, &len);
	if (r == 0 && len != job->rd->ps->size) {
		log_warn("UID %u part %s: %zu bytes decoded where its size says %llu: EIO", job->rd->m->uid,
			 part->part_id, len, (unsigned long long)job->rd->ps->size);
		r = -EIO;
	}
	if (r == 0)
		keep_blocks(job->rd->p->mb->cache, *job->key, data, len, job->buf, job->len);
	free(data);
	return r;
}

struct whole_job {
	struct part_read *rd;
	char *data;
	size_t len;
};

static int decode_whole_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct whole_job *job = ctx;
	int r;

	(void)st;
	if (imap_expect_validity(s, job->rd->m->uidvalidity) < 0)
		return -ESTALE;
	free(job->data);
	job->data = NULL;
	r = fetch_local(s, job->rd->m->uid, job->rd->ps->part, &job->data, &job->len);
	if (r == 0 && job->len != job->rd->ps->size) {
		log_warn("UID %u part %s: %zu bytes decoded where its size says %llu: EIO", job->rd->m->uid,
			 job->rd->ps->part->part_id, job->len, (unsigned long long)job->rd->ps->size);
		r = -EIO;
	}
	return r;
}

/* From the spare, when it holds rd's part: at most want bytes from pos;
 * -1 when it holds another.  Under parts.lock. */
static long copy_spare_locked(struct parts *p, const struct part_read *rd, uint64_t pos, char *out,
			      size_t want)
{
	const struct spare_part *sp = &p->spare;

	if (!sp->data || sp->folder != rd->m->folder || sp->uid != rd->m->uid ||
	    sp->uidvalidity != rd->m->uidvalidity || strcmp(sp->section, rd->ps->part->part_id) != 0)
		return -1;
	if (pos >= sp->len)
		return 0;
	if (want > sp->len - pos)
		want = (size_t)(sp->len - pos);
	memcpy(out, sp->data + pos, want);
	return (long)want;
}

/* Bytes of a decoded part the cache cannot hold: from the spare, which is
 * fetched (whole, decoded) when it holds another part. */
static long read_spare(struct part_read *rd, uint64_t pos, char *out, size_t want)
{
	struct parts *p = rd->p;
	struct whole_job job = { rd, NULL, 0 };
	long got;
	int r;

	pthread_mutex_lock(&p->lock);
	got = copy_spare_locked(p, rd, pos, out, want);
	pthread_mutex_unlock(&p->lock);
	if (got >= 0)
		return got;
	r = pool_run(p->mb->pool, rd->server, 0, decode_whole_fn, &job);
	if (r < 0) {
		log_warn("cannot fetch part %s of UID %u of %s: %s", rd->ps->part->part_id, rd->m->uid,
			 rd->server, strerror(r == -ESTALE ? EIO : -r));
		free(job.data);
		return r == -ESTALE ? -EIO : r;
	}
	pthread_mutex_lock(&p->lock);
	free(p->spare.data);
	p->spare =
		(struct spare_part){ rd->m->folder, rd->m->uid, rd->m->uidvalidity, "", job.data, job.len };
	snprintf(p->spare.section, sizeof(p->spare.section), "%s", rd->ps->part->part_id);
	got = copy_spare_locked(p, rd, pos, out, want);
	pthread_mutex_unlock(&p->lock);
	return got;
}

static int fill_part_block(const struct cache_key *key, char *buf, size_t *len, void *ctx)
{
	struct part_read *rd = ctx;
	struct block_job job = { rd, key, buf, len };
	int r = pool_run(rd->p->mb->pool, rd->server, 0, part_block_fn, &job);

	if (r < 0)
		log_warn("cannot fetch part %s of UID %u of %s: %s", rd->ps->part->part_id, rd->m->uid,
			 rd->server, strerror(r == -ESTALE ? EIO : -r));
	return r == -ESTALE ? -EIO : r;
}

ssize_t parts_read(struct parts *p, const struct vnode_key *k, char *buf, size_t size, off_t off)
{
	struct folder *f = mb_folder(p->mb, k->folder);
	struct part_read rd = { p, NULL, NULL, f ? atomic_load(&f->server) : NULL };
	size_t done = 0;
	int r;

	if (!rd.server)
		return -ENOENT;
	r = get_parsed(p, k->folder, k->uid, &rd.m);
	if (r < 0)
		return r;
	rd.ps = size_of(rd.m, k->text);
	if (!rd.ps)
		r = -ENOENT;
	else if (rd.ps->source == FROM_NOWHERE)
		r = -EIO;
	while (r == 0 && off >= 0 && (uint64_t)off + done < rd.ps->size && done < size) {
		uint64_t pos = (uint64_t)off + done;
		struct cache_key key = { mb_folder_key(p->mb, f), rd.m->uidvalidity, rd.m->uid,
					 (uint32_t)(pos / CACHE_BLOCK_SIZE), cache_section_code(k->text) };
		size_t want = size - done, at = pos % CACHE_BLOCK_SIZE, blen = 0;
		long got;

		if (want > rd.ps->size - pos)
			want = (size_t)(rd.ps->size - pos);
		if (key.section) {
			got = cache_read(p->mb->cache, &key, fill_part_block, &rd, at, buf + done, want,
					 &blen);
		} else if (rd.ps->source == FROM_DECODED) {
			got = read_spare(&rd, pos, buf + done, want);
		} else { /* a section the cache cannot name: its range fetched each time */
			char *block = malloc(CACHE_BLOCK_SIZE);

			got = block ? fill_part_block(&key, block, &blen, &rd) : -ENOMEM;
			if (got == 0) {
				got = (long)cache_span(blen, at, want);
				memcpy(buf + done, block + at, (size_t)got);
			}
			free(block);
		}
		if (got < 0)
			r = (int)got;
		else if (got == 0)
			break; /* the server has fewer bytes than it said */
		else
			done += (size_t)got;
	}
	parsed_put(p, rd.m);
	return r < 0 ? r : (ssize_t)done;
}

int parts_xattr(struct parts *p, uint64_t ino, char **value, size_t *len)
{
	struct vnode_key k = { VNODE_PARTS_DIR, inode_folder(ino), inode_uid(ino), "" };
	struct view_entry *v = NULL;
	size_t n = 0, used = 0;
	int r = parts_list(p, &k, &v, &n);

	if (r < 0)
		return r;
	*value = malloc(n * (NAMES_MAX + 1) + 1);
	if (!*value) {
		view_entries_free(v, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		used += (size_t)sprintf(*value + used, "%s\n", v[i].name);
	*len = used;
	view_entries_free(v, n);
	return 0;
}
