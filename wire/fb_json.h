/* A small JSON writer for the generated printers: indentation like flatc's, strings
 * escaped the way `flatc --strict-json` escapes them (non-ASCII as \uXXXX). Internal
 * to wire/. */
#ifndef ROLLOUT_WIRE_FB_JSON_H
#define ROLLOUT_WIRE_FB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct fb_json {
	FILE *out;
	int depth;
	bool first; /* no item yet at this depth */
	int err;
};

void fb_json_init(struct fb_json *j, FILE *out);
int fb_json_finish(struct fb_json *j);
void fb_json_open(struct fb_json *j, char c);
void fb_json_close(struct fb_json *j, char c);
void fb_json_key(struct fb_json *j, const char *key);
void fb_json_item(struct fb_json *j);
void fb_json_raw(struct fb_json *j, const char *s);
void fb_json_fmt(struct fb_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fb_json_str(struct fb_json *j, const char *s, size_t n);

#endif
