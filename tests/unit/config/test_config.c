/* Unit tests for config.c: URL parsing, option parsing, credential checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/netrc.h"
#include "config/config_file.h"
#include "config/config_options.h"

struct url_case {
	const char *text;
	int ok;
	int tls;
	const char *user, *host;
	unsigned port;
};

static const struct url_case url_cases[] = {
	{ "imaps://alice@mail.example.org", 1, 1, "alice", "mail.example.org", 993 },
	{ "imap://alice@mail.example.org", 1, 0, "alice", "mail.example.org", 143 },
	{ "imaps://alice@localhost:10993", 1, 1, "alice", "localhost", 10993 },
	{ "imaps://alice%40example.org@host", 1, 1, "alice@example.org", "host", 993 },
	{ "imaps://bob@[::1]:993", 1, 1, "bob", "::1", 993 },
	{ "imaps://bob@127.0.0.1/", 1, 1, "bob", "127.0.0.1", 993 },
	{ "imaps://a%2fb@h", 1, 1, "a/b", "h", 993 },
	{ "http://alice@host", 0, 0, NULL, NULL, 0 },
	{ "imaps://host", 0, 0, NULL, NULL, 0 },
	{ "imaps://@host", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@host:0", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@host:65536", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@host:99x", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@host:", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@host/INBOX", 0, 0, NULL, NULL, 0 },
	{ "imaps://al%0dice@host", 0, 0, NULL, NULL, 0 },
	{ "imaps://al%0Aice@host", 0, 0, NULL, NULL, 0 },
	{ "imaps://al%00ice@host", 0, 0, NULL, NULL, 0 },
	{ "imaps://al%4@host", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@ho st", 0, 0, NULL, NULL, 0 },
	{ "imaps://alice@[::1", 0, 0, NULL, NULL, 0 },
	{ "imaps://a@b@host", 0, 0, NULL, NULL, 0 },
	{ "", 0, 0, NULL, NULL, 0 },
};

static void test_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *c = &url_cases[i];
		struct imap_url url;
		char err[256] = "";
		int r = config_parse_url(c->text, &url, err, sizeof(err));

		if (!c->ok) {
			if (r == 0)
				fail_msg("accepted bad URL %s", c->text);
			assert_true(err[0] != '\0');
			continue;
		}
		if (r != 0)
			fail_msg("refused good URL %s: %s", c->text, err);
		assert_int_equal(url.tls, c->tls);
		assert_string_equal(url.user, c->user);
		assert_string_equal(url.host, c->host);
		assert_int_equal(url.port, c->port);
		free(url.user);
		free(url.host);
	}
}

static int parse(const char **argv_in, struct config *cfg, char *err, size_t errlen)
{
	struct fuse_args args;
	char *argv[16];
	int argc = 0, r;

	for (; argv_in[argc]; argc++)
		argv[argc] = strdup(argv_in[argc]);
	argv[argc] = NULL;
	r = config_parse_args(argc, argv, cfg, &args, err, errlen);
	fuse_opt_free_args(&args);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return r;
}

static void test_options(void **state)
{
	struct config cfg;
	char err[256];
	const char *good[] = { "imapfs",
			       "-o",
			       "password_file=/p,connections=8,timeout=5,names=uid",
			       "-o",
			       "dir_cache=3,ca_file=/ca,_netdev",
			       "-f",
			       "imaps://u@h",
			       "/mnt",
			       NULL };

	(void)state;
	assert_int_equal(parse(good, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.password_file, "/p");
	assert_string_equal(cfg.ca_file, "/ca");
	assert_string_equal(cfg.names, "uid");
	assert_int_equal(cfg.connections, 8);
	assert_int_equal(cfg.timeout, 5);
	assert_int_equal(cfg.dir_cache, 3);
	assert_int_equal(cfg.foreground, 1);
	assert_string_equal(cfg.mountpoint, "/mnt");
	assert_string_equal(cfg.url.host, "h");
	config_free(&cfg);

	const char *defaults[] = { "imapfs", "imap://u@h", "/mnt", NULL };
	assert_int_equal(parse(defaults, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.connections, 4);
	assert_int_equal(cfg.timeout, 30);
	assert_int_equal(cfg.dir_cache, 10);
	assert_int_equal(cfg.foreground, 0);
	config_free(&cfg);

	const char *debug[] = { "imapfs", "-d", "imap://u@h", "/mnt", NULL };
	assert_int_equal(parse(debug, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.debug, 1);
	assert_int_equal(cfg.foreground, 1);
	config_free(&cfg);

	/* libfuse splits -o at commas; the folders of watch= are put back together */
	const char *watch[] = { "imapfs",
				"-o",
				"watch=Lists/dev,Entwürfe,timeout=7,Archive",
				"-o",
				"offline=fail",
				"-o",
				"watch=Projects/2024",
				"imap://u@h",
				"/mnt",
				NULL };
	assert_int_equal(parse(watch, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.watch, "Lists/dev,Entwürfe,Archive,Projects/2024");
	assert_int_equal(cfg.timeout, 7);
	assert_string_equal(cfg.offline, "fail");
	config_free(&cfg);

	const char *help[] = { "imapfs", "--help", NULL };
	assert_int_equal(parse(help, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.show_help, 1);
	config_free(&cfg);
}

static void test_bad_options(void **state)
{
	static const char *cases[][8] = {
		{ "imapfs", NULL },
		{ "imapfs", "imaps://u@h", NULL },
		{ "imapfs", "imaps://u@h", "/mnt", "extra", NULL },
		{ "imapfs", "-o", "names=fancy", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "-o", "tls_verify=maybe", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "-o", "connections=0", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "-o", "timeout=0", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "-o", "plaintext", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "-o", "offline=maybe", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "-o", "compress=maybe", "imaps://u@h", "/mnt", NULL },
		{ "imapfs", "ftp://u@h", "/mnt", NULL },
	};
	struct config cfg;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (parse(cases[i], &cfg, err, sizeof(err)) == 0)
			fail_msg("case %zu accepted", i);
		assert_true(err[0] != '\0');
		config_free(&cfg);
	}
}

