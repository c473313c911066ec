/* libFuzzer target for parts_base64_size (model/parts_names.c): a base64
 * part's decoded size counted from its first and last bytes.  Built and run
 * by `make fuzz`.
 *
 * Two readings of the input, chosen by its first byte:
 *  - data to encode, as an encoder lays base64 out (lines of 4..128
 *    characters, CRLF or LF, a final line break or none): the size counted
 *    must be the data's length, whenever it is counted at all, and with
 *    lines of 76 and 2 KiB ends it must be counted;
 *  - a body as a hostile server may store it: no crash, no read outside
 *    the two ends, and a size counted is at most what its bytes can hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/parts_names.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t encode(const uint8_t *in, size_t n, size_t line, const char *eol, int final_eol, char *out)
{
	size_t col = 0, len = 0, el = strlen(eol);

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)(i + 1 < n ? in[i + 1] : 0) << 8 |
			     (uint32_t)(i + 2 < n ? in[i + 2] : 0);
		char q[4] = { alphabet[v >> 18 & 63], alphabet[v >> 12 & 63], alphabet[v >> 6 & 63],
			      alphabet[v & 63] };

		if (n - i < 3)
			q[3] = '=';
		if (n - i < 2)
			q[2] = '=';
		for (int k = 0; k < 4; k++) {
			out[len++] = q[k];
			if (++col == line && (i + 3 < n || k < 3 || final_eol)) {
				memcpy(out + len, eol, el);
				len += el;
				col = 0;
			}
		}
	}
	if (col && final_eol) {
		memcpy(out + len, eol, el);
		len += el;
	}
	return len;
}

/* The ends as the server would give them: exact-size copies, so a read
 * past them is ASan's to see. */
static int count(const char *body, size_t len, size_t room, uint64_t *size)
{
	size_t h = len < room ? len : room;
	char *head = malloc(h ? h : 1), *tail = malloc(h ? h : 1);
	int r;

	memcpy(head, body, h);
	memcpy(tail, body + len - h, h);
	r = parts_base64_size(head, h, tail, h, len, size);
	free(head);
	free(tail);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t counted;

	if (size < 3)
		return 0;
	if (data[0] & 1) {
		size_t line = 4 * (1 + data[1] % 32), n = size - 3;
		const char *eol = data[2] & 1 ? "\r\n" : "\n";
		int final_eol = data[2] & 2;
		/* repeat the input so parts reach past both ends */
		size_t copies = 1 + (size_t)(data[2] >> 2), total = n * copies;
		uint8_t *in = malloc(total ? total : 1);
		char *body = malloc(total * 2 + 8);
		size_t len;

		for (size_t c = 0; c < copies; c++)
			memcpy(in + c * n, data + 3, n);
		len = encode(in, total, line, eol, final_eol, body);
		if (len && count(body, len, 2048, &counted) == 0)
			CHECK(counted == total);
		if (line == 76 && len > 4 * 2048)
			CHECK(count(body, len, 2048, &counted) == 0 && counted == total);
		free(in);
		free(body);
		return 0;
	}
	if (count((const char *)data + 1, size - 1, 1 + data[1] % 64, &counted) == 0)
		CHECK(counted <= (size - 1) / 4 * 3);
	return 0;
}
