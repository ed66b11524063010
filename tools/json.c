/*
 * json.c - the JSON that `--json` prints (docs/cli.md): integers and
 * reals as numbers (a real always with a '.' or an exponent, so that 1.0
 * does not read back as the integer 1), text as strings, NULL as null, blobs as
 * {"base64": "..."}; text that is not UTF-8 as {"text_base64": "..."} and
 * non-finite reals as {"real": "inf"} so nothing is lost or made up.
 */
#include "tools/cli.h"

#include <math.h>
#include <string.h>

#include "store/tz_keys.h"

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
		if (isfinite(v->r)) {
			/* "1" would read back as an integer: a real keeps a '.' */
			tz_buf_puts(b, num);
			if (strpbrk(num, ".e") == NULL)
				tz_buf_puts(b, ".0");
		} else
			tz_buf_printf(b, "{\"real\": \"%s\"}", num);
		break;
	case TZ_VTEXT:
		if (tz_utf8_valid(v->p, v->n))
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
