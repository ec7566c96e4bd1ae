/* flint-kafka-local: a Kafka-protocol cluster on loopback for tests and demos, built on
 * librdkafka's mock cluster (rdkafka_mock.h: the real wire protocol, data in memory). No Kafka
 * broker can be installed on the machines Flint is developed on; this stands in for one.
 *
 *   flint-kafka-local [--brokers N] [--topic NAME:PARTITIONS]... [--replication-factor R]
 *                     [--control FIFO] [--quiet]
 *
 * The first line on stdout is the bootstrap servers ("127.0.0.1:40123,127.0.0.1:40125"); it
 * serves until SIGTERM or SIGINT. Control commands (one per line, answered on stdout with "ok
 * ..." or "error: ..."), read from stdin and from the FIFO given with --control (made when
 * missing):
 *   down <broker-id>|all     disconnect the broker and refuse connections (no leader change)
 *   up <broker-id>|all       accept connections again
 *   topic <name>:<partitions>   create a topic
 *   leader <topic> <partition> <broker-id>   move a partition's leader
 *   rtt <broker-id>|all <ms>    add round-trip latency to a broker's responses
 *   bootstrap                print the bootstrap servers again
 *   quit                     exit as on SIGTERM
 * Signals: SIGUSR1 takes every broker down, SIGUSR2 brings every broker up. See docs/connectors.md. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 64

static volatile sig_atomic_t stop_requested, all_down_requested, all_up_requested;

static void on_signal(int sig) {
    if (sig == SIGUSR1) all_down_requested = 1;
    else if (sig == SIGUSR2) all_up_requested = 1;
    else stop_requested = 1;
}

static rd_kafka_mock_cluster_t *mc;
static int n_brokers = 1;
static int replication = 1;
static int quiet;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void usage(FILE *f) {
    fprintf(f, "usage: flint-kafka-local [--brokers N] [--topic NAME:PARTITIONS]... [--replication-factor R]\n"
               "                         [--control FIFO] [--quiet]\n"
               "Prints the bootstrap servers on the first line, then serves until SIGTERM.\n"
               "Commands (stdin, FIFO): down ID|all, up ID|all, topic NAME:PARTITIONS,\n"
               "  leader TOPIC PARTITION ID, rtt ID|all MS, bootstrap, quit.\n"
               "SIGUSR1: every broker down; SIGUSR2: every broker up.\n");
}

/* "name:partitions" -> name (in buf) and count; -1 when malformed. */
static int parse_topic(const char *arg, char *buf, size_t cap, int *parts) {
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || (size_t)(colon - arg) >= cap) return -1;
    char *end;
    long n = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || n < 1 || n > 100000) return -1;
    memcpy(buf, arg, (size_t)(colon - arg));
    buf[colon - arg] = '\0';
    *parts = (int)n;
    return 0;
}

static int create_topic(const char *name, int parts) {
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, replication);
    if (e) {
        say("error: topic %s: %s", name, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* A broker id or "all" (-1); -2 when neither. */
static int parse_broker(const char *s) {
    if (!s) return -2;
    if (strcmp(s, "all") == 0) return -1;
    char *end;
    long id = strtol(s, &end, 10);
    if (!*s || *end || id < 1 || id > n_brokers) return -2;
    return (int)id;
}

static void set_state(int id, int up) {
    for (int b = id < 0 ? 1 : id; b <= (id < 0 ? n_brokers : id); b++) {
        rd_kafka_resp_err_t e = up ? rd_kafka_mock_broker_set_up(mc, b) : rd_kafka_mock_broker_set_down(mc, b);
        if (e) {
            say("error: broker %d: %s", b, rd_kafka_err2str(e));
            return;
        }
    }
    if (id < 0) say("ok all brokers %s", up ? "up" : "down");
    else say("ok broker %d %s", id, up ? "up" : "down");
}

static void command(char *line) {
    char *argv[5] = {0};
    int argc = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && argc < 5; tok = strtok(NULL, " \t\r\n")) argv[argc++] = tok;
    if (argc == 0 || argv[0][0] == '#') return;
    const char *cmd = argv[0];
    if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2) {
        int id = parse_broker(argv[1]);
        if (id == -2) {
            say("error: '%s' is not a broker id (1..%d) or all", argv[1], n_brokers);
            return;
        }
        set_state(id, cmd[0] == 'u');
    } else if (strcmp(cmd, "topic") == 0 && argc == 2) {
        char name[256];
        int parts;
        if (parse_topic(argv[1], name, sizeof name, &parts)) {
            say("error: expected topic NAME:PARTITIONS, got '%s'", argv[1]);
            return;
        }
        if (!create_topic(name, parts)) say("ok topic %s:%d", name, parts);
    } else if (strcmp(cmd, "leader") == 0 && argc == 4) {
        int id = parse_broker(argv[3]);
        char *end;
        long p = strtol(argv[2], &end, 10);
        if (id < 1 || *end || p < 0) {
            say("error: expected leader TOPIC PARTITION BROKER-ID");
            return;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)p, id);
        if (e) say("error: leader %s [%ld]: %s", argv[1], p, rd_kafka_err2str(e));
        else say("ok leader %s [%ld] %d", argv[1], p, id);
    } else if (strcmp(cmd, "rtt") == 0 && argc == 3) {
        int id = parse_broker(argv[1]);
        char *end;
        long ms = strtol(argv[2], &end, 10);
        if (id == -2 || *end || ms < 0) {
            say("error: expected rtt BROKER-ID|all MS");
            return;
        }
        for (int b = id < 0 ? 1 : id; b <= (id < 0 ? n_brokers : id); b++)
            rd_kafka_mock_broker_set_rtt(mc, b, (int)ms);
        say("ok rtt %s %ld", argv[1], ms);
    } else if (strcmp(cmd, "bootstrap") == 0 && argc == 1) {
        say("%s", rd_kafka_mock_cluster_bootstraps(mc));
    } else if (strcmp(cmd, "quit") == 0 && argc == 1) {
        stop_requested = 1;
        say("ok quit");
    } else {
        say("error: unknown command '%s' (down ID|all, up ID|all, topic NAME:PARTITIONS, leader TOPIC "
            "PARTITION ID, rtt ID|all MS, bootstrap, quit)", cmd);
    }
}

