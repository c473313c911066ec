/* deadline.h - bounded waits on condition variables, timed on the monotonic
 * clock so a change of the wall clock neither cuts a wait short nor makes
 * it endless. */
#ifndef IMAPFS_DEADLINE_H
#define IMAPFS_DEADLINE_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#define DEADLINE_MS_PER_S 1000u

/* pthread_cond_init for a condition variable whose pthread_cond_timedwait
 * takes deadline_in's times.  Returns 0 or an errno value. */
int deadline_cond_init(pthread_cond_t *cond);

/* *at becomes the moment ms milliseconds from now. */
void deadline_in(struct timespec *at, unsigned ms);

/* Whether at (a monotonic time, as deadline_in gives) has come. */
bool deadline_passed(const struct timespec *at);

/* Waits on cond (mutex held, as for pthread_cond_wait) until it is signalled
 * or at has passed; false once at has passed.  Like any condition wait it
 * may return early: the caller checks its condition again. */
bool deadline_wait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *at);

#endif
