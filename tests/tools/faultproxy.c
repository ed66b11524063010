/*
 * faultproxy - a TCP proxy on loopback that delays and duplicates what a
 * client sends, for the HTTP transport tests (tests/cli/t11-http.sh):
 *
 *   faultproxy TARGET_PORT PORT_FILE [--delay MS] [--dup]
 *
 * Listens on 127.0.0.1 (a free port, written to PORT_FILE) and relays
 * every connection to 127.0.0.1:TARGET_PORT.  --delay MS: each piece the
 * client sends is held MS milliseconds before it goes on.  --dup: when a
 * client closes its connection, everything it sent on it is sent again,
 * byte for byte, on a new connection to the target (every request
 * replayed, as a network that duplicates packets or a man in the middle
 * would), and the answers are read and dropped.  Prints one line per
 * replayed connection on stderr.  Runs until killed; every connection is
 * bounded (30 s of silence ends it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What one connection's client may send to be replayed: the tests send a
 * few hundred KiB at most. */
#define RECORD_MAX (16u << 20)
#define IDLE_MS 30000

static int target_port, delay_ms, dup_mode;

static int dial(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)target_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Send the recorded bytes again on a new connection; drop the answers. */
static void replay(const char *rec, size_t n)
{
	char buf[65536];
	struct pollfd p;
	size_t got = 0;
	int fd = dial();

	if (fd < 0 || send_all(fd, rec, n) != 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	p.fd = fd;
	p.events = POLLIN;
	while (poll(&p, 1, 2000) > 0) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	fprintf(stderr, "faultproxy: replayed %zu bytes, %zu bytes answered\n", n, got);
}

static void *relay(void *arg)
{
	int c = (int)(intptr_t)arg, t = dial();
	char buf[65536], *rec = NULL;
	size_t nrec = 0;
	struct pollfd p[2];

	if (t < 0)
		goto done;
	if (dup_mode && (rec = malloc(RECORD_MAX)) == NULL)
		goto done;
	p[0].fd = c;
	p[1].fd = t;
	p[0].events = p[1].events = POLLIN;
	while (poll(p, 2, IDLE_MS) > 0) {
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(c, buf, sizeof(buf), 0);
			if (r <= 0)
				break;
			if (delay_ms)
				nap_ms(delay_ms);
			if (rec && nrec + (size_t)r <= RECORD_MAX) {
				memcpy(rec + nrec, buf, (size_t)r);
				nrec += (size_t)r;
			}
			if (send_all(t, buf, (size_t)r) != 0)
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(t, buf, sizeof(buf), 0);
			if (r <= 0 || send_all(c, buf, (size_t)r) != 0)
				break;
		}
	}
done:
	close(c);
	if (t >= 0)
		close(t);
	if (rec && nrec)
		replay(rec, nrec);
	free(rec);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	FILE *f;
	int ls;

	if (argc < 3) {
		fprintf(stderr, "usage: faultproxy TARGET_PORT PORT_FILE [--delay MS] [--dup]\n");
		return 2;
	}
	target_port = atoi(argv[1]);
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--dup") == 0)
			dup_mode = 1;
		else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc)
			delay_ms = atoi(argv[++i]);
		else
			return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(ls, 64) != 0 || getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
		perror("faultproxy");
		return 1;
	}
	if ((f = fopen(argv[2], "w")) == NULL || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0) {
		perror("faultproxy: port file");
		return 1;
	}
	for (;;) {
		pthread_t th;
		int c = accept(ls, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pthread_create(&th, NULL, relay, (void *)(intptr_t)c) != 0) {
			close(c);
			continue;
		}
		pthread_detach(th);
	}
}