/* compress= takes one of three words, each of them, and names all three
 * when refused. */
static void test_compress_choices(void **state)
{
	static const char *words[] = { "auto", "yes", "no" };
	const char *bad[] = { "imapfs", "-o", "compress=deflate", "imaps://u@h", "/mnt", NULL };
	struct config cfg;
	char opt[32], err[256];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		const char *argv[] = { "imapfs", "-o", opt, "imaps://u@h", "/mnt", NULL };

		snprintf(opt, sizeof(opt), "compress=%s", words[i]);
		assert_int_equal(parse(argv, &cfg, err, sizeof(err)), 0);
		assert_string_equal(cfg.compress, words[i]);
		config_free(&cfg);
	}
	assert_int_equal(parse(bad, &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "-o compress= takes auto, yes or no");
	config_free(&cfg);
}

static void test_credentials(void **state)
{
	(void)state;
	assert_true(config_credential_ok("secret", 6));
	assert_true(config_credential_ok("sp ace\tand \xc3\xbc", 13));
	assert_false(config_credential_ok("a\rb", 3));
	assert_false(config_credential_ok("a\nb", 3));
	assert_false(config_credential_ok("a\0b", 3));
}

static void test_password_sources(void **state)
{
	struct config cfg;
	char err[256], *pw = NULL;
	char path[] = "/tmp/imapfs-test-pwXXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\r\nsecond line\n", 20), 20);
	close(fd);
	memset(&cfg, 0, sizeof(cfg));
	cfg.password_file = path;
	assert_int_equal(config_read_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "s3cret");
	config_free_secret(pw);

	chmod(path, 0644);
	assert_true(config_read_password(&cfg, &pw, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "chmod 600"));
	unlink(path);

	cfg.password_file = NULL;
	cfg.password_command = "printf 'from-cmd\\nignored\\n'";
	assert_int_equal(config_read_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "from-cmd");
	config_free_secret(pw);

	cfg.password_command = "exit 3";
	assert_true(config_read_password(&cfg, &pw, err, sizeof(err)) < 0);

	cfg.password_command = NULL;
	setenv("IMAPFS_PASSWORD", "env-pass", 1);
	assert_int_equal(config_read_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "env-pass");
	config_free_secret(pw);
	/* read once, then gone: a password_command or a child never sees it */
	assert_null(getenv("IMAPFS_PASSWORD"));
	setenv("IMAPFS_PASSWORD", "unused", 1);
	cfg.password_command = "echo from-cmd";
	assert_int_equal(config_read_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "from-cmd");
	config_free_secret(pw);
	assert_null(getenv("IMAPFS_PASSWORD"));
	cfg.password_command = NULL;

	setenv("IMAPFS_PASSWORD", "bad\npass", 1);
	assert_true(config_read_password(&cfg, &pw, err, sizeof(err)) < 0);
	assert_null(pw);
	unsetenv("IMAPFS_PASSWORD");
}

struct netrc_case {
	const char *text, *host, *user, *want; /* want NULL: no match */
};

