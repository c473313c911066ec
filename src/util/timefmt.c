/* timefmt.c - owns the conversion between Unix time and the proleptic
 * Gregorian calendar in UTC, and the ISO 8601 text of timefmt.h. */
#include "timefmt.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#define SECONDS_PER_DAY 86400
#define SECONDS_PER_HOUR 3600
#define SECONDS_PER_MINUTE 60
/* The calendar repeats every 400 years (an era) of 146097 days.  Counting
 * from 0000-03-01 puts each leap day at the end of its year; 1970-01-01 is
 * day 719468 of that count. */
#define DAYS_PER_ERA 146097
#define YEARS_PER_ERA 400
#define EPOCH_DAY_FROM_MARCH_0000 719468

struct civil {
	int64_t year;
	unsigned month, day; /* 1-12, 1-31 */
	unsigned hour, minute, second;
};

/* The date of a day count since 1970-01-01, for any int64_t count that
 * came from dividing a time by a day. */
static void civil_from_days(int64_t days, struct civil *c)
{
	int64_t z = days + EPOCH_DAY_FROM_MARCH_0000;
	int64_t era = (z >= 0 ? z : z - (DAYS_PER_ERA - 1)) / DAYS_PER_ERA;
	int64_t day_of_era = z - era * DAYS_PER_ERA;
	/* the leap days of 4, 100 and 400 years taken out, then whole years */
	int64_t year_of_era =
		(day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / (DAYS_PER_ERA - 1)) / 365;
	int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t month_from_march = (5 * day_of_year + 2) / 153;

	c->day = (unsigned)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
	c->month = (unsigned)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
	c->year = year_of_era + era * YEARS_PER_ERA + (c->month <= 2);
}

/* The reverse, for years whose day count fits (every year parsed here). */
static int64_t days_from_civil(int64_t year, unsigned month, unsigned day)
{
	int64_t y = month <= 2 ? year - 1 : year; /* the year starts in March */
	int64_t era = (y >= 0 ? y : y - (YEARS_PER_ERA - 1)) / YEARS_PER_ERA;
	int64_t year_of_era = y - era * YEARS_PER_ERA;
	int64_t month_from_march = month > 2 ? month - 3 : month + 9;
	int64_t day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;

	return era * DAYS_PER_ERA + day_of_era - EPOCH_DAY_FROM_MARCH_0000;
}

/* Split without overflow: t - days * SECONDS_PER_DAY could leave int64_t
 * at its ends. */
static void civil_from_time(int64_t t, struct civil *c)
{
	int64_t days = t / SECONDS_PER_DAY;
	int64_t rest = t % SECONDS_PER_DAY;

	if (rest < 0) {
		rest += SECONDS_PER_DAY;
		days--;
	}
	civil_from_days(days, c);
	c->hour = (unsigned)(rest / SECONDS_PER_HOUR);
	c->minute = (unsigned)(rest % SECONDS_PER_HOUR / SECONDS_PER_MINUTE);
	c->second = (unsigned)(rest % SECONDS_PER_MINUTE);
}

char *timefmt_iso(int64_t t, char out[static TIMEFMT_ISO_SIZE])
{
	struct civil c;

	civil_from_time(t, &c);
	snprintf(out, TIMEFMT_ISO_SIZE, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02uZ", c.year, c.month, c.day,
		 c.hour, c.minute, c.second);
	return out;
}

int timefmt_date(int64_t t, char *out, size_t size)
{
	struct civil c;

	civil_from_time(t, &c);
	return snprintf(out, size, "%04" PRId64 "-%02u-%02u", c.year, c.month, c.day);
}

static bool is_leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % YEARS_PER_ERA == 0;
}

static unsigned days_in_month(int64_t year, unsigned month)
{
	static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

/* The decimal value of the n digits at s. */
static unsigned digits_value(const char *s, size_t n)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

const char *timefmt_parse_iso(const char *s, int64_t *t)
{
	/* 'd' stands for a digit; the offsets below are those of this text */
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	struct civil c;

	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return NULL; /* also stops at the NUL */
	c.year = digits_value(s, 4);
	c.month = digits_value(s + 5, 2);
	c.day = digits_value(s + 8, 2);
	c.hour = digits_value(s + 11, 2);
	c.minute = digits_value(s + 14, 2);
	c.second = digits_value(s + 17, 2);
	if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > days_in_month(c.year, c.month) ||
	    c.hour > 23 || c.minute > 59 || c.second > 59)
		return NULL;
	*t = days_from_civil(c.year, c.month, c.day) * SECONDS_PER_DAY + c.hour * SECONDS_PER_HOUR +
	     c.minute * SECONDS_PER_MINUTE + c.second;
	return s + sizeof(shape) - 1;
}
