/* writeback.c - owns -o writeback's flusher thread (changes.h): when a
 * round is due (writeback_delay, a burst's end, a waiter), the rounds
 * themselves (writeback_batch.c), the waits of fsync, chained changes and
 * unmount, .status; the queueing at the FUSE call is writeback_queue.c's.
 *
 * An acknowledged entry (JOURNAL_ACKED) is the flusher's alone: the
 * resolver and listing syncs pass over it.  Before a batch's first byte
 * goes out its entries are marked sent, with the destination's UIDNEXT
 * (journal_sent); an entry marked sent whose batch ended unclear is asked
 * about (changes_ask) before anything is sent again, and a batch never
 * holds two changes whose outcomes could be mistaken for each other. */
#include "changes_p.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WB_BURST_PART 5  /* nothing queued for delay / this: a burst is over */
#define WB_RETRY_S 5     /* a round that left changes unsent: next try */
#define WB_CUT_RETRY_S 1 /* a round cut short: the next one */

double wb_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

void changes_flush_now(struct mailbox *mb)
{
	bool cut;

	if (wb_count_acked(mb))
		wb_flush_round(mb, &cut);
}

/* ---- the flusher ---- */

static bool zero(const struct timespec *t)
{
	return !t->tv_sec && !t->tv_nsec;
}

/* Is a round due, c->lock held?  *wait: else, seconds until one may be. */
static bool due_locked(struct mailbox *mb, double *wait, const struct timespec *retry_at)
{
	struct changes *c = mb->changes;
	double delay = mb->opt.writeback_delay, burst = delay / WB_BURST_PART;

	*wait = 1;
	if (c->urgent || (!zero(retry_at) && wb_since(retry_at) >= 0))
		return true;
	if (zero(&c->first_queued))
		return false;
	if (wb_since(&c->first_queued) >= delay || wb_since(&c->last_queued) >= burst)
		return true;
	*wait = burst - wb_since(&c->last_queued);
	if (delay - wb_since(&c->first_queued) < *wait)
		*wait = delay - wb_since(&c->first_queued);
	if (*wait < 0.001)
		*wait = 0.001;
	return false;
}

static void *flusher(void *arg)
{
	struct mailbox *mb = arg;
	struct changes *c = mb->changes;
	struct timespec retry_at, until;
	double wait;

	clock_gettime(CLOCK_MONOTONIC, &retry_at); /* what an earlier mount left */
	pthread_mutex_lock(&c->lock);
	while (!c->stopping || c->urgent) {
		size_t left;
		bool cut;

		if (!due_locked(mb, &wait, &retry_at)) {
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += (time_t)wait;
			until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->flush_wake, &c->lock, &until);
			continue;
		}
		c->first_queued = (struct timespec){ 0 };
		c->urgent = false;
		pthread_mutex_unlock(&c->lock);
		left = wb_flush_round(mb, &cut);
		pthread_mutex_lock(&c->lock);
		c->rounds++;
		c->unsent = left;
		retry_at = (struct timespec){ 0 };
		if (left) { /* cut short or refused: again, soon or later */
			clock_gettime(CLOCK_MONOTONIC, &retry_at);
			retry_at.tv_sec += cut ? WB_CUT_RETRY_S : WB_RETRY_S;
		}
		pthread_cond_broadcast(&c->flushed);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- waiting ---- */

static int mount_timeout(const struct mailbox *mb)
{
	return mb->opt.timeout > 0 ? mb->opt.timeout : MB_DEFAULT_TIMEOUT;
}

static void deadline_in(struct timespec *t, double seconds)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += (time_t)seconds;
}

/* Waits for one flusher round to end (or for a second); c->lock held. */
static void await_round_locked(struct changes *c, bool push)
{
	unsigned long rounds = c->rounds;
	struct timespec t;

	if (push) { /* once, and again only after a round that got on:
		     * a round that cannot is not run back to back */
		c->urgent = true;
		pthread_cond_signal(&c->flush_wake);
	}
	deadline_in(&t, 1);
	while (c->rounds == rounds && c->flusher_running)
		if (pthread_cond_timedwait(&c->flushed, &c->lock, &t) != 0)
			break;
}

