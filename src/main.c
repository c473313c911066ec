/* main.c - assembles the layers (config -> TLS -> IMAP session -> pool ->
 * cache -> mailbox -> FUSE), mounts, daemonises only after the first login
 * succeeded, runs the loop, and takes everything down in reverse order. */
#include "cache/cache.h"
#include "config/config.h"
#include "util/deadline.h"
#include "util/files.h"
#include "imap/imap.h"
#include "util/log.h"
#include "model/journal.h"
#include "model/mailbox.h"
#include "live/notify.h"
#include "fuse/ops.h"
#include "imap/pool.h"
#include "model/parts.h"
#include "model/quota.h"
#include "model/search.h"
#include "cache/prefetch.h"
#include "model/receive.h"
#include "imap/tls.h"
#include "model/upload.h"
#include "model/vnode.h"
#include "live/watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#ifndef IMAPFS_VERSION
#define IMAPFS_VERSION "0.1"
#endif

#define MAX_FUSE_THREADS 16

/* The one line a refused mount prints: it may quote the server (a login
 * refusal, a greeting), so it is made as safe for the terminal as a log line. */
static int fail(const char *what)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s", what);
	log_sanitize(line);
	fprintf(stderr, "imapfs: %s\n", line);
	return 1;
}

static int build_account(const struct config *cfg, const char *password, struct imap_account *acct, char *err,
			 size_t errlen)
{
	bool verify = !cfg->tls_verify || strcmp(cfg->tls_verify, "no") != 0;

	memset(acct, 0, sizeof(*acct));
	acct->host = cfg->url.host;
	acct->port = cfg->url.port;
	acct->user = cfg->url.user;
	acct->password = password;
	acct->timeout = (int)cfg->timeout;
	acct->compress = !cfg->compress || strcmp(cfg->compress, "auto") == 0 ? IMAP_COMPRESS_AUTO
			 : strcmp(cfg->compress, "yes") == 0                  ? IMAP_COMPRESS_YES
									      : IMAP_COMPRESS_NO;
	acct->security = cfg->url.tls     ? IMAP_SECURITY_TLS
			 : cfg->plaintext ? IMAP_SECURITY_NONE
					  : IMAP_SECURITY_STARTTLS;
	if (acct->security == IMAP_SECURITY_NONE) {
		fprintf(stderr, "imapfs: warning: -o plaintext: the password and all mail cross the "
				"network unencrypted\n");
		return 0;
	}
	if (!verify)
		fprintf(stderr, "imapfs: warning: -o tls_verify=no: the server's certificate is NOT "
				"checked; anyone on the path can read your mail (testing only)\n");
	acct->tls = tls_ctx_new(cfg->ca_file, verify, err, errlen);
	return acct->tls ? 0 : -EINVAL;
}

static int run_fuse(struct fuse_args *args, const struct config *cfg, struct ops_context *ctx,
		    struct pool *pool)
{
	/* threads exist only after fuse_daemonize has forked */
	struct fuse_session *se;
	struct fuse_loop_config *loop;
	int r = 1;

	/* the kernel checks permissions against our 0600/0700 modes */
	if (fuse_opt_add_arg(args, "-odefault_permissions,fsname=imapfs,subtype=imapfs") < 0)
		return fail("out of memory");
	se = fuse_session_new(args, &ops_table, sizeof(ops_table), ctx);
	if (!se)
		return fail("cannot create the FUSE session (unknown -o option?)");
	if (fuse_set_signal_handlers(se) != 0) {
		fail("cannot set signal handlers");
		goto out_session;
	}
	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		fail("cannot mount (does the mount point exist, and is it an empty directory you own?)");
		goto out_signals;
	}
	if (fuse_daemonize(cfg->foreground) != 0)
		goto out_unmount;
	log_init(cfg->debug, !cfg->foreground);
	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(loop, 1);
	fuse_loop_cfg_set_max_threads(loop, MAX_FUSE_THREADS);
	if (pool_start(pool) < 0)
		log_warn("cannot start the reconnection thread");
	if (mailbox_start(ctx->mailbox) < 0)
		log_warn("cannot start resolving pending changes in the background");
	if (notify_start(ctx->notify, se) < 0)
		log_warn("cannot start telling the kernel about changes");
	if (watch_start(ctx->watch) < 0)
		log_warn("cannot start watching folders");
	if (receive_start(ctx->receive) < 0)
		log_warn("cannot start routing new mail");
	if (prefetch_start(ctx->prefetch) < 0)
		log_warn("cannot start reading ahead");
	r = fuse_session_loop_mt(se, loop) == 0 ? 0 : 1;
	notify_quiesce(ctx->notify);
	watch_stop(ctx->watch);
	receive_stop(ctx->receive);
	prefetch_stop(ctx->prefetch);
	mailbox_stop(ctx->mailbox);
	pool_stop(pool);
	ops_release_all();
	fuse_loop_cfg_destroy(loop);
out_unmount:
	fuse_session_unmount(se);
	notify_stop(ctx->notify); /* after unmount: see notify.h */
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	return r;
}

