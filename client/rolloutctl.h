/* rolloutctl: the command-line tool. Each subcommand lives in its own file and is
 * listed in the table in rolloutctl.c. */
#ifndef ROLLOUT_ROLLOUTCTL_H
#define ROLLOUT_ROLLOUTCTL_H

#include <stddef.h>

/* argv[0] is the subcommand name; returns the process exit code. */
int rolloutctl_wire(int argc, char **argv);
int rolloutctl_keygen(int argc, char **argv);
int rolloutctl_run(int argc, char **argv);
int rolloutctl_status(int argc, char **argv);

/* rolloutd.socket and rolloutd.metrics of a daemons' config file (the rolloutd: section of
 * configs/local.yaml and the like), each into its buffer when the file sets it (a metrics
 * address on 0.0.0.0 becomes 127.0.0.1). 0, or -errno when the file cannot be read. */
int rolloutctl_config(const char *path, char *socket, size_t socket_cap, char *metrics, size_t metrics_cap);

#endif
