/* libFuzzer target for the change journal's records (model/journal_codec.c):
 * what imapfs reads back from its journal after a crash, or from a file
 * someone damaged.  (make fuzz builds and runs it.)
 *
 * The input is scanned as a whole journal file.  Every record the scanner
 * calls good must decode without a crash; a decoded ADD record must encode
 * to a record that scans and decodes to the same fields, a decoded SENT
 * record to the same bytes; the good prefix
 * never exceeds the input, and only a clean scan ends at its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/journal_codec.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A SENT record decoded encodes to the same payload. */
static void sent_record(const uint8_t *p, size_t len)
{
	struct journal_sent_rec s;
	uint64_t *ids;
	uint8_t *rec;
	size_t reclen;

	if (journal_decode_sent(p, len, &s) != 0)
		return;
	CHECK(s.n <= JOURNAL_SENT_MAX_IDS);
	ids = malloc((s.n ? s.n : 1) * sizeof(*ids));
	CHECK(ids);
	for (size_t i = 0; i < s.n; i++)
		ids[i] = journal_sent_id(&s, i);
	CHECK(journal_encode_sent(ids, s.n, s.dest_validity, s.dest_uidnext, &rec, &reclen) == 0);
	CHECK(journal_record_len(rec, reclen) == reclen);
	CHECK(reclen == len + JOURNAL_REC_OVERHEAD && memcmp(rec + 7, p, len) == 0);
	free(rec);
	free(ids);
}

static int one_record(enum journal_kind kind, const uint8_t *p, size_t len, void *ctx)
{
	struct journal_entry e, back;
	uint8_t *rec;
	size_t reclen;

	(void)ctx;
	if (kind == JOURNAL_REC_SENT)
		sent_record(p, len);
	if (kind != JOURNAL_REC_ADD || journal_decode_add(p, len, &e) != 0)
		return 0;
	if (journal_encode_add(&e, &rec, &reclen) == 0) {
		CHECK(journal_record_len(rec, reclen) == reclen);
		CHECK(journal_decode_add(rec + 7, reclen - JOURNAL_REC_OVERHEAD, &back) == 0);
		CHECK(back.id == e.id && back.op == e.op && back.flags == e.flags);
		CHECK(back.src_uid == e.src_uid && back.dest_uidnext == e.dest_uidnext);
		CHECK(back.src_validity == e.src_validity && back.dest_validity == e.dest_validity);
		CHECK(back.size == e.size && back.internaldate == e.internaldate);
		CHECK(same_str(back.src, e.src) && same_str(back.dest, e.dest));
		CHECK(same_str(back.text, e.text) && same_str(back.staged, e.staged));
		journal_entry_free(&back);
		free(rec);
	}
	journal_entry_free(&e);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum journal_scan_end end;
	size_t good = 0;

	journal_scan(data, size, one_record, NULL, &good, &end);
	CHECK(good <= size);
	CHECK((end == JOURNAL_CLEAN) == (good == size));
	CHECK(journal_resync(data, size) <= size);
	return 0;
}
