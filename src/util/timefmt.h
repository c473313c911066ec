/* timefmt.h - Unix times as UTC text and back: ISO 8601 / RFC 3339
 * ("2024-05-01T12:00:00Z") and the calendar date.  Every int64_t time has a
 * text (proleptic Gregorian calendar, years past 9999 or before 0 written
 * in full), where gmtime_r and strftime stop at the limits of time_t and
 * int.  Pure and thread-safe. */
#ifndef IMAPFS_TIMEFMT_H
#define IMAPFS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for the ISO text of any int64_t time, NUL included. */
#define TIMEFMT_ISO_SIZE 32

/* The times whose year has four digits, which timefmt_parse_iso reads back:
 * 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define TIMEFMT_YEAR0_START (-62167219200LL)
#define TIMEFMT_YEAR9999_END 253402300799LL

/* "YYYY-MM-DDTHH:MM:SSZ" into out; returns out.  The year takes as many
 * digits as it needs, and at least four characters, a '-' included (the
 * year before 0 is "-001"). */
char *timefmt_iso(int64_t t, char out[static TIMEFMT_ISO_SIZE]);

/* "YYYY-MM-DD", the UTC date of t, written like snprintf does; returns its
 * length (10 for four-digit years). */
int timefmt_date(int64_t t, char *out, size_t size);

/* Reads "YYYY-MM-DDTHH:MM:SSZ" (exactly: four-digit year, two-digit fields,
 * a real date, 00:00:00 to 23:59:59, the Z) at the start of s into *t and
 * returns the first character after it; NULL when s does not start so. */
const char *timefmt_parse_iso(const char *s, int64_t *t);

#endif
