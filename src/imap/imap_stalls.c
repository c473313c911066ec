/* imap_stalls.c - owns the folders the server stopped answering a SELECT
 * for.  Such a folder rests: it is not asked for again until its rest is
 * over, and each stall in a row doubles the rest (STALL_FIRST .. STALL_MAX
 * seconds) until a SELECT of it succeeds.  Why: the server's process that
 * stalled on the folder (waiting for a lock of it, say) goes on waiting
 * after imapfs gives up on its connection, and logins still succeed --
 * asking again at once would leave one more such process per try, until a
 * per-user connection limit shuts the user's other mail clients out as
 * well.  Other folders are asked as usual meanwhile.  One account per
 * imapfs process: the table is the process's.
 * Lock: stalls_lock, a leaf (src/README, "Locks"). */
#include "imap_p.h"
#include "util/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALLS_MAX 16 /* folders remembered; the one resting least is forgotten */
#define STALL_FIRST 5 /* seconds a folder rests after its first stall */
#define STALL_MAX 60

struct stall {
	char *folder; /* owned; NULL: a free entry */
	time_t until; /* CLOCK_MONOTONIC seconds: resting before this */
	int rest;     /* seconds of the last rest */
};

static pthread_mutex_t stalls_lock = PTHREAD_MUTEX_INITIALIZER; /* protects stalls; a leaf */
static struct stall stalls[STALLS_MAX];

static time_t now_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

/* The entry of folder, or NULL; under stalls_lock. */
static struct stall *find(const char *folder)
{
	for (int i = 0; i < STALLS_MAX; i++) {
		if (stalls[i].folder && strcmp(stalls[i].folder, folder) == 0)
			return &stalls[i];
	}
	return NULL;
}

/* A free entry, or the one whose rest ends first; under stalls_lock. */
static struct stall *take_entry(void)
{
	struct stall *best = &stalls[0];

	for (int i = 0; i < STALLS_MAX; i++) {
		if (!stalls[i].folder)
			return &stalls[i];
		if (stalls[i].until < best->until)
			best = &stalls[i];
	}
	free(best->folder);
	best->folder = NULL;
	return best;
}

void imap_stall_note(const char *folder)
{
	struct stall *st;
	int rest = STALL_FIRST;

	pthread_mutex_lock(&stalls_lock);
	if ((st = find(folder))) {
		rest = st->rest * 2 > STALL_MAX ? STALL_MAX : st->rest * 2;
	} else {
		st = take_entry();
		st->folder = strdup(folder);
	}
	if (st->folder) {
		st->rest = rest;
		st->until = now_seconds() + rest;
	}
	pthread_mutex_unlock(&stalls_lock);
	log_warn("the server stopped answering for folder %.200s: not asked for it again for %d s", folder,
		 rest);
}

int imap_stall_left(const char *folder)
{
	struct stall *st;
	time_t left = 0;

	pthread_mutex_lock(&stalls_lock);
	if ((st = find(folder)))
		left = st->until - now_seconds();
	pthread_mutex_unlock(&stalls_lock);
	return left > 0 ? (int)left : 0;
}

void imap_stall_clear(const char *folder)
{
	struct stall *st;

	pthread_mutex_lock(&stalls_lock);
	if ((st = find(folder))) {
		free(st->folder);
		st->folder = NULL;
	}
	pthread_mutex_unlock(&stalls_lock);
}
