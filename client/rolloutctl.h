/* rolloutctl: the command-line tool. Each subcommand lives in its own file and is
 * listed in the table in rolloutctl.c. */
#ifndef ROLLOUT_ROLLOUTCTL_H
#define ROLLOUT_ROLLOUTCTL_H

/* argv[0] is the subcommand name; returns the process exit code. */
int rolloutctl_wire(int argc, char **argv);
int rolloutctl_keygen(int argc, char **argv);
int rolloutctl_run(int argc, char **argv);
int rolloutctl_status(int argc, char **argv);

#endif
