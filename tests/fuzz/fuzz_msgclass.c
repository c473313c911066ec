/* libFuzzer target for msgclass.c, mime.c and tnef.c: arbitrary bytes as a
 * message must give a valid class, without leaks or undefined behaviour.
 * The same bytes are also tried as the body of a TNEF part with a
 * correlator, so the TNEF reader sees raw input.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *     tests/fuzz/fuzz_msgclass.c src/msgclass.c src/mime.c src/tnef.c */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapi/msgclass.h"

static void check(const char *cls)
{
	size_t n = strlen(cls);

	if (n == 0 || n > 254 || cls[0] == '.' || cls[n - 1] == '.' || strstr(cls, ".."))
		abort();
	for (; *cls; cls++)
		if (*cls < 0x20 || *cls > 0x7e)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char key[] = "<k@example.com>";
	struct mime_part tnef = {
		.type = "application",
		.subtype = "ms-tnef",
		.part_id = "1",
		.body = (const char *)data,
		.body_len = size,
	};
	struct mime_message m = { .root = tnef, .tnef_correlator = key };
	char out[256];

	msgclass_of_message((const char *)data, size, out, sizeof(out));
	check(out);
	msgclass_derive(&m, NULL, NULL, out, sizeof(out));
	check(out);
	return 0;
}
