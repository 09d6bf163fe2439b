/* The init process inside a sandbox: pid 1 of its namespace, already confined (uid,
 * capabilities, seccomp). It reads Requests from the pool, runs them and writes back one
 * Completion each. An exec runs in its own session with pipes for the three streams; at
 * the wall-clock timeout init kills every other process of the namespace (kill(-1) from
 * pid 1), so nothing a command started survives it. File actions are in initfile.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init_int.h"

#define MAX_ARGS     4096
#define MAX_ENVS     1024
#define GRACE_MS     50    /* after the command exits, how long to wait for its pipes to close */
#define CHUNK_MAX    65536 /* streamed output: bytes per stream in one partial record */
#define CHUNK_GAP_US 1000  /* streamed output: a record per stream per millisecond at most */
#define CONTROL_MAX  4096  /* largest frame the pool sends while a command runs (Signal) */

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Grows in->out to hold a frame of up to need bytes; 0 or -ENOMEM. */
static int out_room(struct init *in, size_t need)
{
	if (need + 8 <= in->out_cap)
		return 0;
	uint8_t *p = init_grow(in->out, in->out_cap, need + 8);
	if (!p)
		return -ENOMEM;
	in->out = p;
	in->out_cap = need + 8;
	return 0;
}

/* Writes the Message finished at in->out + 8 (n bytes) as one frame. */
static int send_frame(struct init *in, ssize_t n)
{
	if (n < 0)
		return (int)n;
	/* fb_finish put the buffer at in->out + 8; the frame header goes right before it. */
	uint32_t len = (uint32_t)n;
	memcpy(in->out + 4, &len, 4);
	return write_full(in->fd, in->out + 4, 4 + (size_t)n);
}

static int send_completion(struct init *in, uint64_t dispatch, uint64_t request_id, const struct outcome *o)
{
	size_t need = 4096 + o->so_len + o->se_len + o->data_len + (o->message ? strlen(o->message) : 0);
	if (out_room(in, need))
		return -ENOMEM;
	struct fb_builder b;
	fb_builder_init(&b, in->out + 8, in->out_cap - 8);
	fb_ref_t result = 0, msg = 0;
	if (o->kind == rw_Result_ExecResult) {
		fb_ref_t so = fb_create_vec_u8(&b, o->so, o->so_len);
		fb_ref_t se = fb_create_vec_u8(&b, o->se, o->se_len);
		rw_ExecResult_start(&b);
		rw_ExecResult_add_exit_code(&b, o->exit_code);
		rw_ExecResult_add_signal(&b, o->signal);
		rw_ExecResult_add_stdout(&b, so);
		rw_ExecResult_add_stderr(&b, se);
		rw_ExecResult_add_stdout_truncated(&b, o->so_trunc);
		rw_ExecResult_add_stderr_truncated(&b, o->se_trunc);
		rw_ExecResult_add_wall_us(&b, o->wall_us);
		rw_ExecResult_add_cpu_us(&b, o->cpu_us);
		rw_ExecResult_add_peak_memory_kib(&b, o->peak_kib);
		result = rw_ExecResult_end(&b);
	} else if (o->kind == rw_Result_FileData) {
		fb_ref_t d = fb_create_vec_u8(&b, o->data, o->data_len);
		rw_FileData_start(&b);
		rw_FileData_add_data(&b, d);
		rw_FileData_add_truncated(&b, o->data_trunc);
		result = rw_FileData_end(&b);
	}
	if (o->message)
		msg = fb_create_string(&b, o->message);
	rw_Completion_start(&b);
	rw_Completion_add_request_id(&b, request_id);
	rw_Completion_add_status(&b, (uint16_t)o->status);
	rw_Completion_add_infra_failed(&b, o->infra);
	rw_Completion_add_message(&b, msg);
	if (result)
		rw_Completion_add_result(&b, (uint8_t)o->kind, result);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, dispatch);
	rw_Message_add_body(&b, rw_Body_Completion, c);
	return send_frame(in, rw_Message_finish(&b, rw_Message_end(&b)));
}

struct stream {
	int fd;
	uint8_t *buf;
	size_t cap, len;
	size_t sent; /* streamed: bytes already sent in partial records */
	bool truncated;
};