int main(int argc, char **argv)
{
	struct fuse_args args;
	struct config cfg;
	struct imap_account acct;
	struct imap_session *first = NULL;
	struct pool *pool = NULL;
	struct cache *cache = NULL;
	struct mailbox *mb = NULL;
	struct ops_context ctx;
	struct uploads *uploads = NULL;
	struct receive *receive = NULL;
	struct prefetch *prefetch = NULL;
	struct notify *notify = NULL;
	struct watch *watch = NULL;
	struct quota *quota = NULL;
	struct vnodes *vnodes = NULL;
	struct parts *parts = NULL;
	struct search *search = NULL;
	char account[600], server_url[700];
	struct files_dir *cache_dir = NULL;
	struct journal *journal = NULL;
	char journal_name[JOURNAL_NAME_MAX];
	char err[512], *password = NULL;
	int status = 1;

	/* the password will be in memory: no core file, and no ptrace or
	 * /proc/PID/mem for the user's other processes */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(&acct, 0, sizeof(acct));
	if (config_parse_args(argc, argv, &cfg, &args, err, sizeof(err)) < 0) {
		fail(err);
		goto out;
	}
	if (cfg.show_help) {
		config_usage(argv[0]);
		status = 0;
		goto out;
	}
	if (cfg.show_version) {
		printf("imapfs %s\n", IMAPFS_VERSION);
		status = 0;
		goto out;
	}
	log_init(cfg.debug, false);
	mailstream_network_delay.tv_sec = cfg.timeout;
	imap_metadata_init();
	imap_binary_init();
	snprintf(account, sizeof(account), "%s@%s:%u", cfg.url.user, cfg.url.host, cfg.url.port);
	journal_dir_name(account, journal_name, sizeof(journal_name));
	if (!(cache_dir = config_cache_dir(&cfg, err, sizeof(err))) ||
	    journal_open(files_dir_fd(cache_dir), journal_name, &journal, err, sizeof(err)) < 0 ||
	    config_read_password(&cfg, &password, err, sizeof(err)) < 0 ||
	    build_account(&cfg, password, &acct, err, sizeof(err)) < 0 ||
	    imap_open(&acct, &first, err, sizeof(err)) < 0) {
		fail(err);
		goto out;
	}
	pool = pool_new(&acct, (int)cfg.connections, first);
	cache = cache_new(&(struct cache_options){ .memory_limit = cfg.memory_cache_bytes,
						   .disk_limit = cfg.cache_size_bytes,
						   .dir = cache_dir,
						   .fill_wait_ms = cfg.timeout * DEADLINE_MS_PER_S });
	mb = pool && cache
		     ? mailbox_new(pool, cache,
				   &(struct mailbox_options){
					   .names = cfg.names && strcmp(cfg.names, "uid") == 0
							    ? NAMES_UID
							    : NAMES_READABLE,
					   .dir_cache = (int)cfg.dir_cache,
					   .trash = cfg.trash,
					   .rm_expunge = cfg.rm && strcmp(cfg.rm, "expunge") == 0,
					   .account = account,
					   .cache_dir = cache_dir,
					   .offline_fail = cfg.offline && strcmp(cfg.offline, "fail") == 0,
					   .timeout = (int)cfg.timeout,
					   .journal = journal,
					   .writeback = cfg.writeback,
					   .writeback_delay = (int)cfg.writeback_delay })
		     : NULL;
	receive = mb ? receive_new(mb, pool,
				   &(struct receive_options){ .account = account,
							      .route_incoming = cfg.route_incoming,
							      .poll_interval = (int)cfg.dir_cache,
							      .timeout = cfg.timeout })
		     : NULL;
	uploads = receive ? uploads_new(mb, receive, cache_dir, cfg.timeout) : NULL;
	if (!pool)
		imap_close(first);
	prefetch = uploads ? prefetch_new(pool, cache, cfg.prefetch) : NULL;
	if (prefetch)
		mailbox_set_prefetch(mb, prefetch);
	notify = prefetch ? notify_new(mb, cfg.mountpoint) : NULL;
	if (notify) {
		mailbox_set_change_hook(mb, notify_changes, notify);
		prefetch_set_whole_hook(prefetch, notify_body, notify);
	}
	watch = notify ? watch_new(mb, pool, &acct, cfg.watch, (int)cfg.dir_cache) : NULL;
	quota = watch ? quota_new(pool) : NULL;
	vnodes = quota ? vnodes_new() : NULL;
	parts = vnodes ? parts_new(mb, vnodes) : NULL;
	search = parts ? search_new(mb, vnodes) : NULL;
	if (!search) {
		fail(prefetch && !notify ? "cannot resolve the mount point" : "out of memory");
		goto out;
	}
	if (mailbox_load_folders(mb) < 0) {
		fail("cannot list the folders on the server");
		goto out;
	}
	if (journal_count(journal) && mailbox_settle_changes(mb))
		log_warn("%zu changes an earlier mount left are still pending: they are resolved "
			 "in the background (MOUNT/.status lists them)",
			 journal_count(journal));
	receive_load(receive);
	snprintf(server_url, sizeof(server_url), "%s://%s@%s:%u", cfg.url.tls ? "imaps" : "imap",
		 cfg.url.user, cfg.url.host, cfg.url.port);
	ctx = (struct ops_context){ .mailbox = mb,
				    .uploads = uploads,
				    .receive = receive,
				    .prefetch = prefetch,
				    .notify = notify,
				    .watch = watch,
				    .quota = quota,
				    .vnodes = vnodes,
				    .parts = parts,
				    .search = search,
				    .server_url = server_url,
				    .entry_timeout = cfg.dir_cache,
				    .attr_timeout = 3600 };
	status = run_fuse(&args, &cfg, &ctx, pool);
out:
	search_free(search);
	parts_free(parts);
	vnodes_free(vnodes);
	quota_free(quota);
	watch_free(watch);
	notify_free(notify);
	prefetch_free(prefetch);
	uploads_free(uploads);
	receive_free(receive);
	mailbox_free(mb);
	pool_free(pool);
	cache_free(cache);
	journal_close(journal);
	if (acct.tls)
		SSL_CTX_free(acct.tls);
	config_free_secret(password);
	files_dir_close(cache_dir);
	fuse_opt_free_args(&args);
	config_free(&cfg);
	return status;
}
