/* The one place where Flint opens and accepts TCP connections, control plane and data plane alike,
 * so that cluster authentication (a shared secret or TLS) can be added here and nowhere else. */
#ifndef FLINT_NET_H
#define FLINT_NET_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "flint/status.h"

typedef struct net_listener net_listener;

/* Called with a bufferevent for each accepted connection; the callee owns it. */
typedef void (*net_accept_fn)(struct bufferevent *bev, const char *peer, void *ud);

/* Listen on host:port (port 0 picks a free one; host "" or "0.0.0.0" is every address).
 * Returns NULL with err filled when the address cannot be resolved or bound. */
net_listener *net_listen(struct event_base *base, const char *host, int port, net_accept_fn fn,
                         void *ud, flint_err *err);
/* The port actually bound. */
int net_listener_port(const net_listener *l);
void net_listener_free(net_listener *l);

/* Start connecting to host:port. The returned bufferevent (owned by the caller) reports
 * BEV_EVENT_CONNECTED or an error through its event callback. NULL with err when the host does
 * not resolve or no socket can be made. */
struct bufferevent *net_connect(struct event_base *base, const char *host, int port, flint_err *err);

/* "ip:port" of the local or remote side of a connected bufferevent into buf. */
void net_local_addr(struct bufferevent *bev, char *buf, size_t len, int *port);
void net_peer_addr(struct bufferevent *bev, char *buf, size_t len);

#endif
