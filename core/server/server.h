/*
 * server.h — invcored's network layer: N event-loop threads, each with its
 * own epoll instance, SO_REUSEPORT listener, durable-position eventfd and
 * connections. Commands run on the loop that read them (command.h).
 *
 * Lifecycle: server_start binds and spawns the loops; server_stop (from
 * any thread, e.g. after sigwait) makes every loop stop accepting and
 * reading, flush what it owes (held replies wait for durability) within
 * SERVER_SHUTDOWN_GRACE_MS, close its clients and exit; it then joins.
 */
#ifndef INV_SERVER_SERVER_H
#define INV_SERVER_SERVER_H

#include <stddef.h>

#include "invcore.h"
#include "server/config.h"

/* Descriptors each loop holds besides its clients: epoll, listener, HTTP
 * listener, wake eventfd, durability eventfd and the spare kept for EMFILE. */
#define SERVER_FDS_PER_LOOP 6u

typedef struct server server;

/* The durability fan-out: each event loop waits on one eventfd that every
 * tenant's journal signals. Made before the tenants are opened (its hooks
 * go to inv_tenants_open, so a tenant made later is subscribed as it
 * opens), given to server_start, freed after server_free. */
typedef struct server_subs server_subs;
server_subs *server_subs_new(void);
void server_subs_free(server_subs *u);
void server_subs_hooks(server_subs *u, inv_tenant_hooks *out);

/* Binds cfg->bind:cfg->port (port 0: any free port), loads --tokens and
 * starts cfg->threads loops serving tenants. Returns 0, or -1 with a
 * message in err. */
int server_start(server **out, const server_config *cfg, inv_tenants *tenants, server_subs *subs,
                 char *err, size_t errlen);
/* Reloads --tokens (SIGHUP): INV_OK, or the error with err filled (the
 * tokens in force stay). */
int server_reload_tokens(server *s, char *err, size_t errlen);
int server_port(const server *s); /* the port actually bound */
int server_http_port(const server *s); /* the HTTP port bound; 0: off */
bool server_durable_replies(const server *s); /* replies wait for fsync */
/* Parks every event loop at the end of its iteration (no request runs,
 * the durable replies wait) and returns once all are parked or gone;
 * server_resume lets them go. One pauser at a time (the replication
 * applier): a replica's records are applied with nothing beside them. */
void server_pause(server *s);
/* Cluster mode: the node the commands consult (server/repl.h), once. */
struct repl;
void server_set_repl(server *s, struct repl *r);
void server_resume(server *s);
void server_stop(server *s); /* idempotent; joins the loops */
void server_free(server *s); /* after server_stop */

#endif /* INV_SERVER_SERVER_H */