/* One partial record: the bytes of both streams not streamed yet (up to CHUNK_MAX each). */
static int send_chunk(struct init *in, struct stream *so, struct stream *se)
{
	size_t no = so->len - so->sent, ne = se->len - se->sent;
	if (no > CHUNK_MAX)
		no = CHUNK_MAX;
	if (ne > CHUNK_MAX)
		ne = CHUNK_MAX;
	if (out_room(in, 1024 + no + ne))
		return -ENOMEM;
	struct fb_builder b;
	fb_builder_init(&b, in->out + 8, in->out_cap - 8);
	fb_ref_t vo = fb_create_vec_u8(&b, so->buf + so->sent, no);
	fb_ref_t ve = fb_create_vec_u8(&b, se->buf + se->sent, ne);
	rw_ExecResult_start(&b);
	rw_ExecResult_add_stdout(&b, vo);
	rw_ExecResult_add_stderr(&b, ve);
	rw_ExecResult_add_stdout_offset(&b, so->sent);
	rw_ExecResult_add_stderr_offset(&b, se->sent);
	fb_ref_t r = rw_ExecResult_end(&b);
	rw_Completion_start(&b);
	rw_Completion_add_request_id(&b, in->request_id);
	rw_Completion_add_status(&b, rw_Status_OK);
	rw_Completion_add_partial(&b, true);
	rw_Completion_add_result(&b, rw_Result_ExecResult, r);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, in->dispatch);
	rw_Message_add_body(&b, rw_Body_Completion, c);
	int rc = send_frame(in, rw_Message_finish(&b, rw_Message_end(&b)));
	if (rc == 0) {
		so->sent += no;
		se->sent += ne;
	}
	return rc;
}

/* The signal a control frame from the pool asks for (a Signal request for the command
 * running now), or 0. */
static int control_signal(const struct init *in, const uint8_t *msg, size_t len)
{
	if (rw_Message_verify(msg, len) != 0)
		return 0;
	const rw_Request_t *r = rw_Message_body_as_Request(rw_Message_root(msg));
	const rw_Signal_t *s = r ? rw_Request_action_as_Signal(r) : NULL;
	if (!s)
		return 0;
	uint64_t target = rw_Signal_target_request_id(s);
	int sig = rw_Signal_signal(s);
	if ((target && target != in->request_id) || sig <= 0 || sig >= NSIG)
		return 0;
	return sig;
}

static void drain(struct stream *s)
{
	uint8_t sink[16384];
	for (;;) {
		ssize_t n;
		if (s->len < s->cap)
			n = read(s->fd, s->buf + s->len, s->cap - s->len);
		else
			n = read(s->fd, sink, sizeof(sink));
		if (n > 0) {
			if (s->len < s->cap)
				s->len += (size_t)n;
			else
				s->truncated = true;
			continue;
		}
		if (n == 0) {
			close(s->fd);
			s->fd = -1;
		}
		return; /* EAGAIN or error: come back later */
	}
}

static void reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* The command's process: the old way, fork then exec, which also reports why an exec
 * failed on the command's stderr with exit code 127 (not found) or 126. */
static pid_t fork_command(bool shell, char **argv, char **envp, int in, int out, int err)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	setsid();
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGXFSZ, SIG_DFL);
	if (shell)
		execve("/bin/sh", argv, envp);
	else {
		/* execvpe searches the caller's PATH: make the command's environment ours. */
		environ = envp;
		execvpe(argv[0], argv, envp);
	}
	int e = errno;
	static const char msg[] = "rollout-pool: exec failed: ";
	const char *text = strerror(e);
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	w = write(2, text, strlen(text));
	w = write(2, "\n", 1);
	(void)w;
	_exit(e == ENOENT ? 127 : 126);
}

/* Starts the command in a session of its own with the three pipe ends as its streams.
 * posix_spawn (vfork-like: init's page tables are not copied, nor its pages made
 * copy-on-write) is the fast path, about a millisecond cheaper per command and more when
 * init holds a big transfer's buffers; when it fails, fork_command runs the command the
 * old way, so a failing exec still explains itself the same way. */
