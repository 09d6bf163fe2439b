/* The wire format of rolloutd: typed builders, accessors and the verifier for every
 * table of wire/rollout.fbs (generated into rollout_wire_gen.h), over the runtime in
 * fb.h. Include this header, never the generated one directly.
 *
 * Building: fb_builder_init on caller memory, create strings/vectors/sub-tables first,
 * then rw_<Table>_start / rw_<Table>_add_<field> / rw_<Table>_end, and finally
 * rw_Message_finish, which returns the size or -ENOSPC.
 * Reading: rw_Message_verify first, then rw_Message_root and the accessors. A buffer
 * that lives in memory another process can write must be copied before verifying. */
#ifndef ROLLOUT_WIRE_H
#define ROLLOUT_WIRE_H

#include "fb.h"
#include "rollout_wire_gen.h"

#endif
