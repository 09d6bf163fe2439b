/* The gateway's HTTP server (libmicrohttpd, external polling from the event thread). */
#ifndef ROLLOUT_GATEWAY_HTTP_H
#define ROLLOUT_GATEWAY_HTTP_H

#include "gw.h"

/* Listens on cfg.listen; 0 or a negative code. */
int gw_http_start(struct gw *g);
/* libmicrohttpd's epoll fd: readable when MHD_run() has work. */
int gw_http_fd(struct gw *g);

#endif
