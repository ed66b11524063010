/*
 * bundle_forge.c - a test tool for tests/cli/t06-bad-bundles.sh: shows the
 * layout of a bundle (docs/bundle-format.md), flips one bit of any part of
 * it, and forges validly signed bundles with one bad field, using the
 * stores' own key files (it is test code: it reads secret keys).
 *
 *   bundle_forge show FILE
 *       one line per field: NAME OFFSET LENGTH [VALUE]
 *   bundle_forge flip IN OUT FIELD [BYTE [BIT]] [--resign STORE]
 *       flip bit BIT (default 0) of byte BYTE (default: the middle one) of
 *       FIELD; with --resign, sign the result again with STORE's key (the
 *       signature field itself is not re-signed)
 *   bundle_forge forge IN OUT --from STORE --to STORE [CHANGE...]
 *       open IN as the recipient (--to: its key pair opens it), apply the
 *       changes, then write a whole new bundle: compressed, encrypted to the
 *       recipient's key and signed with the sender's (--from) key, by this
 *       file's own writer (an independent implementation of the format, so
 *       that it can write what tz_bundle_write never does).  Changes:
 *         --sender CODE --recipient CODE --sequence N --schema N
 *         --instance HEX32|random --prereq HEX40 (repeatable; replaces the
 *         list) --no-prereq
 *         --version N --flags N --plain-size N --cipher-size N (raw header
 *         values; the body is what it would be without them)
 *         --payload-replace OLD NEW (first occurrence, same length)
 *         --payload-count-max (the commit count varint after the payload's
 *         4-byte magic becomes 2^64-1)
 *         --bomb-rle MIB (the zstd frame: MIB MiB of RLE blocks, declaring
 *         1 TiB; plain_size stays the payload's size)
 *         --bomb-window LOG (a one-byte frame asking for a 2^LOG window)
 *         --sign-new-key (sign with a fresh key nobody knows)
 *
 * Exit status: 0 done, 1 failure (message on stderr), 2 usage.
 */
#include "syncd/tz_bundle.h"
#include "store/tz_zstd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "TZBUNDL1"
#define CONTEXT "tazamun bundle v1"
#define MAX_FIELDS 32
#define MAX_PREREQ 16

typedef struct {
	const char *name;
	size_t off, len;
	char value[96];
} field;

typedef struct {
	field f[MAX_FIELDS];
	size_t n;
	size_t hdr_len;
	size_t cipher_off, cipher_len;
} layout;

__attribute__((noreturn)) static void die(const char *what)
{
	const char *m = tz_error_last();

	fprintf(stderr, "bundle_forge: %s%s%s\n", what, m[0] ? ": " : "", m);
	exit(1);
}

__attribute__((noreturn)) static void usage(const char *why)
{
	fprintf(stderr, "bundle_forge: %s\n"
		"usage: bundle_forge show FILE\n"
		"       bundle_forge flip IN OUT FIELD [BYTE [BIT]] [--resign STORE]\n"
		"       bundle_forge forge IN OUT --from STORE --to STORE [CHANGE...]\n", why);
	exit(2);
}

static void read_file(tz_buf *b, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t chunk[65536];
	size_t got;

	if (f == NULL) {
		fprintf(stderr, "bundle_forge: cannot open '%s'\n", path);
		exit(1);
	}
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tz_buf_put(b, chunk, got);
	fclose(f);
	if (tz_buf_error(b) < 0)
		die("cannot read the input");
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "bundle_forge: cannot write '%s'\n", path);
		exit(1);
	}
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static field *add(layout *L, const char *name, size_t off, size_t len)
{
	field *f = &L->f[L->n++];

	f->name = name;
	f->off = off;
	f->len = len;
	f->value[0] = '\0';
	return f;
}