static pid_t spawn_command(bool shell, char **argv, char **envp, int in, int out, int err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t dfl;
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE); /* init ignores them; the command gets the defaults */
	sigaddset(&dfl, SIGXFSZ);
	pid_t pid = -1;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc == 0 && (rc = posix_spawnattr_init(&at)) != 0)
		posix_spawn_file_actions_destroy(&fa);
	if (rc == 0) {
		if (!posix_spawn_file_actions_adddup2(&fa, in, 0) &&
		    !posix_spawn_file_actions_adddup2(&fa, out, 1) &&
		    !posix_spawn_file_actions_adddup2(&fa, err, 2) &&
		    !posix_spawnattr_setsigdefault(&at, &dfl) &&
		    !posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF)) {
			if (shell) {
				rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
			} else {
				/* posix_spawnp searches PATH of init's environment: the command's. */
				char **saved = environ;
				environ = envp;
				rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
				environ = saved;
			}
		} else {
			rc = -1;
		}
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
	}
	return rc == 0 ? pid : fork_command(shell, argv, envp, in, out, err);
}

static void do_exec(struct init *in, const rw_Exec_t *ex, struct outcome *o, struct stream *so,
		    struct stream *se)
{
	const struct sbx_profile *p = in->p;
	static char *argv[MAX_ARGS + 1];
	static char *envp[MAX_ENVS + SBX_MAX_ENV + 1];
	static char envbuf[1 << 16];
	fb_strvec_t av = rw_Exec_argv(ex);
	const char *shell = rw_Exec_shell(ex);
	size_t argc = fb_strvec_len(av);
	if ((argc == 0) == (shell == NULL) || argc > MAX_ARGS) {
		o->status = rw_Status_BAD_REQUEST;
		o->message = "exec needs exactly one of argv and shell";
		return;
	}
	if (shell) {
		argv[0] = "sh";
		argv[1] = "-c";
		argv[2] = (char *)shell;
		argv[3] = NULL;
	} else {
		for (size_t i = 0; i < argc; i++)
			argv[i] = (char *)fb_strvec_at(av, i);
		argv[argc] = NULL;
	}
	size_t ne = 0, used = 0;
	for (size_t i = 0; i < SBX_MAX_ENV && p->env[i]; i++)
		envp[ne++] = (char *)p->env[i];
	fb_tabvec_t ev = rw_Exec_env(ex);
	size_t nreq = fb_tabvec_len(ev);
	for (size_t i = 0; i < nreq && ne < MAX_ENVS + SBX_MAX_ENV; i++) {
		const rw_EnvVar_t *e = rw_Exec_env_at(ev, i);
		const char *k = rw_EnvVar_name(e), *v = rw_EnvVar_value(e);
		if (!k || !*k || strchr(k, '='))
			continue;
		int n = snprintf(envbuf + used, sizeof(envbuf) - used, "%s=%s", k, v ? v : "");
		if (n < 0 || (size_t)n >= sizeof(envbuf) - used)
			break;
		envp[ne++] = envbuf + used;
		used += (size_t)n + 1;
	}
	envp[ne] = NULL;

	const char *cwd = rw_Exec_cwd(ex);
	if (cwd && *cwd) {
		/* The working directory persists: later steps without cwd run where this one did. */
		int base;
		const char *rel = init_resolve(in, cwd, &base);
		int dfd = rel ? init_open_beneath(base, rel, O_PATH | O_DIRECTORY, 0)
			      : (cwd[0] == '/' ? -EXDEV : -ENOENT);
		if (!rel && strcmp(cwd, "/tmp") == 0)
			dfd = init_open_beneath(in->workfd, ".", O_PATH | O_DIRECTORY, 0);
		if (dfd < 0 || fchdir(dfd) < 0) {
			if (dfd >= 0)
				close(dfd);
			init_file_error(o, dfd < 0 ? dfd : -errno);
			o->message = "cannot enter cwd";
			return;
		}
		close(dfd);
	}
	uint32_t timeout = rw_Exec_timeout_ms(ex) ? rw_Exec_timeout_ms(ex) : p->timeout_ms;
	if (timeout > p->max_timeout_ms)
		timeout = p->max_timeout_ms;
	uint32_t cap = rw_Exec_output_cap(ex) ? rw_Exec_output_cap(ex) : p->output_cap;
	if (cap > p->max_output_cap)
		cap = p->max_output_cap;
	so->cap = se->cap = cap;
	so->len = se->len = so->sent = se->sent = 0;
	so->truncated = se->truncated = false;
	bool stream = rw_Exec_stream(ex);
	uint64_t chunk_at = 0; /* streamed: the next partial record goes no earlier */
	const uint8_t *stdin_data = NULL;
	size_t stdin_len = rw_Exec_stdin(ex, &stdin_data);

