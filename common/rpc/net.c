/* Opening and accepting TCP connections (see net.h). */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_MODULE "net"
#include "rpc/net.h"
#include "util/alloc.h"
#include "util/log.h"

struct net_listener {
    struct evconnlistener *ev;
    net_accept_fn fn;
    void *ud;
    int port;
};

static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t len, int *port) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int p = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        p = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        p = ntohs(in6->sin6_port);
    }
    if (port) {
        snprintf(buf, len, "%s", ip);
        *port = p;
    } else {
        snprintf(buf, len, "%s:%d", ip, p);
    }
}

static void set_nodelay(evutil_socket_t fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg) {
    net_listener *l = arg;
    (void)salen;
    char peer[64];
    sockaddr_text(sa, peer, sizeof peer, NULL);
    set_nodelay(fd);
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(ev), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        log_error("cannot set up connection from %s", peer);
        close(fd);
        return;
    }
    l->fn(bev, peer, l->ud);
}

static int resolve(const char *host, int port, int passive, struct addrinfo **out, flint_err *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (passive) hints.ai_flags = AI_PASSIVE;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *node = (host && host[0]) ? host : NULL;
    if (node && passive && strcmp(node, "0.0.0.0") == 0) node = NULL, hints.ai_family = AF_INET;
    int rc = getaddrinfo(node, portstr, &hints, out);
    if (rc)
        return flint_err_set(err, FLINT_UNAVAILABLE, "cannot resolve '%s': %s", host ? host : "",
                             gai_strerror(rc));
    /* Listeners and connections use one address: prefer IPv4, so that "localhost" means
     * 127.0.0.1 on both sides whatever order the resolver returns. */
    for (struct addrinfo **pp = &(*out)->ai_next; *pp; pp = &(*pp)->ai_next) {
        if ((*out)->ai_family == AF_INET) break;
        if ((*pp)->ai_family == AF_INET) {
            struct addrinfo *v4 = *pp;
            *pp = v4->ai_next;
            v4->ai_next = *out;
            *out = v4;
            break;
        }
    }
    return 0;
}

net_listener *net_listen(struct event_base *base, const char *host, int port, net_accept_fn fn,
                         void *ud, flint_err *err) {
    assert(base && fn && port >= 0 && port <= 65535);
    struct addrinfo *ai;
    if (resolve(host, port, 1, &ai, err)) return NULL;
    net_listener *l = XNEW(net_listener);
    l->fn = fn;
    l->ud = ud;
    l->ev = evconnlistener_new_bind(base, on_accept, l,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                    128, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!l->ev) {
        flint_err_set(err, FLINT_UNAVAILABLE, "cannot listen on %s:%d: %s",
                      host && host[0] ? host : "*", port, strerror(errno));
        free(l);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evconnlistener_get_fd(l->ev), (struct sockaddr *)&ss, &sl);
    char ip[64];
    sockaddr_text((struct sockaddr *)&ss, ip, sizeof ip, &l->port);
    return l;
}

int net_listener_port(const net_listener *l) { return l->port; }

void net_listener_free(net_listener *l) {
    if (!l) return;
    evconnlistener_free(l->ev);
    free(l);
}

struct bufferevent *net_connect(struct event_base *base, const char *host, int port, flint_err *err) {
    assert(base && host);
    struct addrinfo *ai;
    if (resolve(host, port, 0, &ai, err)) return NULL;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bufferevent_socket_connect(bev, ai->ai_addr, (int)ai->ai_addrlen) < 0) {
        flint_err_set(err, FLINT_UNAVAILABLE, "cannot connect to %s:%d: %s", host, port,
                      strerror(errno));
        bufferevent_free(bev);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    set_nodelay(bufferevent_getfd(bev));
    return bev;
}

void net_local_addr(struct bufferevent *bev, char *buf, size_t len, int *port) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int p = 0;
    if (getsockname(bufferevent_getfd(bev), (struct sockaddr *)&ss, &sl) == 0)
        sockaddr_text((struct sockaddr *)&ss, buf, len, &p);
    else
        snprintf(buf, len, "?");
    if (port) *port = p;
}

void net_peer_addr(struct bufferevent *bev, char *buf, size_t len) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(bufferevent_getfd(bev), (struct sockaddr *)&ss, &sl) == 0)
        sockaddr_text((struct sockaddr *)&ss, buf, len, NULL);
    else
        snprintf(buf, len, "?");
}
