/* shared_bytes.c - owns the reference count in front of shared bytes.
 * Before it, every fetched block was copied twice after it arrived, once
 * into the memory cache and once into the disk cache's queue, each copy in
 * memory of its own: on a cold read of a large folder the queue's copies
 * were a third of imapfs's page faults. */
#include "shared_bytes.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct shared_bytes {
	unsigned refs; /* atomic */
	max_align_t align_bytes[];
};

static struct shared_bytes *holder(char *bytes)
{
	return (struct shared_bytes *)(bytes - offsetof(struct shared_bytes, align_bytes));
}

char *shared_bytes_new(size_t len)
{
	struct shared_bytes *s = malloc(sizeof(*s) + (len ? len : 1));

	if (!s)
		return NULL;
	s->refs = 1;
	return (char *)s->align_bytes;
}

char *shared_bytes_copy(const char *data, size_t len)
{
	char *bytes = shared_bytes_new(len);

	if (bytes)
		memcpy(bytes, data, len);
	return bytes;
}

char *shared_bytes_shrink(char *bytes, size_t len)
{
	struct shared_bytes *s = realloc(holder(bytes), sizeof(struct shared_bytes) + (len ? len : 1));

	return s ? (char *)s->align_bytes : bytes;
}

char *shared_bytes_ref(char *bytes)
{
	__atomic_add_fetch(&holder(bytes)->refs, 1, __ATOMIC_RELAXED);
	return bytes;
}

void shared_bytes_unref(char *bytes)
{
	if (bytes && __atomic_sub_fetch(&holder(bytes)->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(holder(bytes));
}
