/* Test helper: the action table of a request (Open of a profile, Exec of `true`, Signal
 * (SIGKILL to the running exec), Close),
 * built into b for tests that play a trainer or a coordinator. */
#ifndef ROLLOUT_TESTS_ACTIONS_H
#define ROLLOUT_TESTS_ACTIONS_H

#include "rollout_wire.h"

static inline fb_ref_t test_action(struct fb_builder *b, int kind, uint64_t sandbox, const char *profile)
{
	if (kind == rw_Action_Open) {
		fb_ref_t name = fb_create_string(b, profile);
		rw_Open_start(b);
		rw_Open_add_profile(b, name);
		return rw_Open_end(b);
	}
	if (kind == rw_Action_Exec) {
		fb_ref_t sh = fb_create_string(b, "true");
		rw_Exec_start(b);
		rw_Exec_add_sandbox(b, sandbox);
		rw_Exec_add_shell(b, sh);
		return rw_Exec_end(b);
	}
	if (kind == rw_Action_Signal) {
		rw_Signal_start(b);
		rw_Signal_add_sandbox(b, sandbox);
		return rw_Signal_end(b);
	}
	rw_Close_start(b);
	rw_Close_add_sandbox(b, sandbox);
	return rw_Close_end(b);
}

#endif
