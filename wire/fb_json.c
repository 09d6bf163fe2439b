/* JSON output for `rolloutctl wire dump` and tests: the same field names and values
 * as flatc prints, so the two can be compared after parsing. */
#include "fb_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>

void fb_json_init(struct fb_json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->first = true;
	j->err = 0;
}

int fb_json_finish(struct fb_json *j)
{
	fputc('\n', j->out);
	if (ferror(j->out) && !j->err)
		j->err = -EIO;
	return j->err;
}

static void newline(struct fb_json *j)
{
	fputc('\n', j->out);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->out);
}

void fb_json_open(struct fb_json *j, char c)
{
	fputc(c, j->out);
	j->depth++;
	j->first = true;
}

void fb_json_close(struct fb_json *j, char c)
{
	j->depth--;
	if (!j->first)
		newline(j);
	fputc(c, j->out);
	j->first = false;
}

void fb_json_item(struct fb_json *j)
{
	if (!j->first)
		fputc(',', j->out);
	newline(j);
	j->first = false;
}

void fb_json_key(struct fb_json *j, const char *key)
{
	fb_json_item(j);
	fprintf(j->out, "\"%s\": ", key);
}

void fb_json_raw(struct fb_json *j, const char *s)
{
	fputs(s, j->out);
}

void fb_json_fmt(struct fb_json *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(j->out, fmt, ap);
	va_end(ap);
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len;
	uint32_t min;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, min = 0x80, *cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, min = 0x800, *cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, *cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

void fb_json_str(struct fb_json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	fputc('"', j->out);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len = 1;
		switch (c) {
		case '"':
			fputs("\\\"", j->out);
			break;
		case '\\':
			fputs("\\\\", j->out);
			break;
		case '\n':
			fputs("\\n", j->out);
			break;
		case '\t':
			fputs("\\t", j->out);
			break;
		case '\r':
			fputs("\\r", j->out);
			break;
		case '\b':
			fputs("\\b", j->out);
			break;
		case '\f':
			fputs("\\f", j->out);
			break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				fputc(c, j->out);
			} else if ((len = utf8_decode(s + i, n - i, &cp)) == 0) {
				/* Not UTF-8: keep the byte's value visible. */
				fprintf(j->out, "\\u%04X", c);
				len = 1;
			} else if (cp >= 0x10000) {
				cp -= 0x10000;
				fprintf(j->out, "\\u%04X\\u%04X", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
			} else {
				fprintf(j->out, "\\u%04X", cp);
			}
		}
		i += len;
	}
	fputc('"', j->out);
}
