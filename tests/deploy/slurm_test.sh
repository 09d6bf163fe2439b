#!/usr/bin/env bash
# deploy/slurm/rollout.sbatch on a real one-machine Slurm: munged, slurmctld and slurmd from
# Debian's packages with their own config, state, spool and key under the build tree, all in
# a network namespace of their own (only its loopback exists). The heterogeneous job runs
# rolloutd + a trainer (rollout_demo) on the "gpu" component and rollout-pool on the "cpu"
# one; the test waits for the trainer's episodes to pass, cancels the job with scancel and
# checks that nothing is left: no job, no daemon, no sandbox, no socket, no pool cgroup.
# Usage: slurm_test.sh BUILD_DIR SOURCE_DIR. Exit 77 (skip) where Slurm cannot start.
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
skip() { echo "slurm test skipped: $*"; keep=1; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (slurmd, the pool's sandboxes)"
for t in munged mungekey slurmctld slurmd sbatch scancel squeue sinfo scontrol srun ip nsenter; do
  command -v "$t" >/dev/null || skip "$t not installed (Debian: slurm-wlm munge)"
done

[ -x "$build/examples/rollout_demo" ] || skip "examples/rollout_demo is not built (the job's trainer)"
me=$$
dir=$build/slurm-test.$me
ns=rslurm$me
cgroup=rollout-slurm$me
export SLURM_CONF=$dir/etc/slurm.conf
mkdir -p "$dir"/{etc,state,spool,log,run,job,munge}
chmod 755 "$dir/munge"
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
in_ns() { nsenter --net=/var/run/netns/$ns-ctl -- "$@"; }
on() { local h=$1; shift; nsenter --net=/var/run/netns/$ns-$h -- "$@"; }
pids=()
cleanup() {
  set +e
  [ -n "${job:-}" ] && scancel "$job" 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  # Anything a job step left (a failed run): by the run directory in its command line.
  pkill -KILL -f "$dir/" 2>/dev/null
  for h in ctl gpu cpu sw; do ip netns del "$ns-$h" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/$cgroup /sys/fs/cgroup/$cgroup; do
    [ -d "$d" ] && { rmdir "$d"/*/ 2>/dev/null; rmdir "$d" 2>/dev/null; }
  done
  if [ $fails -eq 0 ] && [ -z "${keep:-}" ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# Three hosts on a bridge: the controller, a "gpu" node and a "cpu" node, each its own network
# namespace with an address in 10.79.0.0/24 (the bridge lives in a fourth, so the machine's
# own namespace gains nothing). One slurmd per node namespace, each with its own name.
ip netns add "$ns-sw" || skip "cannot create a network namespace"
ip -n "$ns-sw" link add br0 type bridge && ip -n "$ns-sw" link set br0 up || skip "no bridge support"
i=0
for h in ctl gpu cpu; do
  i=$((i + 1))
  ip netns add "$ns-$h"
  ip -n "$ns-$h" link set lo up
  ip -n "$ns-sw" link add p$i type veth peer name eth0 netns "$ns-$h" || skip "cannot create a veth pair"
  ip -n "$ns-sw" link set p$i master br0 up
  ip -n "$ns-$h" addr add 10.79.0.$i/24 dev eth0
  ip -n "$ns-$h" link set eth0 up
done
ctl_port=$((20000 + me % 20000))

# munge: its own key, socket, pid, seed and log.
mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null ||
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$dir/munge/munge.key"
sock=$dir/munge/munge.socket
in_ns munged --foreground --force --socket="$sock" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
  --log-file="$dir/munge/munged.log" > "$dir/munge/munged.out" 2>&1 & pids+=($!)
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || skip "munged did not start: $(tail -3 "$dir/munge/munged.log" 2>/dev/null)"

cpus=$(nproc)
cat > "$SLURM_CONF" <<EOF
ClusterName=rollouttest$me
SlurmctldHost=$(hostname -s)(10.79.0.1)
MailProg=/bin/true
SlurmctldPort=$ctl_port
SlurmdPort=$((ctl_port + 1))
SrunPortRange=$((ctl_port + 2))-$((ctl_port + 60))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=100000
MpiDefault=none
ReturnToService=2
KillWait=10
InactiveLimit=0
SlurmdTimeout=60
NodeName=gpu1 NodeAddr=10.79.0.2 CPUs=$cpus State=UNKNOWN
NodeName=cpu1 NodeAddr=10.79.0.3 CPUs=$cpus State=UNKNOWN
PartitionName=gpu Nodes=gpu1 Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=cpu1 MaxTime=INFINITE State=UP
EOF
in_ns slurmctld -D -i -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 & pids+=($!)
mkdir -p "$dir/spool/gpu1" "$dir/spool/cpu1"
on gpu slurmd -D -N gpu1 -f "$SLURM_CONF" > "$dir/log/slurmd-gpu1.out" 2>&1 & pids+=($!)
on cpu slurmd -D -N cpu1 -f "$SLURM_CONF" > "$dir/log/slurmd-cpu1.out" 2>&1 & pids+=($!)
up=0
for _ in $(seq 1 100); do
  kill -0 "${pids[1]}" 2>/dev/null || { state="slurmctld exited"; break; }
  state=$(in_ns timeout 5 sinfo -h -o '%n=%T' 2>/dev/null | sort | tr '\n' ' ')
  [ "$(echo "$state" | grep -o '=idle' | wc -l)" -eq 2 ] && { up=1; break; }
  sleep 0.2
done
[ $up -eq 1 ] || skip "slurmd did not register (state '${state:-}'): $(tail -3 "$dir"/log/*.log 2>/dev/null)"
ok "one-machine Slurm up: $state"

# The job: daemons from the build tree, a trainer that runs checked episodes, writes its
# verdict and stays until cancelled.
export PATH=$build/coordinator:$build/pool:$build/examples:$PATH
export ROLLOUT_RUN_DIR=$dir/job/run ROLLOUT_SOCKET_DIR=$dir/run ROLLOUT_WARM=8 ROLLOUT_MAX=64
export ROLLOUT_POOL_PORT=$((ctl_port + 61)) ROLLOUT_POOL_METRICS_PORT=$((ctl_port + 62))
export ROLLOUTD_METRICS_PORT=$((ctl_port + 63)) ROLLOUT_CGROUP=$cgroup
verdict=$dir/job/trainer.verdict
job=$(in_ns sbatch --parsable --chdir="$dir/job" --output="$dir/job/job.out" \
  "$src/deploy/slurm/rollout.sbatch" -- bash -c \
  "rollout_demo --episodes 16 --steps 8 --quiet > $dir/job/trainer.out 2>&1; echo \$? > $verdict; exec -a rollout-slurm-idle-$me sleep 600")
job=${job%%;*}
[ -n "$job" ] && ok "sbatch: heterogeneous job $job submitted" || { bad "sbatch refused the job"; exit 1; }
end=$((SECONDS + 60))
while [ ! -s "$verdict" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
if [ -s "$verdict" ] && [ "$(cat "$verdict")" = 0 ]; then
  ok "trainer on the gpu component: $(grep -m1 episodes "$dir/job/trainer.out" | sed 's/^ *//')"
else
  bad "trainer did not pass within 60 s (verdict '$(cat "$verdict" 2>/dev/null)')"
  in_ns squeue -a; cat "$dir/job/job.out" "$dir/job/trainer.out" "$dir/job/run/"*.log 2>/dev/null | tail -40
fi
comps=$(in_ns squeue -h -j "$job" -o '%i %P %T' 2>/dev/null)
echo "$comps" | sed 's/^/     /'
[ "$(echo "$comps" | grep -c RUNNING)" -eq 2 ] && ok "both components (gpu, cpu) running" || bad "components: $comps"
pgrep -f "rollout-pool --config $dir/job/run/" >/dev/null && pgrep -f "rolloutd --config $dir/job/run/" >/dev/null &&
  ok "rolloutd and rollout-pool run as job steps" || bad "daemons not found"
socket=$dir/run/rolloutd-$job.sock
[ -S "$socket" ] && ok "attach socket $socket served" || bad "no attach socket at $socket"

# scancel: every step gets SIGTERM; the daemons drain and exit well before KillWait.
t0=$SECONDS
in_ns scancel "$job"
gone=0
for _ in $(seq 1 60); do
  [ -z "$(in_ns squeue -h -j "$job" 2>/dev/null)" ] && { gone=1; break; }
  sleep 0.5
done
[ $gone -eq 1 ] && ok "scancel: the job is gone after $((SECONDS - t0)) s" || bad "job still listed 30 s after scancel"
sleep 0.5
left=$(pgrep -af "(rollout-pool|rolloutd) --config $dir/|rollout_demo --episodes 16|rollout-slurm-idle-$me")
[ -z "$left" ] && ok "no daemon, trainer or sandbox process left" || bad "left behind: $left"
[ ! -e "$socket" ] && ok "attach socket removed" || bad "attach socket still there"
cg=$(ls -d /sys/fs/cgroup/*/$cgroup/sbx-* /sys/fs/cgroup/$cgroup/sbx-* 2>/dev/null)
[ -z "$cg" ] && ok "no sandbox cgroup left" || bad "sandbox cgroups left: $cg"
grep -q 'level=info prog=rolloutd msg="rolloutd stopped"' "$dir/job/run/rolloutd.log" &&
  ok "rolloutd stopped cleanly on SIGTERM" || bad "rolloutd did not log a clean stop: $(tail -3 "$dir/job/run/rolloutd.log")"
grep -q 'msg="pool stopped"' "$dir/job/run/pools.log" &&
  ok "rollout-pool stopped cleanly on SIGTERM" || bad "pool did not log a clean stop: $(tail -3 "$dir/job/run/pools.log")"
echo "$fails failed"
[ $fails -eq 0 ]