/* The layout of a well-formed bundle (exits on anything else). */
static void parse_layout(layout *L, const uint8_t *p, size_t n)
{
	size_t o = 0, len, np;
	uint16_t flags;
	field *f;

	memset(L, 0, sizeof(*L));
#define NEED(k) do { if (o + (k) > n) { fprintf(stderr, "bundle_forge: not a whole bundle\n"); exit(1); } } while (0)
	NEED(12);
	add(L, "magic", 0, 8);
	f = add(L, "version", 8, 2);
	snprintf(f->value, sizeof(f->value), "%u", (unsigned)get_le(p + 8, 2));
	f = add(L, "flags", 10, 2);
	flags = (uint16_t)get_le(p + 10, 2);
	snprintf(f->value, sizeof(f->value), "%u", flags);
	o = 12;
	for (int i = 0; i < 2; i++) {
		NEED(1);
		len = p[o];
		NEED(1 + len);
		add(L, i ? "recipient_len" : "sender_len", o, 1);
		f = add(L, i ? "recipient" : "sender", o + 1, len);
		snprintf(f->value, sizeof(f->value), "%.*s", (int)len, (const char *)p + o + 1);
		o += 1 + len;
	}
	NEED(16 + 8 + 8 + 32);
	f = add(L, "instance", o, 16);
	hex(f->value, p + o, 16);
	o += 16;
	f = add(L, "sequence", o, 8);
	snprintf(f->value, sizeof(f->value), "%llu", (unsigned long long)get_le(p + o, 8));
	o += 8;
	f = add(L, "schema", o, 8);
	snprintf(f->value, sizeof(f->value), "%llu", (unsigned long long)get_le(p + o, 8));
	o += 8;
	add(L, "dict_id", o, 32);
	o += 32;
	if (flags & 1) {
		NEED(64);
		add(L, "binding", o, 64);
		o += 64;
	}
	NEED(2);
	np = (size_t)get_le(p + o, 2);
	f = add(L, "nprereq", o, 2);
	snprintf(f->value, sizeof(f->value), "%zu", np);
	o += 2;
	NEED(np * 20);
	f = add(L, "prereq", o, np * 20);
	if (np > 0)
		hex(f->value, p + o, 20);
	o += np * 20;
	NEED(80 + 24 + 16);
	add(L, "sealed_key", o, 80);
	o += 80;
	add(L, "ss_header", o, 24);
	o += 24;
	f = add(L, "plain_size", o, 8);
	snprintf(f->value, sizeof(f->value), "%llu", (unsigned long long)get_le(p + o, 8));
	o += 8;
	f = add(L, "cipher_size", o, 8);
	L->cipher_len = (size_t)get_le(p + o, 8);
	snprintf(f->value, sizeof(f->value), "%zu", L->cipher_len);
	o += 8;
	L->hdr_len = o;
	L->cipher_off = o;
	NEED(L->cipher_len + 64);
	add(L, "ciphertext", o, L->cipher_len);
	o += L->cipher_len;
	add(L, "signature", o, 64);
	o += 64;
	add(L, "header", 0, L->hdr_len);
	add(L, "total", 0, n);
#undef NEED
}

static const field *find_field(const layout *L, const char *name)
{
	for (size_t i = 0; i < L->n; i++)
		if (strcmp(L->f[i].name, name) == 0)
			return &L->f[i];
	fprintf(stderr, "bundle_forge: no field '%s' in this bundle\n", name);
	exit(2);
}

static void load_keys(tz_keypair *kp, const char *store)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/keys", store);
	if (tz_keypair_load(kp, dir, "replica") < 0)
		die("cannot load the store's key pair");
}

/* Sign header || ciphertext of a bundle in place (its last 64 bytes). */
static void resign(tz_buf *b, const layout *L, const tz_keypair *kp)
{
	if (tz_sign_ph(b->data + L->cipher_off + L->cipher_len, kp, CONTEXT, (const tz_piece[]){
			       { b->data, L->hdr_len }, { b->data + L->cipher_off, L->cipher_len } }, 2) < 0)
		die("cannot sign");
}

static int cmd_show(int argc, char **argv)
{
	tz_buf b = TZ_BUF_INIT;
	layout L;

	if (argc != 3)
		usage("show takes one file");
	read_file(&b, argv[2]);
	parse_layout(&L, b.data, b.len);
	for (size_t i = 0; i < L.n; i++)
		printf("%s %zu %zu%s%s\n", L.f[i].name, L.f[i].off, L.f[i].len, L.f[i].value[0] ? " " : "",
		       L.f[i].value);
	tz_buf_release(&b);
	return 0;
}

static int cmd_flip(int argc, char **argv)
{
	tz_buf b = TZ_BUF_INIT;
	const char *resign_store = NULL, *pos[3] = { NULL, NULL, NULL };
	size_t npos = 0, byte;
	unsigned bit = 0;
	const field *f;
	layout L;

	if (argc < 5)
		usage("flip takes IN OUT FIELD");
	for (int i = 5; i < argc; i++) {
		if (strcmp(argv[i], "--resign") == 0 && i + 1 < argc)
			resign_store = argv[++i];
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			usage("too many arguments");
	}
	read_file(&b, argv[2]);
	parse_layout(&L, b.data, b.len);
	f = find_field(&L, argv[4]);
	if (f->len == 0)
		usage("the field is empty");
	byte = pos[0] ? (size_t)strtoull(pos[0], NULL, 0) : f->len / 2;
	if (pos[1])
		bit = (unsigned)strtoul(pos[1], NULL, 0);
	if (byte >= f->len || bit > 7)
		usage("byte or bit out of the field");
	b.data[f->off + byte] ^= (uint8_t)(1u << bit);
	if (resign_store) {
		tz_keypair kp;
		load_keys(&kp, resign_store);
		resign(&b, &L, &kp);
		tz_keypair_wipe(&kp);
	}
	write_file(argv[3], b.data, b.len);
	tz_buf_release(&b);
	return 0;
}

