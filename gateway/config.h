/* rollout-gateway configuration: the `gateway:` section of a YAML file (the same file may
 * hold `rolloutd:` and `pool:`; the gateway reads only its own section, plus rolloutd's
 * `socket` as the default attach socket). Parsed with libyaml because `templates` is a map
 * whose keys are template ids, which a fixed libcyaml schema cannot describe. */
#ifndef ROLLOUT_GATEWAY_CONFIG_H
#define ROLLOUT_GATEWAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_template {
	char *id;      /* E2B template id the SDK sends (templateID) */
	char *profile; /* rollout-pool environment profile it opens */
};

struct gw_config {
	char *listen; /* HOST:PORT of the one HTTP port (control plane, envd, /metrics) */
	char *socket; /* rolloutd attach socket */
	char **api_keys;
	size_t napi_keys;
	struct gw_template *templates;
	size_t ntemplates;
	char *workdir;              /* cwd of commands and base of relative paths [/tmp] */
	uint32_t default_timeout_s; /* sandbox lifetime when create names none [300] */
	uint32_t max_timeout_s;     /* longest lifetime create/set-timeout may ask [86400] */
	uint32_t max_body_bytes;    /* larger request bodies get 413 [512 KiB] */
	uint32_t max_output_bytes;  /* output kept per stream and largest file read [256 KiB] */
	uint32_t max_sandboxes;     /* live sandboxes at most [4096] */
	uint32_t max_connections;   /* concurrent HTTP connections [1024] */
	uint32_t client_timeout_s;  /* idle/slow client connections are closed after [30] */
	uint32_t open_timeout_ms;   /* create waits this long for a sandbox [30000] */
	bool login_shell;           /* keep bash -l of the SDK's commands [false] */
	int gpu;                    /* GPU index given to rolloutd at attach [-1] */
};

/* Loads and validates the gateway section of path. On failure returns -EINVAL (or
 * -errno) with a message naming the file, line and key in err. cfg is owned by the
 * caller and released with gw_config_free() (also after a failure). */
int gw_config_load(const char *path, struct gw_config *cfg, char *err, size_t errcap);
/* The same from a buffer (tests, fuzzing); name is used in messages. */
int gw_config_parse(const char *name, const char *text, size_t len, struct gw_config *cfg, char *err,
		    size_t errcap);
void gw_config_free(struct gw_config *cfg);
/* The profile a template id maps to, NULL when the template is not configured. */
const char *gw_config_profile(const struct gw_config *cfg, const char *template_id);
/* True when key is one of the configured API keys (constant time per key). */
bool gw_config_key_ok(const struct gw_config *cfg, const char *key);

#endif