static void test_netrc(void **state)
{
	static const struct netrc_case cases[] = {
		{ "machine h login u password p", "h", "u", "p" },
		{ "machine H login u password p", "h", "u", "p" }, /* host names: any case */
		{ "machine h\n  login u\n  password p\n", "h", "u", "p" },
		{ "machine h login other password p", "h", "u", NULL },
		{ "machine h password p", "h", "u", "p" }, /* no login: any user */
		{ "machine x login u password p", "h", "u", NULL },
		{ "machine x login u password px\ndefault login u password pd", "h", "u", "pd" },
		{ "default password pd\nmachine h login u password ph", "h", "u", "ph" },
		{ "machine h login u password \"a b\"", "h", "u", "a b" },
		{ "macdef init\nmachine h login u password evil\n\nmachine h login u password good", "h", "u",
		  "good" },
		{ "machine h login u account acc password p", "h", "u", "p" },
		{ "machine h login u password p\nmacdef init\ncd /\n\n", "h", "u", "p" },
		{ "machine h login u password", "h", "u", NULL },
		{ "machine", "h", "u", NULL },
		{ "", "h", "u", NULL },
		{ "machine h login u password p1 machine h login u password p2", "h", "u", "p1" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *pw = NULL;
		int r = netrc_password(cases[i].text, strlen(cases[i].text), cases[i].host, cases[i].user,
				       &pw);

		if (!cases[i].want) {
			if (r != -ENOENT)
				fail_msg("case %zu: matched \"%s\"", i, pw ? pw : "");
			continue;
		}
		if (r != 0)
			fail_msg("case %zu: no match", i);
		assert_string_equal(pw, cases[i].want);
		free(pw);
	}
}

static void test_config_file(void **state)
{
	static const char text[] = "# accounts\n"
				   "[work]\n"
				   "url = imaps://alice@mail.example.org\n"
				   "  mountpoint = ~/Mail  \n"
				   "password_file=~/.pw\n"
				   "watch = Archive,Lists/dev\n"
				   "trash = Deleted, old\n"
				   "route_incoming = yes\n"
				   "plaintext = no\n"
				   "\n"
				   "[home]\r\n"
				   "url = imap://bob@h\r\n";
	static const char *const bad[] = {
		"[work]\nurl imaps://x@y\n",  "[work]\nfoo = 1\n",           "[work]\nplaintext = maybe\n",
		"[work\nurl = imaps://x@y\n", "[work]\npassword = secret\n",
	};
	struct config_account a;
	char err[256];

	(void)state;
	assert_int_equal(config_file_account(text, strlen(text), "work", "/home/a", &a, err, sizeof(err)), 0);
	assert_string_equal(a.url, "imaps://alice@mail.example.org");
	assert_string_equal(a.mountpoint, "/home/a/Mail");
	/* a comma in a value is escaped for fuse_opt, except watch's separators */
	assert_string_equal(a.options, "password_file=/home/a/.pw,watch=Archive,Lists/dev,"
				       "trash=Deleted\\, old,route_incoming");
	config_account_free(&a);
	assert_int_equal(config_file_account(text, strlen(text), "home", NULL, &a, err, sizeof(err)), 0);
	assert_string_equal(a.url, "imap://bob@h");
	assert_null(a.mountpoint);
	assert_string_equal(a.options, "");
	config_account_free(&a);
	assert_int_equal(config_file_account(text, strlen(text), "nope", NULL, &a, err, sizeof(err)),
			 -ENOENT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (config_file_account(bad[i], strlen(bad[i]), "work", NULL, &a, err, sizeof(err)) !=
		    -EINVAL)
			fail_msg("bad case %zu accepted", i);
		assert_true(strstr(err, "line 2") || strstr(err, "line 1"));
	}
}

/* A value the option takes on the command line, other than its default. */
static const char *sample_value(const struct config_option *o)
{
	if (o->choice[0])
		return o->choice[1];
	switch (o->kind) {
	case CONFIG_FLAG:
	case CONFIG_FUSE_FLAG:
		return "yes";
	case CONFIG_NUMBER:
		return "7";
	case CONFIG_PATH:
		return "/abs/path";
	case CONFIG_LIST:
		return "A,B";
	case CONFIG_TEXT:
		break;
	}
	return "2M"; /* a SIZE for memory_cache and cache_size, and text for the rest */
}

/* What option o set in cfg (or, for libfuse's own, left in args) is v. */
static void assert_option_set(const struct config_option *o, struct config *cfg, const struct fuse_args *args,
			      const char *v)
{
	const char *field = (const char *)cfg + o->offset;
	bool passed_on = false;

	switch (o->kind) {
	case CONFIG_TEXT:
	case CONFIG_PATH:
	case CONFIG_LIST:
		assert_string_equal(*(char *const *)field, v);
		break;
	case CONFIG_NUMBER:
		assert_int_equal(*(const unsigned *)field, strtoul(v, NULL, 10));
		break;
	case CONFIG_FLAG:
		assert_int_equal(*(const int *)field, 1);
		break;
	case CONFIG_FUSE_FLAG:
		for (int i = 0; i < args->argc; i++)
			passed_on |= strstr(args->argv[i], o->fuse_template) != NULL;
		assert_true(passed_on);
		break;
	}
}

/* The accounts file takes every -o option of the one table, and what it
 * makes of it means the same on the command line. */
static void test_every_option_in_accounts_file(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_options_count; i++) {
		const struct config_option *o = &config_options[i];
		int name_len = (int)config_option_name_len(o);
		const char *v = sample_value(o);
		char text[256], want[128], err[256];
		char *argv[] = { "imapfs", "-o", NULL, "imap://u@h", "/mnt", NULL };
		struct config_account a;
		struct fuse_args args;
		struct config cfg;
		int r;

		snprintf(text, sizeof(text), "[a]\nurl = imap://u@h\n%.*s = %s\n", name_len, o->fuse_template,
			 v);
		r = config_file_account(text, strlen(text), "a", "/home/u", &a, err, sizeof(err));
		if (r != 0)
			fail_msg("%.*s refused in the accounts file: %s", name_len, o->fuse_template, err);
		if (o->kind == CONFIG_FLAG || o->kind == CONFIG_FUSE_FLAG)
			snprintf(want, sizeof(want), "%.*s", name_len, o->fuse_template);
		else
			snprintf(want, sizeof(want), "%.*s=%s", name_len, o->fuse_template, v);
		assert_string_equal(a.options, want);

		argv[2] = a.options;
		r = config_parse_args(5, argv, &cfg, &args, err, sizeof(err));
		if (r != 0)
			fail_msg("-o %s refused on the command line: %s", a.options, err);
		assert_option_set(o, &cfg, &args, v);
		fuse_opt_free_args(&args);
		config_free(&cfg);
		config_account_free(&a);
	}
}

