/* Baseline of the shuffle benchmark: what one loopback TCP connection moves between two processes
 * when one side does nothing but write(2) 32 KiB buffers and the other nothing but read(2) them.
 *
 *   tcp_loopback [--seconds S] [--write-size BYTES]
 *
 * The parent listens on 127.0.0.1, forks a sender that connects and writes for S seconds
 * (default 2), and receives. Prints one line:
 *   tcp_loopback <MB/s> MB/s <bytes> bytes <seconds> s <cpu seconds> cpu_s
 * (MB = 10^6 bytes; time from the first byte received to the sender's close; CPU of both
 * processes). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int sender(const struct sockaddr_in *addr, double seconds, size_t size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof *addr)) die("sender: connect");
    char *buf = malloc(size);
    if (!buf) die("malloc");
    memset(buf, 'x', size);
    double end = now_s() + seconds;
    uint64_t n = 0;
    while ((n++ & 63) || now_s() < end) {
        size_t off = 0;
        while (off < size) {
            ssize_t w = write(fd, buf + off, size - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                die("sender: write");
            }
            off += (size_t)w;
        }
    }
    close(fd);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    double seconds = 2;
    size_t size = 32 * 1024;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--write-size") == 0 && i + 1 < argc) size = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: tcp_loopback [--seconds S] [--write-size BYTES]\n");
            return 2;
        }
    }
    if (seconds <= 0 || size == 0) {
        fprintf(stderr, "tcp_loopback: --seconds and --write-size must be positive\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 1) ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen))
        die("listen");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(lfd);
        _exit(sender(&addr, seconds, size));
    }
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    char *buf = malloc(size);
    if (!buf) die("malloc");
    uint64_t bytes = 0;
    double t0 = 0;
    for (;;) {
        ssize_t r = read(fd, buf, size);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read");
        }
        if (r == 0) break;
        if (bytes == 0) t0 = now_s();
        bytes += (uint64_t)r;
    }
    double secs = now_s() - t0;
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "tcp_loopback: the sender failed\n");
        return 1;
    }
    struct rusage self, child;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &child);
    double cpu = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + child.ru_utime.tv_sec + child.ru_stime.tv_sec) +
                 (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + child.ru_utime.tv_usec + child.ru_stime.tv_usec) / 1e6;
    printf("tcp_loopback %.1f MB/s %llu bytes %.3f s %.3f cpu_s\n", (double)bytes / secs / 1e6,
           (unsigned long long)bytes, secs, cpu);
    free(buf);
    close(fd);
    close(lfd);
    return 0;
}
