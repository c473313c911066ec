/* inode.h - how inode numbers encode what they name.  Nothing is stored per
 * inode: a number is computed from (folder id, UID), so lookup counts need no
 * bookkeeping and forget has nothing to free.
 *   1                 the mount root (folder id 0)
 *   2 .. 15           virtual control files (INODE_CTL_*)
 *   16 + id           folder directory `id`
 *   (id + 1) << 32 | uid   message `uid` of folder `id`
 *   (INODE_UPLOAD_FOLDER + 1) << 32 | n   file n being written by cp
 *   (INODE_VIRTUAL_FOLDER + 1) << 32 | n  virtual node n (vnode.h):
 *                     `.parts` directories, part files, searches */
#ifndef IMAPFS_INODE_H
#define IMAPFS_INODE_H

#include <stdbool.h>
#include <stdint.h>

#define INODE_ROOT 1u
#define INODE_CTL_RFOLDERS 2u /* MOUNT/.receive-folders */
#define INODE_CTL_STATUS 3u   /* MOUNT/.status */
#define INODE_FOLDER_BASE 16u
#define INODE_UPLOAD_FOLDER 0xfffffffeu  /* no real folder gets this id */
#define INODE_VIRTUAL_FOLDER 0xfffffffdu /* nor this one */

static inline uint64_t inode_of_folder(uint32_t id)
{
	return id == 0 ? INODE_ROOT : INODE_FOLDER_BASE + (uint64_t)id;
}

static inline uint64_t inode_of_message(uint32_t folder, uint32_t uid)
{
	return ((uint64_t)folder + 1) << 32 | uid;
}

static inline bool inode_is_message(uint64_t ino)
{
	return ino >> 32 != 0;
}

static inline bool inode_is_folder(uint64_t ino)
{
	return ino == INODE_ROOT || (ino >= INODE_FOLDER_BASE && ino >> 32 == 0);
}

static inline uint32_t inode_folder(uint64_t ino)
{
	if (inode_is_message(ino))
		return (uint32_t)((ino >> 32) - 1);
	return ino == INODE_ROOT ? 0 : (uint32_t)(ino - INODE_FOLDER_BASE);
}

static inline bool inode_is_upload(uint64_t ino)
{
	return inode_is_message(ino) && inode_folder(ino) == INODE_UPLOAD_FOLDER;
}

static inline bool inode_is_virtual(uint64_t ino)
{
	return ino >> 32 == (uint64_t)INODE_VIRTUAL_FOLDER + 1;
}

static inline uint32_t inode_uid(uint64_t ino)
{
	return (uint32_t)(ino & 0xffffffffu);
}

#endif
