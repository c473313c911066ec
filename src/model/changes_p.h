/* changes_p.h - what changes.c and changes_check.c share (model-private). */
#ifndef IMAPFS_CHANGES_P_H
#define IMAPFS_CHANGES_P_H

#include "changes.h"

#define BUSY_MAX 64     /* entries being worked on at once (a FUSE thread each) */
#define WB_CONFLICTS 32 /* the latest write-back conflicts, kept for .status */
#define WB_LINE 240
struct wb_asked {
	uint64_t id;
	struct timespec at;
};

struct changes {
	/* Protects what follows.  Taken after every other model lock;
	 * journal.lock nests inside. */
	pthread_mutex_t lock;
	pthread_cond_t wake;     /* the resolver waits on it */
	uint64_t busy[BUSY_MAX]; /* entry ids a thread is working on */
	pthread_t thread;
	bool running, stopping;

	/* -o writeback (writeback.c) */
	pthread_cond_t flush_wake; /* the flusher waits on it */
	pthread_cond_t flushed;    /* broadcast when a flusher round ends */
	pthread_t flusher;
	bool flusher_running;
	bool urgent;                          /* someone waits: flush now */
	struct timespec first_queued;         /* the oldest change not sent yet; zero: none */
	struct timespec last_queued;          /* the newest */
	unsigned long rounds;                 /* flusher rounds ended */
	size_t unsent;                        /* acknowledged changes left by the last round */
	unsigned long conflicts;              /* changes parked by the flusher since mount */
	int last_conflict;                    /* the errno of the latest */
	char last_batch[WB_LINE];             /* for .status */
	char conflict[WB_CONFLICTS][WB_LINE]; /* a ring, by conflicts */
	uint64_t conflict_id[WB_CONFLICTS];
	/* The flusher thread's alone (no lock): changes found not done
	 * after a cut, and when first asked. */
	struct wb_asked *asked;
	size_t nasked, asked_cap;
	int conflict_err[WB_CONFLICTS];
};

/* What a pending entry turned out to be. */
enum outcome {
	OUTCOME_UNKNOWN, /* the server could not be asked */
	OUTCOME_COMPLETED,
	OUTCOME_ROLLED_BACK,
	OUTCOME_HALF,
	OUTCOME_GONE,    /* neither in the source nor arrived in the destination */
	OUTCOME_STALE,   /* a folder's UIDVALIDITY changed (re-created) */
	OUTCOME_REFUSED, /* the server refuses what would finish it */
};

/* Asks the server what became of e (finishing or undoing -- undo: the
 * server refused a step -- a half-done move on the way);
 * OUTCOME_UNKNOWN when it cannot be reached.  *new_uid: where it arrived. */
enum outcome changes_ask(struct mailbox *mb, const struct journal_entry *e, bool undo, uint32_t *new_uid);

/* SELECTs folder afresh and checks its UIDVALIDITY: 0, 1 when it changed
 * (or the folder is gone), or -errno. */
int changes_select_checked(struct imap_session *s, const char *folder, uint32_t validity);

/* changes.c's, for writeback.c */
int changes_add_claimed(struct mailbox *mb, struct journal_entry *e, const void *data, size_t len);
void changes_release(struct mailbox *mb, uint64_t id);
bool changes_busy(struct mailbox *mb, uint64_t id);
bool changes_confusable(const struct journal_entry *p, const struct journal_entry *e);
/* Forgets or parks e by its outcome; the errno its caller would see. */
int changes_conclude(struct mailbox *mb, const struct journal_entry *e, enum outcome o, int refused);

/* shared by writeback.c, writeback_queue.c, writeback_batch.c */
static inline bool wb_acked(const struct journal_entry *e)
{
	return (e->flags & JOURNAL_ACKED) != 0;
}
static inline bool wb_sent(const struct journal_entry *e)
{
	return (e->flags & JOURNAL_SENT) != 0;
}
double wb_since(const struct timespec *t); /* seconds, CLOCK_MONOTONIC */
/* The view once the flusher settled e: made (new_uid: where it arrived,
 * 0 unknown) or not made. */
void wb_show_done(struct mailbox *mb, const struct journal_entry *e, uint32_t new_uid);
void wb_show_undone(struct mailbox *mb, const struct journal_entry *e);
/* One round of the flusher: the number of acknowledged changes left; *cut:
 * the server could not be reached (or the connection died). */
size_t wb_flush_round(struct mailbox *mb, bool *cut);
size_t wb_count_acked(struct mailbox *mb);

/* writeback.c's, for changes.c */
void wb_init(struct changes *c);
void wb_destroy(struct changes *c);
int wb_start(struct mailbox *mb);
void wb_stop(struct mailbox *mb);

/* Sets the flags of n UIDs (selected) to text at once (changes_check.c). */
int changes_apply_flags_set(struct imap_session *s, const uint32_t *uids, size_t n, const char *text);

/* Sets the flags of e->src_uid (selected) to e->text (see changes_check.c). */
int changes_apply_flags(struct imap_session *s, const struct journal_entry *e);

#endif