	int pin[2], pout[2], perr[2];
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		o->status = rw_Status_INTERNAL;
		o->infra = true;
		o->message = "pipe failed (descriptor limit?)";
		return;
	}
	struct rusage before, after, ru;
	getrusage(RUSAGE_CHILDREN, &before);
	uint64_t t0 = now_us();
	pid_t pid = spawn_command(shell != NULL, argv, envp, pin[0], pout[1], perr[1]);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (pid < 0) {
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		o->status = rw_Status_INTERNAL;
		o->message = "fork failed (pids limit?)";
		return;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	fcntl(pout[0], F_SETFL, O_NONBLOCK);
	fcntl(perr[0], F_SETFL, O_NONBLOCK);
	so->fd = pout[0];
	se->fd = perr[0];
	int infd = pin[1];
	size_t in_done = 0;
	if (stdin_len == 0) {
		close(infd);
		infd = -1;
	}
	uint64_t deadline = t0 + (uint64_t)timeout * 1000;
	bool exited = false, timed_out = false;
	int wstatus = 0;
	uint64_t exit_at = 0;
	while (so->fd >= 0 || se->fd >= 0 || !exited) {
		uint64_t now = now_us();
		uint64_t limit =
		    exited ? (exit_at + GRACE_MS * 1000 < deadline ? exit_at + GRACE_MS * 1000 : deadline)
			   : deadline;
		if (now >= limit) {
			if (!exited)
				timed_out = true;
			break;
		}
		bool unsent = stream && (so->len > so->sent || se->len > se->sent);
		if (unsent && now >= chunk_at) {
			if (send_chunk(in, so, se)) {
				kill(-1, SIGKILL);
				_exit(0); /* the pool stopped reading: nothing may outlive it */
			}
			chunk_at = now + CHUNK_GAP_US;
			continue;
		}
		uint64_t wake = unsent && chunk_at < limit ? chunk_at : limit;
		struct pollfd pf[5] = { { .fd = so->fd, .events = POLLIN },
					{ .fd = se->fd, .events = POLLIN },
					{ .fd = infd, .events = POLLOUT },
					{ .fd = exited ? -1 : pidfd, .events = POLLIN },
					{ .fd = in->fd, .events = POLLIN | POLLRDHUP } };
		int n = poll(pf, 5, (int)((wake - now + 999) / 1000));
		if (pf[4].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			/* The pool is gone: nothing may outlive it. */
			kill(-1, SIGKILL);
			_exit(0);
		}
		if (pf[4].revents & POLLIN) {
			/* A control frame: the pool sends only Signal requests while a command runs. */
			uint64_t ctl[CONTROL_MAX / 8];
			uint32_t clen;
			if (read_full(in->fd, &clen, 4) || clen == 0 || clen > CONTROL_MAX ||
			    read_full(in->fd, ctl, clen)) {
				kill(-1, SIGKILL);
				_exit(0);
			}
			int sig = control_signal(in, (const uint8_t *)ctl, clen);
			if (sig && !exited)
				kill(-pid, sig); /* the command's process group (it leads a session) */
		}
		if (n < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			drain(so);
		if (pf[1].revents)
			drain(se);
		if (infd >= 0 && pf[2].revents) {
			ssize_t w = write(infd, stdin_data + in_done, stdin_len - in_done);
			if (w > 0)
				in_done += (size_t)w;
			if (w < 0 && errno != EAGAIN) {
				close(infd);
				infd = -1;
			} else if (in_done == stdin_len) {
				close(infd);
				infd = -1;
			}
		}
		if (!exited && pf[3].revents) {
			if (wait4(pid, &wstatus, 0, &ru) == pid) {
				exited = true;
				exit_at = now_us();
			}
		}
	}
	if (timed_out) {
		/* pid 1 of the namespace: this reaches every process a command started,
		 * whatever session or process group it moved to. */
		kill(-1, SIGKILL);
		if (wait4(pid, &wstatus, 0, &ru) == pid)
			exited = true;
		/* Every other process is dying too: reap them all now, or they stay zombies
		 * (counted in pids.current) until the next exec. Nothing can fork any more. */
		for (;;) {
			if (waitpid(-1, NULL, 0) > 0)
				continue;
			if (errno != EINTR)
				break;
		}
	}
	o->wall_us = now_us() - t0;
	if (so->fd >= 0) {
		drain(so);
		close(so->fd);
		so->fd = -1;
	}
	if (se->fd >= 0) {
		drain(se);
		close(se->fd);
		se->fd = -1;
	}
	if (infd >= 0)
		close(infd);
	if (pidfd >= 0)
		close(pidfd);
	reap_all();
	getrusage(RUSAGE_CHILDREN, &after);
	o->cpu_us = (uint64_t)((after.ru_utime.tv_sec - before.ru_utime.tv_sec + after.ru_stime.tv_sec -
				before.ru_stime.tv_sec) *
				   1000000 +
			       (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
			       (after.ru_stime.tv_usec - before.ru_stime.tv_usec));
	o->peak_kib = exited ? (uint64_t)ru.ru_maxrss : 0;
	o->kind = rw_Result_ExecResult;
	o->so = so->buf;
	o->so_len = so->len;
	o->so_trunc = so->truncated;
	o->se = se->buf;
	o->se_len = se->len;
	o->se_trunc = se->truncated;
	if (WIFSIGNALED(wstatus))
		o->signal = WTERMSIG(wstatus);
	else
		o->exit_code = WEXITSTATUS(wstatus);
	if (timed_out) {
		o->status = rw_Status_TIMEOUT;
		o->message = "wall-clock timeout: every process of the sandbox was killed";
	}
}

void sbx_init_main(const struct sbx_runtime *rt, const struct sbx_profile *p, int fd, uint32_t uid)
{
	(void)rt;
	(void)uid;
	struct init in = { .p = p, .fd = fd };
	/* A file over RLIMIT_FSIZE must fail with EFBIG in init, not kill it. */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	in.workfd = open(p->image ? "." : "/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
	in.rootfd = p->image ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (in.workfd < 0 || (p->image && in.rootfd < 0))
		_exit(2);
	struct stream so = { .fd = -1 }, se = { .fd = -1 };
	so.buf = init_grow(NULL, 0, p->max_output_cap + 1);
	se.buf = init_grow(NULL, 0, p->max_output_cap + 1);
	uint8_t *filebuf = NULL;
	size_t filecap = 0;
	if (!so.buf || !se.buf)
		_exit(2);
	for (;;) {
		uint32_t len;
		if (read_full(fd, &len, 4))
			_exit(0); /* the pool closed the socket: the sandbox ends */
		if (len == 0 || len > SBX_MAX_FRAME)
			_exit(3);
		if (len > in.in_cap) {
			size_t cap = (len + 65535) & ~(size_t)65535;
			uint8_t *b = init_grow(in.in, in.in_cap, cap);
			if (!b)
				_exit(4);
			in.in = b;
			in.in_cap = cap;
		}
		if (read_full(fd, in.in, len))
			_exit(0);
		struct outcome o = { .status = rw_Status_OK };
		uint64_t dispatch = 0, request_id = 0;
		if (rw_Message_verify(in.in, len) != 0) {
			o.status = rw_Status_BAD_REQUEST;
			o.message = "malformed request";
		} else {
			const rw_Message_t *m = rw_Message_root(in.in);
			const rw_Request_t *r = rw_Message_body_as_Request(m);
			dispatch = rw_Message_dispatch_id(m);
			if (!r) {
				o.status = rw_Status_BAD_REQUEST;
				o.message = "not a request";
			} else {
				request_id = rw_Request_request_id(r);
				in.dispatch = dispatch;
				in.request_id = request_id;
				if (rw_Request_action_type(r) == rw_Action_Signal)
					continue; /* for a command that has ended: nothing to do, no answer */
				switch (rw_Request_action_type(r)) {
				case rw_Action_Exec:
					do_exec(&in, rw_Request_action_as_Exec(r), &o, &so, &se);
					break;
				case rw_Action_PutFile:
					init_put(&in, rw_Request_action_as_PutFile(r), &o);
					break;
				case rw_Action_GetFile:
					init_get(&in, rw_Request_action_as_GetFile(r), &o, &filebuf,
						 &filecap);
					break;
				default:
					o.status = rw_Status_BAD_REQUEST;
					o.message = "action not served by the sandbox init";
				}
			}
		}
		if (send_completion(&in, dispatch, request_id, &o))
			_exit(5);
	}
}