/* Paths in options become absolute before the daemon changes to /. */
static void test_relative_paths(void **state)
{
	char dir[] = "/tmp/imapfs-test-cwdXXXXXX", old[4096], want[4200];
	const char *argv[] = { "imapfs",      "-o",   "cache_dir=rel/cache,password_file=pw,ca_file=./ca",
			       "imaps://u@h", "/mnt", NULL };
	struct config cfg;
	char err[256];

	(void)state;
	assert_non_null(getcwd(old, sizeof(old)));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(parse(argv, &cfg, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/rel/cache", dir);
	assert_string_equal(cfg.cache_dir, want);
	snprintf(want, sizeof(want), "%s/pw", dir);
	assert_string_equal(cfg.password_file, want);
	snprintf(want, sizeof(want), "%s/./ca", dir);
	assert_string_equal(cfg.ca_file, want);
	config_free(&cfg);
	assert_int_equal(chdir(old), 0);
	rmdir(dir);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* The accounts file and a CA file are refused, ssh-like, when others can
 * write to them or they belong to someone else (root is fine for a CA). */
static void test_trusted_files(void **state)
{
	char dir[] = "/tmp/imapfs-test-cfgXXXXXX", sub[64], config[96], ca[96], opt[128];
	const char *by_name[] = { "imapfs", "work", "/mnt", NULL };
	const char *with_ca[] = { "imapfs", "-o", opt, "imaps://u@h", "/mnt", NULL };
	struct config cfg;
	char err[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/imapfs", dir);
	snprintf(config, sizeof(config), "%s/config", sub);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(opt, sizeof(opt), "ca_file=%s", ca);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(config, "[work]\nurl = imaps://u@h\npassword_command = echo x\n", 0664);
	setenv("XDG_CONFIG_HOME", dir, 1);
	assert_int_equal(parse(by_name, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad owner or permissions on the config file"));
	assert_non_null(strstr(err, "chmod go-w"));
	config_free(&cfg);
	assert_int_equal(chmod(config, 0644), 0);
	assert_int_equal(parse(by_name, &cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	if (geteuid() == 0) { /* someone else's file: only root can make one */
		assert_int_equal(chown(config, 65534, (gid_t)-1), 0);
		assert_int_equal(parse(by_name, &cfg, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "belongs to uid 65534"));
		config_free(&cfg);
	}
	unsetenv("XDG_CONFIG_HOME");

	write_file(ca, "not really a certificate\n", 0666);
	assert_int_equal(parse(with_ca, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad owner or permissions on the CA file"));
	config_free(&cfg);
	assert_int_equal(chmod(ca, 0644), 0);
	assert_int_equal(parse(with_ca, &cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	unlink(ca);
	unlink(config);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_compress_choices),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_password_sources),
		cmocka_unit_test(test_netrc),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_every_option_in_accounts_file),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_trusted_files),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