/* Line reader over a non-blocking fd. */
typedef struct reader {
    int fd;
    char buf[4096];
    size_t fill;
} reader;

/* Read what is there; run complete lines. Returns 0 at end of file, 1 otherwise. */
static int reader_run(reader *r) {
    for (;;) {
        if (r->fill == sizeof r->buf) r->fill = 0;   /* a line too long: drop it */
        ssize_t n = read(r->fd, r->buf + r->fill, sizeof r->buf - r->fill);
        if (n == 0) return 0;
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 1 : 0;
        r->fill += (size_t)n;
        char *start = r->buf, *nl;
        while ((nl = memchr(start, '\n', r->fill - (size_t)(start - r->buf)))) {
            *nl = '\0';
            command(start);
            start = nl + 1;
        }
        r->fill -= (size_t)(start - r->buf);
        memmove(r->buf, start, r->fill);
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    if (!quiet && level <= 4) fprintf(stderr, "flint-kafka-local: %s: %s\n", fac, buf);
}

int main(int argc, char **argv) {
    struct {
        char name[256];
        int parts;
    } topics[MAX_TOPICS];
    int n_topics = 0;
    const char *control = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "flint-kafka-local: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        char *end;
        if (strcmp(a, "--brokers") == 0) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 64) {
                fprintf(stderr, "flint-kafka-local: --brokers: expected 1..64, got '%s'\n", v);
                return 2;
            }
            n_brokers = (int)n;
        } else if (strcmp(a, "--replication-factor") == 0) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1) {
                fprintf(stderr, "flint-kafka-local: --replication-factor: expected a positive number, got '%s'\n", v);
                return 2;
            }
            replication = (int)n;
        } else if (strcmp(a, "--topic") == 0) {
            if (n_topics == MAX_TOPICS) {
                fprintf(stderr, "flint-kafka-local: at most %d --topic options\n", MAX_TOPICS);
                return 2;
            }
            if (parse_topic(v, topics[n_topics].name, sizeof topics[n_topics].name, &topics[n_topics].parts)) {
                fprintf(stderr, "flint-kafka-local: --topic: expected NAME:PARTITIONS, got '%s'\n", v);
                return 2;
            }
            n_topics++;
        } else if (strcmp(a, "--control") == 0) {
            control = v;
        } else {
            fprintf(stderr, "flint-kafka-local: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (replication > n_brokers) replication = n_brokers;

    /* Signals are taken synchronously (a pipe would do too; ppoll with a mask is simpler). */
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGHUP);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* librdkafka's threads inherit the blocked mask: signals reach only the main thread. */
    pthread_sigmask(SIG_BLOCK, &block, &orig);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "flint-kafka-local: %s\n", errstr);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, n_brokers);
    if (!mc) {
        fprintf(stderr, "flint-kafka-local: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < n_topics; i++)
        if (create_topic(topics[i].name, topics[i].parts)) return 1;

    int fifo_fd = -1;
    if (control) {
        struct stat st;
        if (stat(control, &st) != 0) {
            if (mkfifo(control, 0600) != 0) {
                fprintf(stderr, "flint-kafka-local: cannot make FIFO '%s': %s\n", control, strerror(errno));
                return 1;
            }
        } else if (!S_ISFIFO(st.st_mode)) {
            fprintf(stderr, "flint-kafka-local: --control '%s' exists and is not a FIFO\n", control);
            return 1;
        }
        /* Opened read-write so that it never reports end of file between writers. */
        fifo_fd = open(control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fifo_fd < 0) {
            fprintf(stderr, "flint-kafka-local: cannot open FIFO '%s': %s\n", control, strerror(errno));
            return 1;
        }
    }

    say("%s", rd_kafka_mock_cluster_bootstraps(mc));
    if (!quiet)
        fprintf(stderr, "flint-kafka-local: %d broker(s), %d topic(s); serving until SIGTERM\n", n_brokers, n_topics);

    reader in = {.fd = STDIN_FILENO}, fifo = {.fd = fifo_fd};
    int stdin_open = fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK) == 0;
    sigset_t wait_mask = orig;
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGUSR1);
    sigdelset(&wait_mask, SIGUSR2);
    sigdelset(&wait_mask, SIGHUP);
    while (!stop_requested) {
        struct pollfd p[2];
        int n = 0;
        if (stdin_open) p[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        if (fifo_fd >= 0) p[n++] = (struct pollfd){.fd = fifo_fd, .events = POLLIN};
        int r = ppoll(p, (nfds_t)n, NULL, &wait_mask);
        if (all_down_requested) {
            all_down_requested = 0;
            set_state(-1, 0);
        }
        if (all_up_requested) {
            all_up_requested = 0;
            set_state(-1, 1);
        }
        if (r <= 0) continue;
        for (int i = 0; i < n; i++) {
            if (!p[i].revents) continue;
            if (p[i].fd == STDIN_FILENO) {
                if (!reader_run(&in)) stdin_open = 0;   /* stdin closed: keep serving */
            } else {
                reader_run(&fifo);
            }
        }
    }
    if (!quiet) fprintf(stderr, "flint-kafka-local: stopping\n");
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (fifo_fd >= 0) close(fifo_fd);
    return 0;
}