/* ---- forge ---- */

typedef struct {
	const char *from, *to;
	const char *sender, *recipient;
	bool set_seq, set_schema, set_instance, random_instance, set_prereq;
	uint64_t seq, schema;
	uint8_t instance[16];
	tz_oid prereq[MAX_PREREQ];
	size_t nprereq;
	bool set_version, set_flags, set_plain, set_cipher;
	uint64_t version, flags, plain, cipher;
	const char *replace_old, *replace_new;
	bool count_max;
	uint64_t bomb_rle_mib;
	unsigned bomb_window;
	bool sign_new_key;
} forge_opts;

static const uint8_t *sender_pk;

static int key_cb(uint8_t pk[TZ_PK_BYTES], const tz_bundle_header *h, void *payload)
{
	(void)h;
	(void)payload;
	memcpy(pk, sender_pk, TZ_PK_BYTES);
	return TZ_OK;
}

static int parse_hex(uint8_t *out, size_t n, const char *s)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*s == '\0' || *end != '\0')
		usage("not a number");
	return v;
}

static void parse_forge_opts(forge_opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	for (int i = 4; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE() do { if (v == NULL) usage("an option lacks its value"); i++; } while (0)
		if (strcmp(a, "--from") == 0) {
			TAKE();
			o->from = v;
		} else if (strcmp(a, "--to") == 0) {
			TAKE();
			o->to = v;
		} else if (strcmp(a, "--sender") == 0) {
			TAKE();
			o->sender = v;
		} else if (strcmp(a, "--recipient") == 0) {
			TAKE();
			o->recipient = v;
		} else if (strcmp(a, "--sequence") == 0) {
			TAKE();
			o->set_seq = true;
			o->seq = num(v);
		} else if (strcmp(a, "--schema") == 0) {
			TAKE();
			o->set_schema = true;
			o->schema = num(v);
		} else if (strcmp(a, "--instance") == 0) {
			TAKE();
			o->set_instance = true;
			if (strcmp(v, "random") == 0)
				o->random_instance = true;
			else if (parse_hex(o->instance, 16, v) < 0)
				usage("--instance takes 32 hex digits or 'random'");
		} else if (strcmp(a, "--prereq") == 0) {
			TAKE();
			o->set_prereq = true;
			if (o->nprereq == MAX_PREREQ || parse_hex(o->prereq[o->nprereq++].id, 20, v) < 0)
				usage("--prereq takes 40 hex digits");
		} else if (strcmp(a, "--no-prereq") == 0) {
			o->set_prereq = true;
			o->nprereq = 0;
		} else if (strcmp(a, "--version") == 0) {
			TAKE();
			o->set_version = true;
			o->version = num(v);
		} else if (strcmp(a, "--flags") == 0) {
			TAKE();
			o->set_flags = true;
			o->flags = num(v);
		} else if (strcmp(a, "--plain-size") == 0) {
			TAKE();
			o->set_plain = true;
			o->plain = num(v);
		} else if (strcmp(a, "--cipher-size") == 0) {
			TAKE();
			o->set_cipher = true;
			o->cipher = num(v);
		} else if (strcmp(a, "--payload-replace") == 0) {
			if (i + 2 >= argc)
				usage("--payload-replace takes OLD NEW");
			o->replace_old = argv[++i];
			o->replace_new = argv[++i];
			if (strlen(o->replace_old) != strlen(o->replace_new) || !o->replace_old[0])
				usage("--payload-replace: OLD and NEW must have the same, non-zero length");
		} else if (strcmp(a, "--payload-count-max") == 0) {
			o->count_max = true;
		} else if (strcmp(a, "--bomb-rle") == 0) {
			TAKE();
			o->bomb_rle_mib = num(v);
		} else if (strcmp(a, "--bomb-window") == 0) {
			TAKE();
			o->bomb_window = (unsigned)num(v);
			if (o->bomb_window < 10 || o->bomb_window > 41)
				usage("--bomb-window takes 10..41");
		} else if (strcmp(a, "--sign-new-key") == 0) {
			o->sign_new_key = true;
		} else {
			usage("unknown forge option");
		}
#undef TAKE
	}
	if (o->from == NULL || o->to == NULL)
		usage("forge needs --from STORE and --to STORE");
}

