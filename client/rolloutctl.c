/* rolloutctl: inspect and drive rolloutd from a shell. */
#include "rolloutctl.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "wire", rolloutctl_wire, "wire dump FILE|-   verify a message and print it as JSON" },
	{ "keygen", rolloutctl_keygen, "keygen             print a new CURVE key pair (Z85)" },
	{ "run", rolloutctl_run, "run [--env P] [--timeout S] -- CMD...   run a command in a fresh sandbox" },
	{ "status", rolloutctl_status, "status [--metrics HOST:PORT]   what rolloutd is doing" },
};

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