int changes_wait_entry(struct mailbox *mb, uint64_t id)
{
	struct changes *c = mb->changes;
	struct timespec start;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (bool first = true;; first = false) {
		bool down = pool_is_down(mb->pool); /* pool.lock before changes.lock */

		if (!journal_is_pending(mb->journal, id))
			break;
		if (wb_since(&start) > mount_timeout(mb) || down) {
			r = -EIO;
			break;
		}
		pthread_mutex_lock(&c->lock);
		if (c->flusher_running)
			await_round_locked(c, first);
		else
			r = -EIO;
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			break;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < WB_CONFLICTS && r == 0 && i < c->conflicts; i++)
		if (c->conflict_id[i] == id)
			r = c->conflict_err[i];
	pthread_mutex_unlock(&c->lock);
	return r;
}

int changes_wait_all(struct mailbox *mb, bool log_left)
{
	struct changes *c = mb->changes;
	size_t left = c && mb->journal ? wb_count_acked(mb) : 0, before = SIZE_MAX;
	struct timespec start;
	unsigned long conflicts;
	bool running = true;
	int r = 0;

	if (!left)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&c->lock);
	conflicts = c->conflicts;
	pthread_mutex_unlock(&c->lock);
	while (left && running && wb_since(&start) < mount_timeout(mb) && !pool_is_down(mb->pool)) {
		pthread_mutex_lock(&c->lock);
		running = c->flusher_running;
		if (running)
			await_round_locked(c, left < before);
		pthread_mutex_unlock(&c->lock);
		before = left;
		left = wb_count_acked(mb);
	}
	pthread_mutex_lock(&c->lock);
	if (c->conflicts != conflicts)
		r = c->last_conflict;
	pthread_mutex_unlock(&c->lock);
	if (left && log_left)
		log_warn("unmount: %zu changes are not on the server yet; they stay in the journal and are "
			 "sent by the next mount with this cache_dir (MOUNT/.status lists them)",
			 left);
	return left ? -EIO : r;
}

void changes_status(struct mailbox *mb, FILE *out)
{
	struct changes *c = mb->changes;
	bool down = pool_is_down(mb->pool), running;
	size_t unsent = wb_count_acked(mb);

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	running = c->flusher_running;
	if (mb->opt.writeback || running)
		fprintf(out, "writeback: %s, delay %d s, %zu unsent, %s\n", mb->opt.writeback ? "on" : "off",
			mb->opt.writeback_delay, unsent,
			down     ? "offline"
			: unsent ? "flushing"
				 : "idle");
	if (c->last_batch[0])
		fprintf(out, "writeback last batch: %s\n", c->last_batch);
	for (unsigned long i = c->conflicts > WB_CONFLICTS ? c->conflicts - WB_CONFLICTS : 0;
	     i < c->conflicts; i++)
		fprintf(out, "writeback conflict: %s\n", c->conflict[i % WB_CONFLICTS]);
	pthread_mutex_unlock(&c->lock);
}

/* ---- start and stop ---- */

void wb_init(struct changes *c)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->flush_wake, &attr);
	pthread_cond_init(&c->flushed, &attr);
	pthread_condattr_destroy(&attr);
}

void wb_destroy(struct changes *c)
{
	free(c->asked);
	pthread_cond_destroy(&c->flush_wake);
	pthread_cond_destroy(&c->flushed);
}

int wb_start(struct mailbox *mb)
{
	struct changes *c = mb->changes;

	/* also without -o writeback when an earlier mount left some: an
	 * acknowledged change is never dropped */
	if (!mb->opt.writeback && !wb_count_acked(mb))
		return 0;
	pthread_mutex_lock(&c->lock);
	c->flusher_running = pthread_create(&c->flusher, NULL, flusher, mb) == 0;
	pthread_mutex_unlock(&c->lock);
	if (!c->flusher_running)
		return -EAGAIN;
	return 0;
}

void wb_stop(struct mailbox *mb)
{
	struct changes *c = mb->changes;

	if (!c->flusher_running)
		return;
	changes_wait_all(mb, true); /* unmount: sent first, within the timeout */
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	c->urgent = false;
	pthread_cond_signal(&c->flush_wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->flusher, NULL);
	pthread_mutex_lock(&c->lock);
	c->flusher_running = false;
	pthread_mutex_unlock(&c->lock);
}
