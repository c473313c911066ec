/* quota.c - owns the quota figures df shows: fetched through the pool,
 * remembered for a minute (file managers call statfs often), the last
 * known figures kept while the server cannot be reached. */
#include "quota.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define QUOTA_MAX_AGE 60 /* seconds */

struct quota {
	struct pool *pool;
	pthread_mutex_t lock; /* protects the rest; not held across I/O */
	bool known;
	bool unsupported;     /* no QUOTA, or no STORAGE limit: do not ask again */
	uint64_t used, limit; /* bytes */
	time_t asked;         /* monotonic seconds of the last attempt */
};

struct quota *quota_new(struct pool *pool)
{
	struct quota *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->pool = pool;
	pthread_mutex_init(&q->lock, NULL);
	return q;
}

void quota_free(struct quota *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q);
}

struct quota_job {
	uint64_t used_kib, limit_kib;
};

static int quota_fn(struct imap_session *s, const struct imap_folder_state *st, void *ctx)
{
	struct quota_job *job = ctx;

	(void)st;
	return imap_storage_quota(s, "INBOX", &job->used_kib, &job->limit_kib);
}

static time_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

int quota_get(struct quota *q, uint64_t *used, uint64_t *limit)
{
	struct quota_job job = { 0 };
	bool ask;
	int r;

	pthread_mutex_lock(&q->lock);
	ask = !q->unsupported && (!q->asked || now_s() - q->asked >= QUOTA_MAX_AGE);
	if (ask)
		q->asked = now_s(); /* one asker at a time; the others use what is known */
	pthread_mutex_unlock(&q->lock);
	if (ask) {
		r = pool_run(q->pool, NULL, 0, quota_fn, &job);
		pthread_mutex_lock(&q->lock);
		if (r == 0 && job.limit_kib > 0) {
			q->known = true;
			q->used = job.used_kib * 1024;
			q->limit = job.limit_kib * 1024;
		} else if (r == -EOPNOTSUPP || r == -ENODATA || (r == 0 && job.limit_kib == 0)) {
			q->unsupported = true;
			q->known = false;
		}
		pthread_mutex_unlock(&q->lock);
		if (r < 0 && r != -EOPNOTSUPP && r != -ENODATA)
			log_debug("cannot read the quota: %d", r);
	}
	pthread_mutex_lock(&q->lock);
	r = q->known ? 0 : -ENODATA;
	*used = q->used;
	*limit = q->limit;
	pthread_mutex_unlock(&q->lock);
	return r;
}
