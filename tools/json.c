/*
 * json.c - the JSON that `--json` prints (docs/cli.md): integers and
 * reals as numbers, text as strings, NULL as null, blobs as
 * {"base64": "..."}; text that is not UTF-8 as {"text_base64": "..."} and
 * non-finite reals as {"real": "inf"} so nothing is lost or made up.
 */
#include "tools/cli.h"

#include <math.h>
#include <string.h>

#include "store/tz_keys.h"

/* Length of the valid UTF-8 sequence at p (0 when invalid). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool is_utf8(const uint8_t *p, size_t n)
{
	for (size_t i = 0, l; i < n; i += l)
		if ((l = utf8_len(p + i, n - i)) == 0)
			return false;
	return true;
}

void json_str(tz_buf *b, const void *s, size_t n)
{
	const uint8_t *p = s;

	tz_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\')
			tz_buf_printf(b, "\\%c", c);
		else if (c == '\n')
			tz_buf_puts(b, "\\n");
		else if (c == '\t')
			tz_buf_puts(b, "\\t");
		else if (c == '\r')
			tz_buf_puts(b, "\\r");
		else if (c < 0x20 || c == 0x7f)
			tz_buf_printf(b, "\\u%04x", c);
		else
			tz_buf_putc(b, c);
	}
	tz_buf_putc(b, '"');
}

void json_cstr(tz_buf *b, const char *s)
{
	json_str(b, s, strlen(s));
}

static void base64_obj(tz_buf *b, const char *field, const uint8_t *p, size_t n)
{
	tz_buf_printf(b, "{\"%s\": \"", field);
	tz_base64_put(b, p, n);
	tz_buf_puts(b, "\"}");
}

void json_value(tz_buf *b, const tz_value *v)
{
	char num[32];

	switch (v->type) {
	case TZ_VINT:
		tz_buf_printf(b, "%lld", (long long)v->i);
		break;
	case TZ_VREAL:
		tz_real_format(num, v->r);
		if (isfinite(v->r))
			tz_buf_puts(b, num);
		else
			tz_buf_printf(b, "{\"real\": \"%s\"}", num);
		break;
	case TZ_VTEXT:
		if (is_utf8(v->p, v->n))
			json_str(b, v->p, v->n);
		else
			base64_obj(b, "text_base64", v->p, v->n);
		break;
	case TZ_VBLOB:
		base64_obj(b, "base64", v->p, v->n);
		break;
	case TZ_VNULL:
		tz_buf_puts(b, "null");
		break;
	}
}

void text_value(tz_buf *b, const tz_value *v)
{
	static const char tags[] = "?irtbn";

	tz_buf_putc(b, (uint8_t)tags[v->type >= 1 && v->type <= 5 ? v->type : 0]);
	if (v->type != TZ_VNULL) {
		tz_buf_putc(b, ' ');
		tz_value_format(b, v);
	}
}

int cli_emit(tz_buf *b)
{
	if (tz_buf_error(b) < 0)
		return cli_fail("cannot format output");
	tz_buf_putc(b, '\n');
	if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
		tz_error_set(TZ_EIO, "cannot write to standard output");
		return cli_fail("output");
	}
	return CLI_EXIT_OK;
}