static void change_payload(tz_buf *pl, const forge_opts *o)
{
	if (o->replace_old) {
		size_t n = strlen(o->replace_old);
		uint8_t *at = NULL;
		for (size_t i = 0; at == NULL && i + n <= pl->len; i++)
			if (memcmp(pl->data + i, o->replace_old, n) == 0)
				at = pl->data + i;
		if (at == NULL) {
			fprintf(stderr, "bundle_forge: '%s' is not in the payload\n", o->replace_old);
			exit(1);
		}
		memcpy(at, o->replace_new, n);
	}
	if (o->count_max) {
		tz_reader r;
		tz_buf nw = TZ_BUF_INIT;
		const uint8_t *magic;
		uint64_t nc;
		tz_reader_init(&r, pl->data, pl->len);
		/* a 4-byte magic ("TZD<version>"), kept as it is, then the count */
		if (tz_reader_bytes(&r, &magic, 4) < 0 || memcmp(magic, "TZD", 3) != 0 ||
		    tz_reader_varint(&r, &nc, UINT64_MAX) < 0) {
			fprintf(stderr, "bundle_forge: the payload does not start with a magic and a count\n");
			exit(1);
		}
		tz_buf_put(&nw, magic, 4);
		tz_buf_varint(&nw, UINT64_MAX);
		tz_buf_put(&nw, r.p, r.len);
		if (tz_buf_error(&nw) < 0)
			die("out of memory");
		tz_buf_release(pl);
		*pl = nw;
	}
}

static void put_u16(tz_buf *b, uint64_t v)
{
	tz_buf_putc(b, (uint8_t)v);
	tz_buf_putc(b, (uint8_t)(v >> 8));
}

static void put_u24(tz_buf *b, uint32_t v)
{
	tz_buf_putc(b, (uint8_t)v);
	tz_buf_putc(b, (uint8_t)(v >> 8));
	tz_buf_putc(b, (uint8_t)(v >> 16));
}

/* The zstd frame of the body: the payload, or a hand-made bomb. */
static void make_frame(tz_buf *frame, const tz_buf *pl, const forge_opts *o)
{
	static const uint8_t zmagic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

	if (o->bomb_rle_mib) {
		/* frame header: 8-byte content size, window 2^17; then RLE
		 * blocks of 128 KiB (block header: last | type 1 << 1 | size << 3) */
		uint64_t blocks = o->bomb_rle_mib * 8;
		tz_buf_put(frame, zmagic, 4);
		tz_buf_putc(frame, 0xc0);
		tz_buf_putc(frame, (17 - 10) << 3);
		tz_buf_u64le(frame, (uint64_t)1 << 40);
		for (uint64_t i = 0; i < blocks; i++) {
			put_u24(frame, (uint32_t)(131072u << 3 | 1u << 1 | (i + 1 == blocks)));
			tz_buf_putc(frame, 'A');
		}
	} else if (o->bomb_window) {
		/* no content size, not single-segment, window 2^LOG; one raw
		 * last block of one byte */
		tz_buf_put(frame, zmagic, 4);
		tz_buf_putc(frame, 0x00);
		tz_buf_putc(frame, (uint8_t)((o->bomb_window - 10) << 3));
		put_u24(frame, 1u << 3 | 1u);
		tz_buf_putc(frame, 'A');
	} else if (tz_zstd_compress(frame, pl->data, pl->len, 3, NULL, 0) < 0) {
		die("cannot compress");
	}
	if (tz_buf_error(frame) < 0)
		die("out of memory");
}

static void put_code(tz_buf *b, const char *code)
{
	tz_buf_putc(b, (uint8_t)strlen(code));
	tz_buf_puts(b, code);
}

