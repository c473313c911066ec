/* deadline.c - owns the clock of every bounded condition wait: CLOCK_MONOTONIC. */
#include "deadline.h"

#include <errno.h>

#define NSEC_PER_SEC 1000000000L
#define NSEC_PER_MSEC 1000000L

int deadline_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int r = pthread_condattr_init(&attr);

	if (r != 0)
		return r;
	r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return r;
}

void deadline_in(struct timespec *at, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, at);
	at->tv_sec += (time_t)(ms / DEADLINE_MS_PER_S);
	at->tv_nsec += (long)(ms % DEADLINE_MS_PER_S) * NSEC_PER_MSEC;
	if (at->tv_nsec >= NSEC_PER_SEC) {
		at->tv_sec++;
		at->tv_nsec -= NSEC_PER_SEC;
	}
}

bool deadline_wait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *at)
{
	return pthread_cond_timedwait(cond, mutex, at) != ETIMEDOUT;
}

bool deadline_passed(const struct timespec *at)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > at->tv_sec || (now.tv_sec == at->tv_sec && now.tv_nsec >= at->tv_nsec);
}
