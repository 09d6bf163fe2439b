/* The baseline of `rollout-bench env`: what a user without rollout-pool pays to run one
 * command in a container image, with the stock tools (umoci to unpack, runc to run).
 * Benchmark code, not a library: it prints its errors on stderr. */
#ifndef ROLLOUT_BENCH_ENV_RUNC_H
#define ROLLOUT_BENCH_ENV_RUNC_H

#include <stdint.h>

/* Unpacks the OCI image `layout:tag` with `umoci unpack` into a bundle under workdir (once),
 * sets the bundle's config.json process to argv (e.g. {"/bin/true", NULL}), terminal false,
 * and runs `runc run --bundle B <unique id>` `runs` times, timing each from fork to exit.
 * Fills samples_us (runs entries, each >= 1). 0, or -1 with a message on stderr (a tool
 * missing, the unpack failing, or a run whose exit status is not 0: argv's or runc's own).
 *
 * workdir belongs to the caller: it is created (one level, 0700) when missing, and the bundle
 * stays in it after the call, as workdir/runc-<hash of layout and tag>, so that later calls on
 * the same image skip the unpack; a bundle older than the layout's index.json is unpacked
 * again. The caller removes the bundles with runc_baseline_clean() (or removes workdir) when
 * done. Calls sharing a workdir must not run concurrently (each rewrites config.json).
 * Each run's container is deleted (`runc delete -f`) whatever its outcome, outside the timed
 * part. The command's stdin and stdout are /dev/null (rollout-bench keeps stdout for its JSON
 * line); its stderr is ours. Needs root, or runs rootless (umoci unpack --rootless). */
int runc_baseline(const char *layout, const char *tag, const char *workdir, const char *const *argv,
		  unsigned runs, uint64_t *samples_us);

/* Removes the bundles runc_baseline() left in workdir (not workdir itself). 0 or -1 with a
 * message on stderr. */
int runc_baseline_clean(const char *workdir);

#endif
