/* prefetch.c - owns the read-ahead queue and its worker thread: claiming
 * the blocks a job will fetch, fetching them (batched for messages), and
 * handing them to the cache.  The queue is short and drops the oldest job
 * when full: a reader that moved on does not need it any more.
 * Locks: prefetch.lock, a leaf (src/README, "Locks"): claims are taken and
 * ended with it released, and it is never held across network I/O. */
#include "prefetch.h"
#include "cache.h"
#include "imap/imap.h"
#include "util/log.h"
#include "imap/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX 32
#define BATCH_MAX 64
/* Two workers: the first blocks of a batch of messages and the last block
 * of a large one among them (which opening it checks: see mailbox_read.c)
 * come in one round trip, in parallel on two sessions, not one after the
 * other. */
#define WORKERS 2

struct job {
	char *folder;
	uint64_t key;
	uint32_t uidvalidity;
	struct prefetch_head *heads; /* messages: block 0 of each */
	size_t n;
	uint32_t uid; /* or blocks first..last of uid */
	uint32_t first, last;
	bool claimed; /* blocks first..last were claimed when queued */
};

struct prefetch {
	struct pool *pool; /* this field and the three below: set once */
	struct cache *cache;
	unsigned depth;
	prefetch_whole_fn *whole_hook; /* these two: set before start */
	void *whole_ctx;
	pthread_t threads[WORKERS]; /* set by prefetch_start, before running */
	int nthreads;

	pthread_mutex_t lock; /* protects the fields below */
	pthread_cond_t wake;  /* with lock: a job queued, or stopping */
	bool running;
	struct job *queue[QUEUE_MAX];
	size_t head, count;
	bool stopping;
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->folder);
	free(j->heads);
	free(j);
}

static void release_blocks(struct cache *c, uint64_t key, uint32_t uidvalidity, uint32_t uid, uint32_t first,
			   uint32_t last)
{
	for (uint32_t b = first; b <= last; b++)
		cache_release_claim(c, &(struct cache_key){ key, uidvalidity, uid, b, 0 }, NULL, 0);
}

static void release_claims(struct prefetch *p, struct job *j)
{
	for (size_t i = 0; j && i < j->n; i++) {
		struct cache_key k = { j->key, j->uidvalidity, j->heads[i].uid, 0, 0 };

		cache_release_claim(p->cache, &k, NULL, 0);
	}
	if (j && j->claimed)
		release_blocks(p->cache, j->key, j->uidvalidity, j->uid, j->first, j->last);
}

struct prefetch *prefetch_new(struct pool *pool, struct cache *cache, unsigned depth)
{
	struct prefetch *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->pool = pool;
	p->cache = cache;
	p->depth = depth;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	return p;
}

void prefetch_free(struct prefetch *p)
{
	if (!p)
		return;
	prefetch_stop(p);
	while (p->count) {
		release_claims(p, p->queue[p->head]);
		job_free(p->queue[p->head]);
		p->head = (p->head + 1) % QUEUE_MAX;
		p->count--;
	}
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void prefetch_set_whole_hook(struct prefetch *p, prefetch_whole_fn *fn, void *ctx)
{
	if (!p)
		return;
	p->whole_hook = fn;
	p->whole_ctx = ctx;
}

unsigned prefetch_depth(const struct prefetch *p)
{
	return p ? p->depth : 0;
}

static void enqueue(struct prefetch *p, struct job *j)
{
	struct job *dropped = NULL;

	pthread_mutex_lock(&p->lock);
	if (!p->running || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		release_claims(p, j);
		job_free(j);
		return;
	}
	if (p->count == QUEUE_MAX) {
		dropped = p->queue[p->head];
		p->head = (p->head + 1) % QUEUE_MAX;
		p->count--;
	}
	p->queue[(p->head + p->count) % QUEUE_MAX] = j;
	p->count++;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	release_claims(p, dropped);
	job_free(dropped);
}

static struct job *new_job(const char *folder, uint64_t key, uint32_t uidvalidity)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j && !(j->folder = strdup(folder))) {
		free(j);
		return NULL;
	}
	if (j) {
		j->key = key;
		j->uidvalidity = uidvalidity;
	}
	return j;
}

void prefetch_messages(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
		       const struct prefetch_head *heads, size_t n)
{
	struct job *j;

	if (!p || !p->depth || !n)
		return;
	j = new_job(folder, key, uidvalidity);
	if (!j || !(j->heads = malloc(n * sizeof(*heads)))) {
		job_free(j);
		return;
	}
	/* claimed now, not when the worker gets to it: a reader who arrives
	 * first waits for this fetch instead of sending its own */
	for (size_t i = 0; i < n && j->n < BATCH_MAX; i++) {
		struct cache_key k = { key, uidvalidity, heads[i].uid, 0, 0 };

		if (cache_claim(p->cache, &k))
			j->heads[j->n++] = heads[i];
	}
	if (j->n)
		enqueue(p, j);
	else
		job_free(j);
}

