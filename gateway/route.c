/* Request routing (see route.h): a table of exact paths, then the /sandboxes/{id}/...
 * family parsed by hand. */
#include "route.h"

#include <string.h>

static const char *const names[GW_R__COUNT] = {
	[GW_R_NOT_FOUND] = "not_found",
	[GW_R_BAD_METHOD] = "bad_method",
	[GW_R_METRICS] = "metrics",
	[GW_R_HEALTHZ] = "healthz",
	[GW_R_CREATE] = "create",
	[GW_R_LIST] = "list",
	[GW_R_GET] = "get",
	[GW_R_KILL] = "kill",
	[GW_R_TIMEOUT] = "set_timeout",
	[GW_R_REFRESH] = "refresh",
	[GW_R_CONNECT] = "connect",
	[GW_R_UNSUPPORTED] = "unsupported",
	[GW_R_PROC_START] = "proc_start",
	[GW_R_PROC_CONNECT] = "proc_connect",
	[GW_R_PROC_LIST] = "proc_list",
	[GW_R_PROC_SIGNAL] = "proc_signal",
	[GW_R_PROC_INPUT] = "proc_input",
	[GW_R_PROC_CLOSE_STDIN] = "proc_close_stdin",
	[GW_R_FS_STAT] = "fs_stat",
	[GW_R_FS_LIST] = "fs_list",
	[GW_R_FS_MKDIR] = "fs_mkdir",
	[GW_R_FS_REMOVE] = "fs_remove",
	[GW_R_FS_MOVE] = "fs_move",
	[GW_R_RPC_UNSUPPORTED] = "rpc_unsupported",
	[GW_R_FILES_GET] = "files_get",
	[GW_R_FILES_POST] = "files_post",
	[GW_R_HEALTH] = "health",
};

const char *gw_route_name(enum gw_route_kind k)
{
	return (unsigned)k < GW_R__COUNT && names[k] ? names[k] : "unknown";
}

bool gw_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= GW_ID_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					(c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return n > 0;
}

struct rpc {
	const char *path;
	enum gw_route_kind kind;
	bool streaming;
};

static const struct rpc rpcs[] = {
	{ "/process.Process/Start", GW_R_PROC_START, true },
	{ "/process.Process/Connect", GW_R_PROC_CONNECT, true },
	{ "/process.Process/List", GW_R_PROC_LIST, false },
	{ "/process.Process/SendSignal", GW_R_PROC_SIGNAL, false },
	{ "/process.Process/SendInput", GW_R_PROC_INPUT, false },
	{ "/process.Process/CloseStdin", GW_R_PROC_CLOSE_STDIN, false },
	{ "/process.Process/Update", GW_R_RPC_UNSUPPORTED, false },
	{ "/process.Process/StreamInput", GW_R_RPC_UNSUPPORTED, false },
	{ "/filesystem.Filesystem/Stat", GW_R_FS_STAT, false },
	{ "/filesystem.Filesystem/ListDir", GW_R_FS_LIST, false },
	{ "/filesystem.Filesystem/MakeDir", GW_R_FS_MKDIR, false },
	{ "/filesystem.Filesystem/Remove", GW_R_FS_REMOVE, false },
	{ "/filesystem.Filesystem/Move", GW_R_FS_MOVE, false },
	{ "/filesystem.Filesystem/WatchDir", GW_R_RPC_UNSUPPORTED, true },
	{ "/filesystem.Filesystem/CreateWatcher", GW_R_RPC_UNSUPPORTED, false },
	{ "/filesystem.Filesystem/GetWatcherEvents", GW_R_RPC_UNSUPPORTED, false },
	{ "/filesystem.Filesystem/RemoveWatcher", GW_R_RPC_UNSUPPORTED, false },
};

/* Sub-resources of /sandboxes/{id}/ that E2B has and the pool cannot back. */
static const char *const unsupported_sub[] = { "pause",   "resume",  "snapshots", "fork",
					       "network", "metrics", "logs" };

