#!/bin/sh
# Entry point of the rolloutd image: rollout-entrypoint DAEMON --config FILE [ARGS...]
#
# - With ROLLOUT_IDENTITY set (the pod's name, from the downward API), the config is copied
#   to /run/rollout/ with its `identity:` replaced, so each pool reports its own name.
# - For rollout-pool on cgroup v2: a container sees its own cgroup as the root of a
#   read-only cgroup2 mount. The pool needs to create a cgroup per sandbox below it, so the
#   mount is made writable (CAP_SYS_ADMIN, in the container's own cgroup namespace: only the
#   container's subtree is reachable), this process moves to a leaf ("init"), since a v2
#   cgroup with processes cannot delegate controllers, and memory, pids and cpu are enabled
#   for the subtree. Sandboxes then count against the pod's own limits.
set -eu
daemon=$1
shift
if [ -n "${ROLLOUT_IDENTITY:-}" ]; then
  prev=""
  for a in "$@"; do
    if [ "$prev" = "--config" ]; then cfg=$a; fi
    prev=$a
  done
  if [ -n "${cfg:-}" ]; then
    mkdir -p /run/rollout
    sed "s/^\(  identity:\).*/\1 $ROLLOUT_IDENTITY/" "$cfg" > /run/rollout/config.yaml
    count=$#
    prev=""
    for a in "$@"; do # the list is expanded once: appending below does not extend it
      orig=$a
      if [ "$prev" = "--config" ]; then a=/run/rollout/config.yaml; fi
      set -- "$@" "$a"
      prev=$orig
    done
    shift "$count"
  fi
fi
if [ "$(basename "$daemon")" = rollout-pool ] && [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
  if ! [ -w /sys/fs/cgroup/cgroup.procs ] || ! touch /sys/fs/cgroup/cgroup.procs 2>/dev/null; then
    mount -o remount,rw /sys/fs/cgroup 2>/dev/null || mount -t cgroup2 -o rw,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
  fi
  mkdir -p /sys/fs/cgroup/init
  # Every process of the container (only this shell so far) goes to the leaf.
  while read -r p; do echo "$p" > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true; done < /sys/fs/cgroup/cgroup.procs
  echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
fi
exec "$daemon" "$@"