static void queue_blocks(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
			 uint32_t uid, uint32_t first, uint32_t last, bool claimed)
{
	struct job *j = new_job(folder, key, uidvalidity);

	if (!j) {
		if (claimed)
			release_blocks(p->cache, key, uidvalidity, uid, first, last);
		return;
	}
	j->uid = uid;
	j->first = first;
	j->last = last;
	j->claimed = claimed;
	enqueue(p, j);
}

void prefetch_blocks(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity, uint32_t uid,
		     uint32_t first, uint32_t last)
{
	if (p && p->depth && last >= first)
		queue_blocks(p, folder, key, uidvalidity, uid, first, last, false);
}

#define RUN_MAX 256 /* blocks fetched with one command */

/* Claims the run of missing blocks from `from`'s block on, up to block
 * `last` and RUN_MAX blocks; returns its length. */
static uint32_t claim_run(struct cache *c, const struct cache_key *from, uint32_t last)
{
	struct cache_key k = *from;
	uint32_t n = 0;

	for (; k.block <= last && n < RUN_MAX && cache_claim(c, &k); k.block++)
		n++;
	return n;
}

void prefetch_claimed(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
		      uint32_t uid, uint32_t first, uint32_t last)
{
	uint32_t n;

	if (!p || !p->depth || last < first)
		return;
	/* claimed now, as for messages: opening the message waits for them */
	n = claim_run(p->cache, &(struct cache_key){ key, uidvalidity, uid, first, 0 }, last);
	if (n)
		queue_blocks(p, folder, key, uidvalidity, uid, first, first + n - 1, true);
	/* a block in between is cached or on its way: the last one, which
	 * the opening checks, still goes out now, alone */
	if (first + n <= last && cache_claim(p->cache, &(struct cache_key){ key, uidvalidity, uid, last, 0 }))
		queue_blocks(p, folder, key, uidvalidity, uid, last, last, true);
}

struct run {
	struct prefetch *p;
	struct job *job;
	uint32_t claimed[BATCH_MAX];
	size_t nclaimed;
	char *whole[BATCH_MAX]; /* by job position: bodies for the hook */
};

/* A copy of a head that is its message's whole body, for the hook: handed
 * over after the batch, when this worker holds no session (the kernel may
 * make the hook wait for a reader's read of the same page, and that reader
 * may be waiting for a session). */
static void keep_whole(struct run *run, uint32_t uid, const char *data, size_t len)
{
	const struct job *j = run->job;

	for (size_t i = 0; run->p->whole_hook && i < j->n; i++) {
		if (j->heads[i].uid != uid || j->heads[i].size != len || run->whole[i])
			continue;
		run->whole[i] = malloc(len);
		if (run->whole[i])
			memcpy(run->whole[i], data, len);
	}
}

static void hand_over_whole(struct run *run)
{
	const struct job *j = run->job;

	for (size_t i = 0; i < j->n; i++) {
		if (run->whole[i])
			run->p->whole_hook(j->heads[i].tag, run->whole[i], j->heads[i].size,
					   run->p->whole_ctx);
		free(run->whole[i]);
	}
}

static void got_head(uint32_t uid, const char *data, size_t len, void *ctx)
{
	struct run *run = ctx;
	struct cache_key k = { run->job->key, run->job->uidvalidity, uid, 0, 0 };

	/* an empty head is no message's: a server answers "" for one another
	 * client expunged meanwhile (and NO for the command, after the
	 * heads); kept, it would read as a message of 0 bytes */
	if (len == 0)
		data = NULL;
	else
		keep_whole(run, uid, data, len);
	for (size_t i = 0; i < run->nclaimed; i++) {
		if (run->claimed[i] == uid) {
			cache_release_claim(run->p->cache, &k, data, len);
			run->claimed[i] = 0; /* done */
		}
	}
}

static int messages_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct run *run = ctx;

	(void)st;
	/* on the retry after a lost session, the heads that came before it
	 * are done (got_head zeroed them): a 0 would go out as '*' */
	run->nclaimed = imap_uids_drop_zero(run->claimed, run->nclaimed);
	if (!run->nclaimed)
		return 0;
	if (imap_expect_validity(s, run->job->uidvalidity) < 0)
		return -ESTALE;
	return imap_fetch_heads(s, run->claimed, run->nclaimed, CACHE_BLOCK_SIZE, got_head, run);
}

static void run_messages(struct prefetch *p, struct job *j)
{
	struct run run = { .p = p, .job = j };

	for (size_t i = 0; i < j->n; i++)
		run.claimed[i] = j->heads[i].uid;
	run.nclaimed = j->n;
	if (pool_run(p->pool, j->folder, 0, messages_fn, &run) < 0)
		log_debug("prefetch of %zu messages in %s failed", run.nclaimed, j->folder);
	/* what did not arrive is released empty: readers fetch it themselves */
	for (size_t i = 0; i < run.nclaimed; i++) {
		struct cache_key k = { j->key, j->uidvalidity, run.claimed[i], 0, 0 };

		if (run.claimed[i])
			cache_release_claim(p->cache, &k, NULL, 0);
	}
	hand_over_whole(&run);
}

