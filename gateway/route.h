/* Request routing of rollout-gateway: maps method + path to one handler of the E2B
 * control plane (REST, X-API-Key), of envd (Connect RPC and REST, routed further by the
 * E2b-Sandbox-Id header) or of the gateway itself (/metrics, /healthz). Pure: a test
 * drives it with strings. */
#ifndef ROLLOUT_GATEWAY_ROUTE_H
#define ROLLOUT_GATEWAY_ROUTE_H

#include <stdbool.h>

#define GW_ID_MAX 64

enum gw_route_kind {
	GW_R_NOT_FOUND = 0, /* no such path: 404 */
	GW_R_BAD_METHOD,    /* path exists, method does not: 405 */
	/* gateway */
	GW_R_METRICS,
	GW_R_HEALTHZ,
	/* control plane */
	GW_R_CREATE,
	GW_R_LIST,
	GW_R_GET,
	GW_R_KILL,
	GW_R_TIMEOUT,
	GW_R_REFRESH,
	GW_R_CONNECT,
	GW_R_UNSUPPORTED, /* an E2B feature the pool lacks (pause, snapshots, ...): 501 */
	/* envd: Connect RPC */
	GW_R_PROC_START,
	GW_R_PROC_CONNECT,
	GW_R_PROC_LIST,
	GW_R_PROC_SIGNAL,
	GW_R_PROC_INPUT,
	GW_R_PROC_CLOSE_STDIN,
	GW_R_FS_STAT,
	GW_R_FS_LIST,
	GW_R_FS_MKDIR,
	GW_R_FS_REMOVE,
	GW_R_FS_MOVE,
	GW_R_RPC_UNSUPPORTED, /* a known envd RPC the gateway does not serve: unimplemented */
	/* envd: REST */
	GW_R_FILES_GET,
	GW_R_FILES_POST,
	GW_R_HEALTH, /* GET /health: the sandbox's (with E2b-Sandbox-Id) or the gateway's */
	GW_R__COUNT
};

struct gw_route {
	enum gw_route_kind kind;
	char id[GW_ID_MAX + 1]; /* sandbox id from the path (control plane routes) */
	const char *feature;    /* GW_R_UNSUPPORTED / GW_R_RPC_UNSUPPORTED: what was asked */
	bool envd;              /* an envd route: needs E2b-Sandbox-Id and X-Access-Token */
	bool streaming;         /* a server-streaming Connect RPC */
	bool api_key;           /* a control-plane route: needs X-API-Key */
};

/* url is the path without the query string (libmicrohttpd's url argument). */
void gw_route(const char *method, const char *url, struct gw_route *out);
/* A short fixed name of the route for metrics labels ("create", "proc_start", ...). */
const char *gw_route_name(enum gw_route_kind k);
/* True when s is a well-formed sandbox id (1..GW_ID_MAX of [A-Za-z0-9_-]). */
bool gw_id_valid(const char *s);

#endif
