/* SPDX-License-Identifier: MIT */
/*
 * control.h — the control protocol between deliveryctl and the daemon.
 *
 * Framing: over a Unix stream socket the client sends one request, a JSON
 * object on one line, {"command": NAME, "args": {...}}, and the server
 * answers one line, {"ok": true, "result": ...} or {"ok": false,
 * "error": TEXT}, then closes.  One request per connection keeps both
 * sides trivial and lets the socket's file mode be the access control.
 *
 * A command is one row in a table of ControlCommand: name and handler.
 *
 * Security: the socket is mode 0660 (root and the service group).  A
 * request is bounded (CONTROL_REQUEST_MAX), must be valid JSON no deeper
 * than jansson's limit, and a connection that does not finish its request
 * in CONTROL_TIMEOUT is closed.
 */
#pragma once

#include <jansson.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "metrics.h"

/* Big enough for "inject mail" of a mail.max_size message in base64. */
#define CONTROL_REQUEST_MAX (96 * 1024 * 1024)
#define CONTROL_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define CONTROL_CONNECTIONS_MAX 64

/* Handle one command.  On success return 0 and set *ret_result (a new
 * reference, may be left NULL for "null"); on failure return -errno and
 * optionally set *ret_error to a message for the user (malloc'd).  A
 * command that cannot answer before the loop turns (it waits for a child
 * process, a commit …) takes a handle with control_server_defer() and
 * returns CONTROL_DEFERRED. */
typedef int (*ControlHandler)(void *userdata, json_t *args, json_t **ret_result, char **ret_error);

#define CONTROL_DEFERRED 1

/* A request whose answer comes later. */
typedef struct ControlPending ControlPending;

typedef struct ControlCommand {
        const char *name;
        ControlHandler handler;
} ControlCommand;

typedef struct ControlServer ControlServer;

/* Listen on a new socket at path (mode 0660) and serve table from loop e. */
int control_server_new(sd_event *e, const char *path, const ControlCommand *table, size_t n, void *userdata,
                       Metrics *metrics, ControlServer **ret);

/* Called by a handler, and only from inside it: the request being handled
 * is answered later, by control_pending_finish(), and the handler returns
 * CONTROL_DEFERRED.  The connection's timeout stops until then (the
 * command bounds its own wait) and the connection counts as open, so that
 * a drain waits for the answer.  Returns NULL when out of memory (the
 * handler then answers now, with -ENOMEM). */
ControlPending *control_server_defer(ControlServer *s);

/* Answer a deferred request as a handler would have: r == 0 with result (a
 * reference taken over, NULL for "null"), or r < 0 with error (copied; NULL
 * for strerror(-r)).  When the client has gone away meanwhile nothing is
 * sent.  Either way p is freed: call it exactly once per deferral.  It
 * never calls back into the caller, and p does not point at the server,
 * so it may come after control_server_free(). */
void control_pending_finish(ControlPending *p, int r, json_t *result, const char *error);

/* The handler that took p answers now after all (it returns an error):
 * p is freed, and the answer is the handler's return.  Only from inside
 * that handler. */
void control_pending_cancel(ControlPending *p);

/* Stop accepting new requests; those being served finish. */
void control_server_stop_accepting(ControlServer *s);
unsigned control_server_n_connections(ControlServer *s);

ControlServer *control_server_free(ControlServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ControlServer *, control_server_free);

/* Client side: send command with args (may be NULL; reference is not
 * taken) to the daemon at path and wait up to timeout for the answer.
 * Returns 0 with *ret_result (new reference, may be json null), or -errno:
 * -ENOENT / -ECONNREFUSED when no daemon listens, -EBADMSG for a bad
 * answer, -EREMOTEIO when the daemon answered an error (message in
 * *ret_error, malloc'd). */
int control_call(const char *path, const char *command, json_t *args, uint64_t timeout_usec, json_t **ret_result,
                 char **ret_error);