struct block_run {
	struct prefetch *p;
	struct job *job;
	uint32_t first, count; /* blocks claimed, fetched in one command */
	uint32_t released;     /* blocks of the run already handed to the cache */
	char *block;           /* the block arriving: CACHE_BLOCK_SIZE bytes */
	size_t fill;           /* of it so far */
};

static void release_next(struct block_run *br, const char *data, size_t len)
{
	struct cache_key k = { br->job->key, br->job->uidvalidity, br->job->uid, br->first + br->released,
			       0 };

	cache_release_claim(br->p->cache, &k, data, len);
	br->released++;
}

/* Each block is handed over as soon as it is complete: the reader waiting
 * for the first block of a long run does not wait for the whole run, and
 * the run needs one block of memory, whatever its length. */
static bool take_bytes(const char *bytes, size_t len, void *ctx)
{
	struct block_run *br = ctx;

	while (len > 0 && br->released < br->count) {
		size_t n = CACHE_BLOCK_SIZE - br->fill;

		if (n > len)
			n = len;
		memcpy(br->block + br->fill, bytes, n);
		br->fill += n;
		bytes += n;
		len -= n;
		if (br->fill == CACHE_BLOCK_SIZE) {
			release_next(br, br->block, CACHE_BLOCK_SIZE);
			br->fill = 0;
		}
	}
	return len == 0; /* the FETCH asked for count blocks at most */
}

static int block_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct block_run *br = ctx;
	uint32_t from = br->first + br->released;
	size_t got;

	(void)st;
	/* a retry after a lost session goes on from the first block not
	 * handed over -- if any: the session may have died after the last
	 * one came, before the tagged OK, and a range of 0 bytes goes out
	 * as BODY.PEEK[], the whole message */
	if (br->released == br->count)
		return 0;
	if (imap_expect_validity(s, br->job->uidvalidity) < 0)
		return -ESTALE;
	br->fill = 0;
	return imap_fetch_body_stream(s, br->job->uid, from * CACHE_BLOCK_SIZE,
				      (br->count - br->released) * CACHE_BLOCK_SIZE, take_bytes, br, &got);
}

static void run_blocks(struct prefetch *p, struct job *j, int pool_flags)
{
	struct block_run br = { .p = p, .job = j };
	uint32_t b = j->first;

	br.block = malloc(CACHE_BLOCK_SIZE);
	if (!br.block)
		release_claims(p, j);
	while (br.block && b <= j->last) {
		int r;

		br.first = b;
		br.released = 0;
		br.count = j->claimed ? j->last - j->first + 1
				      : claim_run(p->cache,
						  &(struct cache_key){ j->key, j->uidvalidity, j->uid, b, 0 },
						  j->last);
		if (br.count == 0) {
			b++;
			continue;
		}
		r = pool_run(p->pool, j->folder, pool_flags, block_fn, &br);
		/* the message's short last block; then the blocks past its end
		 * are known empty -- or, on error, released for readers to fetch */
		if (r == 0 && br.fill > 0)
			release_next(&br, br.block, br.fill);
		while (br.released < br.count)
			release_next(&br, r == 0 ? br.block : NULL, 0);
		if (r < 0)
			break;
		b += br.count;
	}
	free(br.block);
}

int prefetch_fetch_here(struct prefetch *p, const char *folder, uint64_t key, uint32_t uidvalidity,
			uint32_t uid, uint32_t first, uint32_t last)
{
	struct job *j;

	if (!p || last < first)
		return 0;
	j = new_job(folder, key, uidvalidity);
	if (!j)
		return -ENOMEM;
	j->uid = uid;
	j->first = first;
	j->last = last;
	/* claimed run by run: blocks cached or on their way split the span */
	run_blocks(p, j, 0);
	job_free(j);
	return 0;
}

static void *worker(void *arg)
{
	struct prefetch *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j;

		while (!p->count && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stopping)
			break;
		j = p->queue[p->head];
		p->head = (p->head + 1) % QUEUE_MAX;
		p->count--;
		pthread_mutex_unlock(&p->lock);
		if (j->heads)
			run_messages(p, j);
		else
			/* claimed blocks (a pass's tails) run beside the batch
			 * the reader waits for, not on the session it needs */
			run_blocks(p, j, j->claimed ? POOL_BESIDE : 0);
		job_free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int prefetch_start(struct prefetch *p)
{
	bool running;
	int r;

	if (!p || !p->depth)
		return 0;
	pthread_mutex_lock(&p->lock);
	running = p->running;
	pthread_mutex_unlock(&p->lock);
	if (running)
		return 0;
	for (r = 0; r == 0 && p->nthreads < WORKERS; p->nthreads++)
		r = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
	if (r) {
		p->nthreads--;
		if (!p->nthreads)
			return -r;
	}
	pthread_mutex_lock(&p->lock);
	p->running = true;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void prefetch_stop(struct prefetch *p)
{
	bool running;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	running = p->running;
	p->running = false;
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; running && i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}
