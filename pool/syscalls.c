/* The sandbox's seccomp filter (see syscalls.h): other ABIs and a list of syscalls kill the
 * process, a few fail with an errno so programs fall back, namespace-creating clone flags,
 * netlink/packet sockets and TIOCSTI fail with EPERM. */
#include "syscalls.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* Syscalls no sandbox needs and an attacker would love: the process is killed. */
static const char *const kill_list[] = {
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"perf_event_open",
	"bpf",
	"userfaultfd",
	"keyctl",
	"add_key",
	"request_key",
	"mount",
	"umount2",
	"pivot_root",
	"chroot",
	"setns",
	"unshare",
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"reboot",
	"swapon",
	"swapoff",
	"acct",
	"settimeofday",
	"clock_settime",
	"clock_adjtime",
	"adjtimex",
	"iopl",
	"ioperm",
	"syslog",
	"quotactl",
	"vhangup",
	"open_by_handle_at",
	"name_to_handle_at",
	"lookup_dcookie",
	"fanotify_init",
	"mount_setattr",
	"fsopen",
	"fsmount",
	"fsconfig",
	"fspick",
	"move_mount",
	"open_tree",
	"pidfd_getfd",
	"kcmp",
	"personality",
	"uselib",
	"nfsservctl",
	"_sysctl",
	"sysfs",
	"ustat",
	"vm86",
	"vm86old",
	"create_module",
	"get_kernel_syms",
	"query_module",
	"lsm_set_self_attr",
};
/* Refused with an errno so that programs probing for them fall back. */
static const char *const enosys_list[] = { "io_uring_setup", "io_uring_enter", "io_uring_register",
					   "clone3" };

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add(ctx, action, nr, 0);
}

/* Builds the filter once with libseccomp and exports the BPF program, so a sandbox only
 * has to hand it to the kernel. */
int sbx_seccomp_build(struct sock_fprog **out)
{
	int rc = -ENOMEM;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	/* Only the native ABI: 32-bit and x32 entry points are a classic filter bypass. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)))
		goto out;
	for (size_t i = 0; i < sizeof(kill_list) / sizeof(kill_list[0]); i++)
		if ((rc = add_rule(ctx, SCMP_ACT_KILL_PROCESS, kill_list[i])))
			goto out;
	for (size_t i = 0; i < sizeof(enosys_list) / sizeof(enosys_list[0]); i++)
		if ((rc = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), enosys_list[i])))
			goto out;
	/* New namespaces through clone flags. */
	static const uint64_t ns_flags[] = { CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
					     CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME };
	for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
					   SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))))
			goto out;
	/* No netlink or packet sockets: nothing to learn about or configure in the netns. */
	static const int bad_af[] = { AF_NETLINK, AF_PACKET, AF_KEY, AF_VSOCK };
	for (size_t i = 0; i < sizeof(bad_af) / sizeof(bad_af[0]); i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
					   SCMP_A0(SCMP_CMP_EQ, (uint64_t)bad_af[i]))))
			goto out;
	/* TIOCSTI pushes input into a terminal another process reads. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI))))
		goto out;

	int mfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	if (mfd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = seccomp_export_bpf(ctx, mfd)) == 0) {
		off_t len = lseek(mfd, 0, SEEK_END);
		struct sock_fprog *prog = malloc(sizeof(*prog) + (size_t)len);
		if (!prog || len <= 0 || len % sizeof(struct sock_filter) ||
		    pread(mfd, prog + 1, (size_t)len, 0) != len) {
			free(prog);
			rc = -EIO;
		} else {
			prog->len = (unsigned short)(len / sizeof(struct sock_filter));
			prog->filter = (struct sock_filter *)(prog + 1);
			*out = prog;
		}
	}
	close(mfd);
out:
	seccomp_release(ctx);
	return rc;
}
