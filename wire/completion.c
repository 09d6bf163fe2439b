/* Completion builder and reader (see completion.h). */
#include "completion.h"

#include <errno.h>

ssize_t rw_completion_build(struct fb_builder *b, const struct rw_completion *c)
{
	fb_ref_t msg = c->message ? fb_create_string(b, c->message) : 0;
	fb_ref_t ckpt = c->checkpoint ? fb_create_string(b, c->checkpoint) : 0;
	fb_ref_t snap = c->snapshot ? fb_create_string(b, c->snapshot) : 0;
	fb_ref_t result = 0;
	switch (c->result_type) {
	case rw_Result_Snapshotted:
		rw_Snapshotted_start(b);
		rw_Snapshotted_add_snapshot(b, snap);
		rw_Snapshotted_add_bytes(b, c->snapshot_bytes);
		rw_Snapshotted_add_files(b, c->snapshot_files);
		rw_Snapshotted_add_frozen_us(b, c->frozen_us);
		result = rw_Snapshotted_end(b);
		break;
	case rw_Result_Opened:
		rw_Opened_start(b);
		rw_Opened_add_sandbox(b, c->sandbox);
		result = rw_Opened_end(b);
		break;
	case rw_Result_Closed:
		rw_Closed_start(b);
		result = rw_Closed_end(b);
		break;
	case rw_Result_ExecResult:
		rw_ExecResult_start(b);
		result = rw_ExecResult_end(b);
		break;
	case rw_Result_FileData:
		rw_FileData_start(b);
		result = rw_FileData_end(b);
		break;
	default:
		break;
	}
	rw_Completion_start(b);
	rw_Completion_add_request_id(b, c->request_id);
	rw_Completion_add_status(b, c->status);
	rw_Completion_add_infra_failed(b, c->infra_failed);
	rw_Completion_add_message(b, msg);
	if (result)
		rw_Completion_add_result(b, c->result_type, result);
	if (ckpt) {
		rw_Completion_add_checkpoint(b, ckpt);
		rw_Completion_add_checkpoint_request_id(b, c->checkpoint_request_id);
	}
	fb_ref_t body = rw_Completion_end(b);
	rw_Message_start(b);
	if (c->dispatch_id)
		rw_Message_add_dispatch_id(b, c->dispatch_id);
	rw_Message_add_body(b, rw_Body_Completion, body);
	return rw_Message_finish(b, rw_Message_end(b));
}

int rw_completion_read(const void *buf, struct rw_completion *c)
{
	const rw_Message_t *m = rw_Message_root(buf);
	const rw_Completion_t *k = rw_Message_body_as_Completion(m);
	if (!k)
		return -EBADMSG;
	c->dispatch_id = rw_Message_dispatch_id(m);
	c->request_id = rw_Completion_request_id(k);
	c->status = rw_Completion_status(k);
	c->infra_failed = rw_Completion_infra_failed(k);
	c->message = rw_Completion_message(k);
	c->result_type = rw_Completion_result_type(k);
	const rw_Opened_t *o = rw_Completion_result_as_Opened(k);
	c->sandbox = o ? rw_Opened_sandbox(o) : 0;
	c->partial = rw_Completion_partial(k);
	c->checkpoint = rw_Completion_checkpoint(k);
	c->checkpoint_request_id = rw_Completion_checkpoint_request_id(k);
	const rw_Snapshotted_t *s = rw_Completion_result_as_Snapshotted(k);
	c->snapshot = s ? rw_Snapshotted_snapshot(s) : NULL;
	c->snapshot_bytes = s ? rw_Snapshotted_bytes(s) : 0;
	c->snapshot_files = s ? rw_Snapshotted_files(s) : 0;
	c->frozen_us = s ? rw_Snapshotted_frozen_us(s) : 0;
	return 0;
}

ssize_t rw_piece_build(struct fb_builder *b, uint64_t request_id, uint32_t total, uint32_t offset,
		       const void *data, size_t n)
{
	fb_ref_t d = fb_create_vec_u8(b, data, n);
	rw_Piece_start(b);
	rw_Piece_add_request_id(b, request_id);
	rw_Piece_add_total(b, total);
	rw_Piece_add_offset(b, offset);
	rw_Piece_add_data(b, d);
	fb_ref_t pc = rw_Piece_end(b);
	rw_Message_start(b);
	rw_Message_add_body(b, rw_Body_Piece, pc);
	return rw_Message_finish(b, rw_Message_end(b));
}

bool rw_completion_fits(const void *buf, int kind)
{
	const rw_Completion_t *k = rw_Message_body_as_Completion(rw_Message_root(buf));
	if (!k)
		return false;
	if (rw_Completion_status(k) != rw_Status_OK)
		return true;
	switch (kind) {
	case rw_Action_Open:
		return rw_Completion_result_as_Opened(k) != NULL &&
		       rw_Opened_sandbox(rw_Completion_result_as_Opened(k));
	case rw_Action_Exec:
		return rw_Completion_result_as_ExecResult(k) != NULL;
	case rw_Action_GetFile:
		return rw_Completion_result_as_FileData(k) != NULL;
	case rw_Action_Snapshot:
		return rw_Completion_result_as_Snapshotted(k) != NULL &&
		       rw_Snapshotted_snapshot(rw_Completion_result_as_Snapshotted(k)) != NULL;
	default:
		return true;
	}
}
