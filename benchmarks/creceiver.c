/*
 * creceiver.c: the C lower bound for the sudp receive path.
 *
 * A UDP receiver written in C for Linux that does what a sudp server's
 * receive path must do at the least for each DATA datagram: read it (recvmmsg,
 * 32 a call) and open it with the suite's AEAD through OpenSSL EVP. It is
 * the cost floor of "recv + AEAD open", not a protocol: there is no replay
 * window, no session lookup (one key, given on the command line), no
 * receiver-index check, no delivery, no GRO. benchmarks/climit.py builds and
 * drives it; its figures tell how far sudp's receive path is from this floor.
 *
 *     creceiver plain
 *     creceiver chacha20-poly1305 KEYHEX
 *     creceiver aes-256-gcm KEYHEX
 *
 * It binds 127.0.0.1 on a free port (SO_RCVBUF 4 MiB, as
 * benchmarks/servers.py), prints one line {"port": N} and serves
 * servers.py's control protocol on standard input: "reset" zeroes the
 * counters (answer {}), "stats" is answered with one line of JSON:
 * datagrams (every datagram read), messages (those that authenticated as
 * sudp DATA packets; 0 in plain mode, as servers.py's udp-count), first and
 * last (CLOCK_MONOTONIC seconds when the first and last datagrams were read,
 * the clock of Python's time.perf_counter()), cpu (process user + system
 * seconds) and rss (bytes). End of standard input ends the process.
 *
 * A DATA packet (docs/protocol.md, 10.1): a 13-byte header H = type
 * (0x18 | key phase) || u32 receiver index || u64 sequence, big-endian; then
 * ciphertext || 16-byte tag. nonce = 4 zero bytes || u64 sequence; AAD = H.
 * One EVP_CIPHER_CTX is keyed once; each packet is opened with
 * EVP_DecryptInit_ex (nonce), an AAD update, a decrypt update, the tag set,
 * and EVP_DecryptFinal_ex.
 *
 * Build: gcc -O2 -Wall -Wextra -o creceiver creceiver.c -lcrypto
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define BATCH 32
#define SLOT 4096
#define HEADER 13
#define TAG 16
#define RECV_BUFFER (4 << 20)

static unsigned char buffers[BATCH][SLOT];
static unsigned char plaintext[SLOT];

static struct {
    unsigned long long datagrams, messages;
    double first, last;
    int seen;
} stats;

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static int unhex(const char *text, unsigned char *out, size_t size)
{
    if (strlen(text) != 2 * size)
        return -1;
    for (size_t i = 0; i < size; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1)
            return -1;
        out[i] = (unsigned char)byte;
    }
    return 0;
}

/* Open one sudp DATA packet; 1 if it authenticates. */
static int openPacket(EVP_CIPHER_CTX *ctx, const unsigned char *p, size_t n)
{
    unsigned char nonce[12] = {0};
    int outl = 0, finl = 0;
    size_t body;

    if (n < HEADER + TAG || n > SLOT || (p[0] & 0xfe) != 0x18)
        return 0;
    body = n - HEADER - TAG;
    memcpy(nonce + 4, p + 5, 8); /* u64 sequence, big-endian, as sent */
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1)
        return 0;
    if (EVP_DecryptUpdate(ctx, NULL, &outl, p, HEADER) != 1)
        return 0;
    if (EVP_DecryptUpdate(ctx, plaintext, &outl, p + HEADER, (int)body) != 1)
        return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, (void *)(p + n - TAG)) != 1)
        return 0;
    return EVP_DecryptFinal_ex(ctx, plaintext + outl, &finl) == 1;
}

/* Read until the socket would block. */
static void drain(int fd, EVP_CIPHER_CTX *ctx)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];

    for (int i = 0; i < BATCH; i++) {
        iovs[i].iov_base = buffers[i];
        iovs[i].iov_len = SLOT;
    }
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) {
            if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                perror("creceiver: recvmmsg");
                exit(1);
            }
            if (got < 0 && errno == EINTR)
                continue;
            return;
        }
        double now = monotonic();
        if (!stats.seen) {
            stats.first = now;
            stats.seen = 1;
        }
        stats.last = now;
        stats.datagrams += (unsigned long long)got;
        if (ctx != NULL) {
            for (int i = 0; i < got; i++) {
                if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                    continue;
                stats.messages += (unsigned long long)openPacket(ctx, buffers[i], msgs[i].msg_len);
            }
        }
    }
}

static void command(const char *line)
{
    if (strcmp(line, "reset") == 0) {
        memset(&stats, 0, sizeof(stats));
        printf("{}\n");
    } else if (strcmp(line, "stats") == 0) {
        struct rusage usage;
        char first[32] = "null", last[32] = "null";
        getrusage(RUSAGE_SELF, &usage);
        double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6
                   + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
        if (stats.seen) {
            snprintf(first, sizeof(first), "%.9f", stats.first);
            snprintf(last, sizeof(last), "%.9f", stats.last);
        }
        printf("{\"datagrams\": %llu, \"messages\": %llu, \"first\": %s, \"last\": %s, "
               "\"cpu\": %.6f, \"rss\": %ld}\n",
               stats.datagrams, stats.messages, first, last, cpu, rss());
    } else {
        printf("{\"error\": \"unknown command\"}\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const EVP_CIPHER *cipher = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char key[32];

    if (argc == 2 && strcmp(argv[1], "plain") == 0) {
        cipher = NULL;
    } else if (argc == 3 && strcmp(argv[1], "chacha20-poly1305") == 0) {
        cipher = EVP_chacha20_poly1305();
    } else if (argc == 3 && strcmp(argv[1], "aes-256-gcm") == 0) {
        cipher = EVP_aes_256_gcm();
    } else {
        fprintf(stderr, "usage: creceiver plain | chacha20-poly1305 KEYHEX | aes-256-gcm KEYHEX\n");
        return 2;
    }
    if (cipher != NULL) {
        if (unhex(argv[2], key, sizeof(key)) != 0) {
            fprintf(stderr, "creceiver: the key must be 64 hex digits\n");
            return 2;
        }
        ctx = EVP_CIPHER_CTX_new();
        if (ctx == NULL || EVP_DecryptInit_ex(ctx, cipher, NULL, NULL, NULL) != 1
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1
            || EVP_DecryptInit_ex(ctx, NULL, NULL, key, NULL) != 1) {
            fprintf(stderr, "creceiver: cannot key %s\n", argv[1]);
            return 1;
        }
        memset(key, 0, sizeof(key));
    }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int size = RECV_BUFFER;
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0
        || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0
        || getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("creceiver: socket");
        return 1;
    }
    printf("{\"port\": %d}\n", ntohs(addr.sin_port));
    fflush(stdout);

    char line[256];
    size_t have = 0;
    struct pollfd fds[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("creceiver: poll");
            return 1;
        }
        if (fds[0].revents & POLLIN)
            drain(fd, ctx);
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t got = read(STDIN_FILENO, line + have, sizeof(line) - 1 - have);
            if (got <= 0)
                break; /* end of standard input: the driver is done */
            have += (size_t)got;
            char *nl;
            while ((nl = memchr(line, '\n', have)) != NULL) {
                *nl = '\0';
                if (nl > line && nl[-1] == '\r')
                    nl[-1] = '\0';
                /* a command sees every datagram already queued */
                drain(fd, ctx);
                command(line);
                have -= (size_t)(nl + 1 - line);
                memmove(line, nl + 1, have);
            }
            if (have == sizeof(line) - 1)
                have = 0; /* an overlong line: dropped */
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    close(fd);
    return 0;
}
