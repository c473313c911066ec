/* vnode.c - owns the virtual-node table (vnode.h): ids for `.parts`
 * directories, part files and search directories, found by id (getattr,
 * read) and by key (lookup), freed when the kernel forgets them.
 * Lock: vnodes.lock, a leaf (src/README, "Locks"). */
#include "vnode.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct vnode {
	struct vnode *next_in_bucket;
	enum vnode_kind kind;
	uint32_t folder, uid;
	uint32_t id;      /* its inode's low 32 bits; slot id - 1 */
	uint64_t lookups; /* the kernel's count; 0 frees it */
	char text[];
};

#define BUCKETS 4096u

struct vnodes {
	/* Leaf lock: protects every field below and every node. */
	pthread_mutex_t lock;
	struct vnode *bucket[BUCKETS];
	struct vnode **slot; /* by id - 1; NULL: free */
	size_t nslots, count;
	uint32_t *free_ids; /* ids whose node went, reused first */
	size_t nfree;
};

static uint32_t key_hash(const struct vnode_key *k)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	h = (h ^ (uint32_t)k->kind) * 16777619u;
	h = (h ^ k->folder) * 16777619u;
	h = (h ^ k->uid) * 16777619u;
	for (const char *p = k->text; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % BUCKETS;
}

static bool same(const struct vnode *n, const struct vnode_key *k)
{
	return n->kind == k->kind && n->folder == k->folder && n->uid == k->uid &&
	       strcmp(n->text, k->text) == 0;
}

struct vnodes *vnodes_new(void)
{
	struct vnodes *v = calloc(1, sizeof(*v));

	if (v)
		pthread_mutex_init(&v->lock, NULL);
	return v;
}

void vnodes_free(struct vnodes *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nslots; i++)
		free(v->slot[i]);
	free(v->slot);
	free(v->free_ids);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* A free id for n, growing the slots when none is; under the lock. */
static int place(struct vnodes *v, struct vnode *n)
{
	if (v->nfree) {
		n->id = v->free_ids[--v->nfree];
	} else {
		struct vnode **slot;
		uint32_t *ids;

		if (v->nslots >= VNODE_MAX)
			return -ENFILE;
		slot = realloc(v->slot, (v->nslots + 1) * sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		v->slot = slot;
		/* room to give the id back when the node goes */
		ids = realloc(v->free_ids, (v->nslots + 1) * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		v->free_ids = ids;
		n->id = (uint32_t)++v->nslots;
	}
	v->slot[n->id - 1] = n;
	v->count++;
	return 0;
}

int vnodes_lookup(struct vnodes *v, const struct vnode_key *key, uint64_t *ino)
{
	size_t len = strlen(key->text);
	uint32_t b = key_hash(key);
	struct vnode *n;
	int r = 0;

	if (len > VNODE_TEXT_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&v->lock);
	for (n = v->bucket[b]; n && !same(n, key); n = n->next_in_bucket)
		;
	if (!n) {
		n = malloc(sizeof(*n) + len + 1);
		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		n->kind = key->kind;
		n->folder = key->folder;
		n->uid = key->uid;
		n->lookups = 0;
		memcpy(n->text, key->text, len + 1);
		r = place(v, n);
		if (r < 0) {
			free(n);
			goto out;
		}
		n->next_in_bucket = v->bucket[b];
		v->bucket[b] = n;
	}
	n->lookups++;
	*ino = inode_of_message(INODE_VIRTUAL_FOLDER, n->id);
out:
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* The node of ino, under the lock; NULL when there is none. */
static struct vnode *node_of(struct vnodes *v, uint64_t ino)
{
	uint32_t id = inode_uid(ino);

	if (!inode_is_virtual(ino) || id == 0 || id > v->nslots)
		return NULL;
	return v->slot[id - 1];
}

int vnodes_get(struct vnodes *v, uint64_t ino, struct vnode_key *key, char *text)
{
	struct vnode *n;
	int r = -ESTALE;

	pthread_mutex_lock(&v->lock);
	n = node_of(v, ino);
	if (n) {
		key->kind = n->kind;
		key->folder = n->folder;
		key->uid = n->uid;
		strcpy(text, n->text); /* at most VNODE_TEXT_MAX: checked at lookup */
		key->text = text;
		r = 0;
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

void vnodes_forget(struct vnodes *v, uint64_t ino, uint64_t nlookup)
{
	struct vnode *n, **link;
	struct vnode_key k;

	pthread_mutex_lock(&v->lock);
	n = node_of(v, ino);
	if (!n || (n->lookups > nlookup && (n->lookups -= nlookup) > 0)) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	k = (struct vnode_key){ n->kind, n->folder, n->uid, n->text };
	for (link = &v->bucket[key_hash(&k)]; *link != n; link = &(*link)->next_in_bucket)
		;
	*link = n->next_in_bucket;
	v->slot[n->id - 1] = NULL;
	v->free_ids[v->nfree++] = n->id;
	v->count--;
	free(n);
	pthread_mutex_unlock(&v->lock);
}

size_t vnodes_count(struct vnodes *v)
{
	size_t n;

	pthread_mutex_lock(&v->lock);
	n = v->count;
	pthread_mutex_unlock(&v->lock);
	return n;
}

int vnodes_count_entry(struct vnodes *v, struct view_entry *e)
{
	struct vnode_key k = { e->kind, e->folder, e->uid, e->text ? e->text : "" };
	uint64_t ino;
	int r;

	if (e->kind == 0)
		return 0;
	r = vnodes_lookup(v, &k, &ino);
	if (r == 0)
		e->st.st_ino = ino;
	return r;
}

void view_entries_free(struct view_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].text);
	}
	free(v);
}
