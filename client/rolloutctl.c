/* rolloutctl: inspect and drive rolloutd from a shell. */
#include "rolloutctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "wire", rolloutctl_wire, "wire dump FILE|-   verify a message and print it as JSON" },
	{ "keygen", rolloutctl_keygen, "keygen             print a new CURVE key pair (Z85)" },
	{ "run", rolloutctl_run,
	  "run [--socket PATH | --config FILE] [--profile P] [--timeout S] -- CMD...   run a command in a "
	  "fresh sandbox" },
	{ "status", rolloutctl_status,
	  "status [--metrics HOST:PORT | --config FILE]   what rolloutd is doing" },
};

/* A YAML scalar as the configs write it: no quotes, no trailing comment or blanks. */
static void scalar(const char *v, char *out, size_t cap)
{
	while (*v == ' ' || *v == '\t')
		v++;
	char q = (*v == '"' || *v == '\'') ? *v++ : 0;
	size_t n = 0;
	for (; *v && *v != '\n' && n + 1 < cap; v++) {
		if (q ? *v == q : (*v == '#' && n && (out[n - 1] == ' ' || out[n - 1] == '\t')))
			break;
		out[n++] = *v;
	}
	while (!q && n && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
		n--;
	out[n] = 0;
}

int rolloutctl_config(const char *path, char *socket, size_t socket_cap, char *metrics, size_t metrics_cap)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[1024];
	bool in = false;
	size_t indent = 0;
	while (fgets(line, sizeof(line), f)) {
		size_t sp = strspn(line, " ");
		if (line[sp] == '#' || line[sp] == '\n' || !line[sp])
			continue;
		if (sp == 0) {
			in = strncmp(line, "rolloutd:", 9) == 0;
			indent = 0;
			continue;
		}
		if (!in)
			continue;
		if (!indent)
			indent = sp; /* the section's keys are at its first indentation */
		if (sp != indent)
			continue;
		if (!strncmp(line + sp, "socket:", 7))
			scalar(line + sp + 7, socket, socket_cap);
		else if (!strncmp(line + sp, "metrics:", 8))
			scalar(line + sp + 8, metrics, metrics_cap);
	}
	fclose(f);
	if (!strncmp(metrics, "0.0.0.0:", 8)) {
		char port[16];
		snprintf(port, sizeof(port), "%s", metrics + 8);
		snprintf(metrics, metrics_cap, "127.0.0.1:%s", port);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rolloutctl COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "rolloutctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