static void set(struct gw_route *r, enum gw_route_kind k, const char *method, const char *want)
{
	r->kind = strcmp(method, want) ? GW_R_BAD_METHOD : k;
}

/* /sandboxes/{id}[/sub] with the leading "/sandboxes/" already consumed. */
static void sandbox_path(const char *method, const char *rest, struct gw_route *r, bool v2)
{
	const char *slash = strchr(rest, '/');
	size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (idlen == 0 || idlen > GW_ID_MAX)
		return;
	memcpy(r->id, rest, idlen);
	r->id[idlen] = 0;
	if (!gw_id_valid(r->id)) {
		r->id[0] = 0;
		return;
	}
	r->api_key = true;
	if (!slash || !slash[1]) {
		if (v2)
			return;
		if (!strcmp(method, "GET"))
			r->kind = GW_R_GET;
		else if (!strcmp(method, "DELETE"))
			r->kind = GW_R_KILL;
		else
			r->kind = GW_R_BAD_METHOD;
		return;
	}
	const char *sub = slash + 1;
	if (!strcmp(sub, "connect")) {
		set(r, GW_R_CONNECT, method, "POST");
		return;
	}
	if (v2)
		return;
	if (!strcmp(sub, "timeout"))
		set(r, GW_R_TIMEOUT, method, "POST");
	else if (!strcmp(sub, "refreshes"))
		set(r, GW_R_REFRESH, method, "POST");
	else
		for (size_t i = 0; i < sizeof(unsupported_sub) / sizeof(unsupported_sub[0]); i++)
			if (!strcmp(sub, unsupported_sub[i])) {
				r->kind = GW_R_UNSUPPORTED;
				r->feature = unsupported_sub[i];
			}
}

void gw_route(const char *method, const char *url, struct gw_route *r)
{
	memset(r, 0, sizeof(*r));
	if (!strncmp(url, "/process.Process/", 17) || !strncmp(url, "/filesystem.Filesystem/", 23)) {
		for (size_t i = 0; i < sizeof(rpcs) / sizeof(rpcs[0]); i++)
			if (!strcmp(url, rpcs[i].path)) {
				set(r, rpcs[i].kind, method, "POST");
				r->envd = true;
				r->streaming = rpcs[i].streaming;
				if (rpcs[i].kind == GW_R_RPC_UNSUPPORTED)
					r->feature = rpcs[i].path + 1;
			}
		return;
	}
	if (!strcmp(url, "/files")) {
		r->envd = true;
		r->kind = !strcmp(method, "GET")    ? GW_R_FILES_GET
			  : !strcmp(method, "POST") ? GW_R_FILES_POST
						    : GW_R_BAD_METHOD;
		return;
	}
	if (!strcmp(url, "/health")) {
		r->envd = true;
		set(r, GW_R_HEALTH, method, "GET");
		return;
	}
	if (!strcmp(url, "/metrics")) {
		set(r, GW_R_METRICS, method, "GET");
		return;
	}
	if (!strcmp(url, "/healthz")) {
		set(r, GW_R_HEALTHZ, method, "GET");
		return;
	}
	if (!strcmp(url, "/sandboxes") || !strcmp(url, "/v2/sandboxes")) {
		r->api_key = true;
		if (!strcmp(method, "GET"))
			r->kind = GW_R_LIST;
		else if (!strcmp(method, "POST"))
			r->kind = GW_R_CREATE;
		else
			r->kind = GW_R_BAD_METHOD;
		return;
	}
	if (!strncmp(url, "/sandboxes/", 11)) {
		sandbox_path(method, url + 11, r, false);
		return;
	}
	if (!strncmp(url, "/v2/sandboxes/", 14)) {
		sandbox_path(method, url + 14, r, true);
		return;
	}
	if (!strcmp(url, "/snapshots") || !strncmp(url, "/snapshots/", 11) ||
	    !strcmp(url, "/sandboxes/metrics")) {
		r->api_key = true;
		r->kind = GW_R_UNSUPPORTED;
		r->feature = "snapshots";
	}
}
