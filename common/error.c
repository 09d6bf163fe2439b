/* The one place that turns return codes into text (see include/rollout/error.h). */
#include "rollout/error.h"

#include <string.h>

const char *rollout_strerror(int err)
{
	switch (err) {
#define ROLLOUT__ERR_STR(name, value, msg) \
	case value:                        \
		return msg;
		ROLLOUT_ERRNO_MAP(ROLLOUT__ERR_STR)
#undef ROLLOUT__ERR_STR
	}
	if (err == 0)
		return "success";
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

const char *rollout_err_name(int err)
{
	switch (err) {
#define ROLLOUT__ERR_NAME(name, value, msg) \
	case value:                         \
		return "ROLLOUT_" #name;
		ROLLOUT_ERRNO_MAP(ROLLOUT__ERR_NAME)
#undef ROLLOUT__ERR_NAME
	}
	if (err == 0)
		return "OK";
	if (err < 0 && err > -4096) {
		const char *n = strerrorname_np(-err);
		return n ? n : "EUNKNOWN";
	}
	return "EUNKNOWN";
}