static int cmd_forge(int argc, char **argv)
{
	tz_buf in = TZ_BUF_INIT, pl = TZ_BUF_INIT, frame = TZ_BUF_INIT, hdr = TZ_BUF_INIT, out = TZ_BUF_INIT;
	tz_keypair from_kp, to_kp, sign_kp;
	tz_bundle_header h, peek;
	uint8_t key[TZ_STREAM_KEY_BYTES], sealed[TZ_SEALED_KEY_BYTES], ssh[TZ_STREAM_HEADER_BYTES], sig[TZ_SIG_BYTES];
	uint64_t cipher_size;
	tz_stream st;
	forge_opts o;
	const tz_oid *prereq;
	size_t nprereq;
	uint16_t flags;

	if (argc < 4)
		usage("forge takes IN OUT");
	parse_forge_opts(&o, argc, argv);
	load_keys(&from_kp, o.from);
	load_keys(&to_kp, o.to);
	read_file(&in, argv[2]);
	if (tz_bundle_peek(&peek, in.data, in.len) < 0)
		die("cannot parse the input bundle");
	sender_pk = from_kp.pk;
	if (tz_bundle_read(&h, &pl, in.data, in.len, peek.recipient, &to_kp, NULL, key_cb, NULL) < 0)
		die("cannot open the input bundle with the --to store's key and the --from store's public key");
	tz_bundle_header_release(&peek);

	change_payload(&pl, &o);
	make_frame(&frame, &pl, &o);

	/* the header, field by field (docs/bundle-format.md) */
	if (o.sender)
		snprintf(h.sender, sizeof(h.sender), "%s", o.sender);
	if (o.recipient)
		snprintf(h.recipient, sizeof(h.recipient), "%s", o.recipient);
	if (o.set_seq)
		h.sequence = o.seq;
	if (o.set_schema)
		h.schema = o.schema;
	if (o.random_instance)
		tz_random_bytes(h.instance, sizeof(h.instance));
	else if (o.set_instance)
		memcpy(h.instance, o.instance, sizeof(h.instance));
	prereq = o.set_prereq ? o.prereq : h.prereq;
	nprereq = o.set_prereq ? o.nprereq : h.nprereq;
	flags = (uint16_t)(o.set_flags ? o.flags : h.bind ? 1 : 0);
	if (tz_stream_size(&cipher_size, frame.len) < 0)
		die("frame too large");
	tz_random_bytes(key, sizeof(key));
	memset(&st, 0, sizeof(st));
	if (tz_seal_key(sealed, key, to_kp.pk) < 0 || tz_stream_init_push(&st, ssh, key) < 0)
		die("cannot start the encryption");

	tz_buf_put(&hdr, MAGIC, 8);
	put_u16(&hdr, o.set_version ? o.version : TZ_BUNDLE_VERSION);
	put_u16(&hdr, flags);
	put_code(&hdr, h.sender);
	put_code(&hdr, h.recipient);
	tz_buf_put(&hdr, h.instance, 16);
	tz_buf_u64le(&hdr, h.sequence);
	tz_buf_u64le(&hdr, h.schema);
	tz_buf_put(&hdr, h.dict_id, 32);
	if (flags & 1) {
		tz_buf_put(&hdr, h.bind_pk, TZ_PK_BYTES);
		tz_buf_put(&hdr, h.bind_mac, 32);
	}
	put_u16(&hdr, nprereq);
	for (size_t i = 0; i < nprereq; i++)
		tz_buf_put(&hdr, prereq[i].id, 20);
	tz_buf_put(&hdr, sealed, sizeof(sealed));
	tz_buf_put(&hdr, ssh, sizeof(ssh));
	tz_buf_u64le(&hdr, o.set_plain ? o.plain : pl.len);
	tz_buf_u64le(&hdr, o.set_cipher ? o.cipher : cipher_size);
	if (tz_buf_error(&hdr) < 0)
		die("out of memory");

	tz_buf_put(&out, hdr.data, hdr.len);
	if (tz_stream_push_all(&out, &st, hdr.data, hdr.len, frame.data, frame.len) < 0)
		die("cannot encrypt");
	if (o.sign_new_key) {
		if (tz_keypair_generate(&sign_kp) < 0)
			die("cannot make a key");
	} else {
		sign_kp = from_kp;
	}
	if (tz_sign_ph(sig, &sign_kp, CONTEXT, (const tz_piece[]){
			       { hdr.data, hdr.len }, { out.data + hdr.len, out.len - hdr.len } }, 2) < 0)
		die("cannot sign");
	tz_buf_put(&out, sig, sizeof(sig));
	if (tz_buf_error(&out) < 0)
		die("out of memory");
	write_file(argv[3], out.data, out.len);

	tz_wipe(key, sizeof(key));
	tz_keypair_wipe(&from_kp);
	tz_keypair_wipe(&to_kp);
	tz_keypair_wipe(&sign_kp);
	tz_bundle_header_release(&h);
	tz_buf_release(&in);
	tz_buf_release(&pl);
	tz_buf_release(&frame);
	tz_buf_release(&hdr);
	tz_buf_release(&out);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage("no command");
	if (tz_crypto_init() < 0)
		die("cannot start libsodium");
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc, argv);
	if (strcmp(argv[1], "flip") == 0)
		return cmd_flip(argc, argv);
	if (strcmp(argv[1], "forge") == 0)
		return cmd_forge(argc, argv);
	usage("unknown command");
	return 2;
}
