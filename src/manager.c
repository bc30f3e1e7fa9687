/* SPDX-License-Identifier: MIT */
/*
 * manager.c — the daemon's loop and life cycle.
 *
 * Start: store (lock, migrations) → listeners (systemd's or our own) →
 * control socket → READY=1.  SIGHUP: RELOADING=1, build a new snapshot,
 * swap it in only if valid (otherwise say why, file:line, and keep the
 * running one), READY=1.  SIGTERM/SIGINT: STOPPING=1, stop accepting,
 * let in-flight work finish until daemon.drain_timeout, exit 0.  A failed
 * store write stops the daemon at once with a non-zero exit.
 *
 * Security: see manager.h.
 */
#include "manager.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "alloc.h"
#include "aws-credentials.h"
#include "chat.h"
#include "control.h"
#include "curl-event.h"
#include "engine.h"
#include "customer.h"
#include "http.h"
#include "inbox.h"
#include "base64.h"
#include "ingress-lmtp.h"
#include "ingress-mail.h"
#include "ingress-sns.h"
#include "listen.h"
#include "log.h"
#include "mail-parser.h"
#include "metrics.h"
#include "nlu-client.h"
#include "nlu-rules.h"
#include "order-events.h"
#include "orders.h"
#include "outbox.h"
#include "outbox-smtp.h"
#include "outbox-eum.h"
#include "outbox-sns.h"
#include "stock.h"
#include "store.h"
#include "strutil.h"
#include "tracking.h"

#define DRAIN_POLL_USEC (50 * USEC_PER_MSEC)
/* After a store failure: long enough to send the 5xx/4xx answers already
 * decided, so that SNS and the MTA retry at once instead of timing out. */
#define FAILURE_ANSWER_USEC (2 * USEC_PER_SEC)

typedef enum ManagerState {
        MANAGER_STARTING,
        MANAGER_RUNNING,
        MANAGER_RELOADING,
        MANAGER_DRAINING,
        MANAGER_FAILED,
        _MANAGER_STATE_MAX,
} ManagerState;

static const char *const manager_state_table[_MANAGER_STATE_MAX] = {
        [MANAGER_STARTING] = "starting", [MANAGER_RUNNING] = "running", [MANAGER_RELOADING] = "reloading",
        [MANAGER_DRAINING] = "draining", [MANAGER_FAILED] = "failed",
};

typedef struct Listener {
        const char *name; /* "http", "lmtp": also the systemd FileDescriptorName= */
        char address[128];
        unsigned port;
        bool activated;
} Listener;

struct Manager {
        sd_event *event;
        char *config_path;
        char **overrides;
        bool verbose;

        Snapshot *snapshot;
        unsigned generation;
        uint64_t loaded_at; /* CLOCK_REALTIME, usec */
        uint64_t started_at;
        uint64_t started_mono;

        Store *store;
        Inbox *inbox;
        Outbox *outbox;
        Orders *orders;
        SmtpSender *smtp; /* mail.transport = smtp */
        OutboxSns *outbox_sns;
        OutboxEum *outbox_eum;
        CurlEvent *curl;
        /* The one AWS credentials chain (environment, shared file, container,
         * IMDS) of every AWS client: SNS/EUM transports and nlu bedrock. */
        AwsCredentialsProvider *aws_credentials;
        SnsIngress *sns;
        /* Received mail is parsed in a process of its own. */
        MailParser *mail_parser;
        /* What customers' messages mean (nlu.backend, the rules as fallback). */
        NluClient *nlu;
        Chat *chat;
        Engine *engine;
        OrderEvents *order_events; /* POST /api/orders/ID/status, a batch a loop turn */

        HttpServer *http;
        Listener http_listener;

        LmtpIngress *lmtp;
        Listener lmtp_listener;

        ControlServer *control;
        Metrics metrics;

        ManagerState state;
        sd_event_source *drain_poll;
        uint64_t drain_deadline;
        int exit_code;
        char *failure;
};

static uint64_t now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void format_rfc3339(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const Config *config(const Manager *m) {
        return m->snapshot->config;
}

static void manager_set_state(Manager *m, ManagerState s) {
        if (m->state == s)
                return;
        log_event("daemon_state old=%s new=%s", manager_state_table[m->state], manager_state_table[s]);
        m->state = s;
}

static void manager_notify_status(Manager *m, const char *prefix) {
        sd_notifyf(false, "%sSTATUS=%s: generation %u, http %s, lmtp %s", strempty(prefix),
                   m->state == MANAGER_DRAINING ? "Draining" : "Serving", m->generation,
                   *m->http_listener.address ? m->http_listener.address : "off",
                   *m->lmtp_listener.address ? m->lmtp_listener.address : "off");
}

/* ---- store ------------------------------------------------------------ */

static void manager_stop_accepting(Manager *m) {
        http_server_stop_accepting(m->http);
        lmtp_ingress_stop_accepting(m->lmtp);
        control_server_stop_accepting(m->control);
}

static int manager_start_drain(Manager *m, uint64_t timeout_usec);

/* After a failed write we cannot know what is on disk: stop everything,
 * exit non-zero, and let systemd restart us into SQLite's recovery. */
static void on_store_failure(Store *s _unused_, int error, const char *what, void *userdata) {
        Manager *m = userdata;

        log_error_errno(error,
                        "Store write failed (%s): %m. Not retrying: stopping so that deliveryd restarts from "
                        "the last committed state.",
                        what);
        free(m->failure);
        m->failure = mem_printf("store failed: %s", strerror(error < 0 ? -error : error));
        sd_notifyf(false, "STOPPING=1\nSTATUS=Store failed: %s\nERRNO=%d", strerror(error < 0 ? -error : error),
                   error < 0 ? -error : error);
        manager_set_state(m, MANAGER_FAILED);
        manager_stop_accepting(m);
        outbox_stop(m->outbox);
        m->exit_code = EXIT_FAILURE;
        /* Everything pending now fails (the store refuses writes) and is
         * answered "try again"; give those answers a moment to leave. */
        if (manager_start_drain(m, FAILURE_ANSWER_USEC) < 0)
                sd_event_exit(m->event, EXIT_FAILURE);
}

static void record_config(Manager *m, const char *result, const char *detail) {
        sqlite3_stmt *st = NULL;
        char when[32];
        int rc;

        if (store_failed(m->store))
                return;
        format_rfc3339(now_realtime(), when, sizeof when);
        rc = store_prepare_rc(m->store,
                              "INSERT INTO config_history (generation, loaded_at, path, result, detail) "
                              "VALUES (?, ?, ?, ?, ?)",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, m->generation);
                sqlite3_bind_text(st, 2, when, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, m->config_path, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, result, -1, SQLITE_STATIC);
                if (detail)
                        sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        store_finish(m->store, st);
        (void) store_check(m->store, rc, "record configuration");
}

/* ---- reload ----------------------------------------------------------- */

static void apply_log_level(Manager *m) {
        log_set_max_level(m->verbose ? LOG_DEBUG : config(m)->log_level);
}

/* Local times (the tracking page) are the store's, whatever the host's
 * zone is: TZ is set once, before anything formats a time, and not on
 * reload (store.timezone needs a restart). */
static int manager_set_timezone(Manager *m) {
        const char *tz = strempty(config(m)->store_timezone);
        _cleanup_free_ char *path = mem_printf("/usr/share/zoneinfo/%s", tz);

        if (!path)
                return log_oom();
        if (isempty(tz) || tz[0] == '/' || strstr(tz, "..") || access(path, R_OK) < 0) {
                log_warning("store.timezone '%s' is not a time zone of /usr/share/zoneinfo; times are shown in UTC.",
                            strempty(tz));
                tz = "UTC";
        }
        if (setenv("TZ", tz, 1) < 0)
                return log_error_errno(errno, "Failed to set TZ: %m");
        tzset();
        return 0;
}

/* Stock rows for the catalog's SKUs that have none yet; counts already
 * in the store are kept (the store is the truth). */
static void manager_sync_stock(Manager *m) {
        int r = stock_sync(m->store, m->snapshot->catalog);

        if (r < 0)
                log_error_errno(r, "Failed to add the catalog's new products to the stock: %m");
        else if (r > 0)
                log_info("Stock: %d product(s) added from the catalog.", r);
}

/* Returns 1 when the new configuration is in use, 0 when it was refused
 * (problems in *diags), -errno on failure. */
static int manager_reload(Manager *m, Diags *diags) {
        _cleanup_(snapshot_unrefp) Snapshot *next = NULL;
        uint64_t mono;
        int r;

        manager_set_state(m, MANAGER_RELOADING);
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &mono);
        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading configuration",
                   (unsigned long long) mono);

        r = snapshot_load(m->config_path, m->overrides, &next, diags);
        if (r == -EINVAL) {
                _cleanup_free_ char *detail = strv_join(diags->lines, "\n");
                log_error("Reload refused; keeping the running configuration (generation %u):", m->generation);
                for (size_t i = 0; i < diags->n; i++)
                        log_error("%s", diags->lines[i]);
                metrics_inc(&m->metrics, METRIC_RELOADS_REFUSED);
                record_config(m, "refused", detail);
                log_event("config_reload result=refused generation=%u problems=%zu", m->generation, diags->n);
                r = 0;
        } else if (r < 0) {
                log_error_errno(r, "Reload failed; keeping the running configuration: %m");
        } else {
                Diags warnings = {};
                r = conf_carry_over(next->config, config(m), &warnings);
                for (size_t i = 0; i < warnings.n; i++)
                        log_warning("%s", warnings.lines[i]);
                diags_merge(diags, &warnings);
                diags_clear(&warnings);
                if (r >= 0) {
                        snapshot_unref(m->snapshot);
                        m->snapshot = TAKE_PTR(next);
                        m->generation++;
                        m->loaded_at = now_realtime();
                        apply_log_level(m);
                        http_server_set_max_body(m->http, config(m)->http_max_body);
                        /* A rotated credentials file or a new role is read at the next call. */
                        aws_credentials_provider_invalidate(m->aws_credentials);
                        manager_sync_stock(m);
                        metrics_inc(&m->metrics, METRIC_RELOADS_OK);
                        record_config(m, "reloaded", NULL);
                        log_event("config_reload result=ok generation=%u path=%s", m->generation, m->config_path);
                        r = 1;
                }
        }
        if (m->state == MANAGER_RELOADING) {
                manager_set_state(m, MANAGER_RUNNING);
                manager_notify_status(m, "READY=1\n");
        }
        return r;
}

static int on_sighup(sd_event_source *s _unused_, const struct signalfd_siginfo *si _unused_, void *userdata) {
        Manager *m = userdata;
        Diags d = {};

        if (m->state == MANAGER_RUNNING)
                (void) manager_reload(m, &d);
        diags_clear(&d);
        return 0;
}

/* ---- drain ------------------------------------------------------------ */

static unsigned manager_in_flight(Manager *m) {
        return http_server_n_connections(m->http) + control_server_n_connections(m->control) +
                inbox_n_pending(m->inbox) + sns_ingress_n_pending(m->sns) + lmtp_ingress_n_pending(m->lmtp) +
                outbox_n_in_flight(m->outbox) + mail_parser_n_pending(m->mail_parser);
}

static int on_drain_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        unsigned n = manager_in_flight(m);

        if (n == 0) {
                log_info("Drained; exiting.");
                sd_event_exit(m->event, m->exit_code);
                return 0;
        }
        if (usec >= m->drain_deadline) {
                if (m->exit_code == EXIT_SUCCESS)
                        log_warning("Drain timeout reached with %u connection(s) still open; exiting.", n);
                sd_event_exit(m->event, m->exit_code);
                return 0;
        }
        (void) sd_event_source_set_time(s, usec + DRAIN_POLL_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* Poll until nothing is in flight or the deadline passed, then exit with
 * m->exit_code.  A second call only moves the deadline closer. */
static int manager_start_drain(Manager *m, uint64_t timeout_usec) {
        uint64_t now;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (m->drain_poll) {
                m->drain_deadline = MIN(m->drain_deadline, now + timeout_usec);
                return 0;
        }
        m->drain_deadline = now + timeout_usec;
        return sd_event_add_time(m->event, &m->drain_poll, CLOCK_MONOTONIC, now, DRAIN_POLL_USEC / 5, on_drain_poll, m);
}

static int on_sigterm(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->state == MANAGER_DRAINING || m->state == MANAGER_FAILED) {
                log_notice("Signal %s again while stopping; exiting now.", strsignal((int) si->ssi_signo));
                sd_event_exit(m->event, m->exit_code);
                return 0;
        }
        log_info("Received %s; no longer accepting, finishing in-flight work.", strsignal((int) si->ssi_signo));
        manager_set_state(m, MANAGER_DRAINING);
        manager_stop_accepting(m);
        outbox_stop(m->outbox); /* unsent messages stay queued in the store */
        manager_notify_status(m, "STOPPING=1\n");

        return manager_start_drain(m, config(m)->drain_timeout_usec);
}

/* ---- HTTP ------------------------------------------------------------- */

static void http_healthz(void *userdata, const HttpRequest *req _unused_, HttpResponse *resp) {
        Manager *m = userdata;

        if (store_failed(m->store) || sqlite3_db_readonly(store_db(m->store), "main") != 0)
                (void) http_response_text(resp, 503, "text/plain; charset=utf-8", "store not writable\n");
        else if (m->state == MANAGER_DRAINING || m->state == MANAGER_FAILED)
                (void) http_response_text(resp, 503, "text/plain; charset=utf-8", "draining\n");
        else
                (void) http_response_text(resp, 200, "text/plain; charset=utf-8", "ok\n");
}

static void http_metrics(void *userdata, const HttpRequest *req _unused_, HttpResponse *resp) {
        Manager *m = userdata;
        uint64_t now, bytes = 0;
        char *text;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        (void) store_size(m->store, &bytes);
        const MetricGauge gauges[] = {
                { "deliveryd_uptime_seconds", "Seconds since the daemon started.",
                  (double) (now - m->started_mono) / USEC_PER_SEC },
                { "deliveryd_config_generation", "Configuration generation, 1 at start, +1 per reload.",
                  m->generation },
                { "deliveryd_store_bytes", "Size of the database and its WAL.", (double) bytes },
                { "deliveryd_draining", "1 while the daemon is stopping.", m->state == MANAGER_DRAINING },
        };
        text = metrics_render_prometheus(&m->metrics, gauges, ELEMENTSOF(gauges));
        if (!text) {
                (void) http_response_text(resp, 500, "text/plain; charset=utf-8", "out of memory\n");
                return;
        }
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = text;
        resp->body_len = strlen(text);
}

static void http_webhook_sns(void *userdata, const HttpRequest *req, HttpResponse *resp) {
        Manager *m = userdata;

        sns_ingress_handle(m->sns, req, resp);
}

/* GET /t/TOKEN: the order's tracking page.  An unknown token and a
 * malformed one both take one exact-key look-up and get the same 404. */
static void http_tracking(void *userdata, const HttpRequest *req, HttpResponse *resp) {
        Manager *m = userdata;
        const char *token = req->path + strlen("/t/");
        json_t *order = NULL;
        char *html = NULL;
        int r;

        resp->headers = tracking_page_headers;
        /* Longer than any token: looked up as "", which no order has. */
        r = orders_get_by_token_json(m->orders, strlen(token) <= 64 ? token : "", NULL, &order);
        if (r == -ENOENT) {
                (void) http_response_text(resp, 404, "text/plain; charset=utf-8", "not found\n");
                return;
        }
        if (r >= 0) {
                r = tracking_page_html(order, config(m)->store_name, &html);
                json_decref(order);
        }
        if (r < 0) {
                (void) http_response_text(resp, 503, "text/plain; charset=utf-8", "try again later\n");
                return;
        }
        resp->status = 200;
        resp->content_type = "text/html; charset=utf-8";
        resp->body = html;
        resp->body_len = strlen(html);
}

static int order_event_answer(Manager *m, const char *canon, const char *event, json_t *data, int r, const char *why,
                              json_t **ret, char **ret_error, unsigned *ret_http);
static int order_event_id(const char *id, char canon[ORDER_ID_LEN + 1], char **ret_error, unsigned *ret_http);

/* The bearer token of the store and courier API: http.api_token_file's
 * first line, else http.api_token; NULL when there is none. */
static char *api_token(Manager *m) {
        const char *file = config(m)->http_api_token_file;
        _cleanup_fclose_ FILE *f = NULL;
        char line[512];

        if (isempty(file))
                return isempty(config(m)->http_api_token) ? NULL : mem_strdup(config(m)->http_api_token);
        f = fopen(file, "re");
        if (!f) {
                log_warning_errno(errno, "Cannot read http.api_token_file %s: %m; the API refuses everyone.", file);
                return NULL;
        }
        if (!fgets(line, sizeof line, f))
                return NULL;
        char *t = strstrip(line);
        return isempty(t) ? NULL : mem_strdup(t);
}

/* Compares in time that depends on the lengths only. */
static bool token_equal(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);
        unsigned char d = na != nb;

        for (size_t i = 0; i < na; i++)
                d |= (unsigned char) (a[i] ^ b[i % (nb ? nb : 1)]);
        return d == 0;
}

static void api_error(HttpResponse *resp, unsigned status, const char *message) {
        json_t *o = json_pack("{s:s}", "error", message ?: "error");
        char *text = o ? mem_json_dumps(o, JSON_COMPACT) : NULL;

        json_decref(o);
        if (!text) {
                (void) http_response_text(resp, 500, "text/plain; charset=utf-8", "out of memory\n");
                return;
        }
        resp->status = status;
        resp->content_type = "application/json";
        resp->body = text;
        resp->body_len = strlen(text);
}

static const char *const api_unauthorized_headers[] = { "WWW-Authenticate", "Bearer realm=\"deliveryd\"", NULL };

/* One POST /api/orders/ID/status waiting for its batch. */
typedef struct ApiEvent {
        Manager *manager;
        HttpPending *pending;
        char id[ORDER_ID_LEN + 1];
        json_t *data;
} ApiEvent;

static void api_json(HttpResponse *resp, unsigned status, json_t *o) {
        char *text = mem_json_dumps(o, JSON_COMPACT);

        if (!text) {
                api_error(resp, 500, "out of memory");
                return;
        }
        resp->status = status;
        resp->content_type = "application/json";
        resp->body = text;
        resp->body_len = strlen(text);
}

static void on_api_event_done(void *userdata, int r, const char *why) {
        ApiEvent *a = userdata;
        _cleanup_(json_decrefp) json_t *order = NULL;
        _cleanup_free_ char *error = NULL;
        HttpResponse resp = {};
        unsigned http = 503;

        r = order_event_answer(a->manager, a->id, "status", a->data, r, why, &order, &error, &http);
        if (r < 0)
                api_error(&resp, http, error ?: strerror(-r));
        else
                api_json(&resp, 202, order);
        http_pending_finish(a->pending, &resp);
        json_decref(a->data);
        free(a);
}

/* POST /api/orders/ID/status with Authorization: Bearer TOKEN and
 * {"status": "PREPARING"}: the store or the courier reports a step.
 * 401 without the token, 404 unknown order, 409 refused (with why), 400
 * a bad body, 202 accepted (the order JSON). */
static void http_api_orders(void *userdata, const HttpRequest *req, HttpResponse *resp) {
        Manager *m = userdata;
        _cleanup_free_ char *token = api_token(m), *error = NULL, *id = NULL;
        _cleanup_(json_decrefp) json_t *body = NULL, *data = NULL, *order = NULL;
        const char *auth = http_request_header(req, "Authorization");
        const char *rest = req->path + strlen("/api/orders/"), *slash = strchr(rest, '/');
        const char *status = NULL;
        unsigned http = 503;
        int r;

        if (!token || !auth || strncmp(auth, "Bearer ", 7) != 0 || !token_equal(auth + 7, token)) {
                api_error(resp, 401, "a valid Authorization: Bearer token is needed");
                resp->headers = api_unauthorized_headers;
                return;
        }
        if (!slash || !streq(slash, "/status") || slash - rest > 16) {
                api_error(resp, 404, "no such resource (POST /api/orders/ID/status)");
                return;
        }
        id = mem_strndup(rest, (size_t) (slash - rest));
        if (!id) {
                api_error(resp, 500, "out of memory");
                return;
        }
        body = json_loadb(req->body ?: "", req->body_len, JSON_REJECT_DUPLICATES, NULL);
        if (!body || json_unpack(body, "{s:s}", "status", &status) < 0) {
                api_error(resp, 400, "the body must be JSON: {\"status\": \"PREPARING\"}");
                return;
        }
        data = json_pack("{s:s}", "status", status);
        if (!data) {
                api_error(resp, 500, "out of memory");
                return;
        }
        char canon[ORDER_ID_LEN + 1];
        if (order_event_id(id, canon, &error, &http) < 0) {
                api_error(resp, http, error);
                return;
        }
        /* Answered after the commit of the batch it joins. */
        ApiEvent *a = mem_new(ApiEvent, 1);
        if (!a) {
                api_error(resp, 500, "out of memory");
                return;
        }
        a->manager = m;
        a->data = TAKE_PTR(data);
        memcpy(a->id, canon, sizeof canon);
        r = order_events_submit(m->order_events, canon, "status", a->data, on_api_event_done, a);
        if (r < 0) {
                json_decref(a->data);
                free(a);
                api_error(resp, 500, strerror(-r));
                return;
        }
        a->pending = http_request_defer(req);
}

static const HttpRoute http_routes[] = {
        { "POST", "/api/orders/", http_api_orders },
        { "GET", "/healthz", http_healthz },
        { "GET", "/t/", http_tracking },
        { "GET", "/metrics", http_metrics },
        { "POST", "/webhooks/sns", http_webhook_sns },
};

/* ---- listeners -------------------------------------------------------- */

/* The socket systemd passed under this name, else one we bind ourselves
 * from the configured address (empty: the service is off, returns
 * -ENOENT quietly). */
static int open_listener(Listener *l, const char *configured) {
        const char *reason = NULL;
        ListenAddress a;
        int fd, r;

        fd = listen_take_activated(l->name);
        if (fd >= 0)
                l->activated = true;
        else {
                if (isempty(configured))
                        return -ENOENT;
                r = listen_address_parse(configured, &a, &reason);
                if (r < 0)
                        return log_error_errno(r, "Invalid %s.listen '%s': %s", l->name, configured, reason);
                fd = listen_bind(&a, 512, 0660);
                if (fd < 0)
                        return log_error_errno(fd, "Failed to listen on %s for %s: %m", configured, l->name);
        }
        r = listen_socket_describe(fd, l->address, sizeof l->address, &l->port);
        if (r < 0) {
                close(fd);
                return log_error_errno(r, "Failed to read the address of the %s socket: %m", l->name);
        }
        log_info("Listening for %s on %s%s", l->name, l->address, l->activated ? " (socket activation)" : "");
        return fd;
}

/* ---- control commands ------------------------------------------------- */

static json_t *listener_json(const Listener *l, unsigned connections) {
        if (!*l->address)
                return json_pack("{s:b}", "enabled", 0);
        return json_pack("{s:b,s:s,s:i,s:b,s:i}", "enabled", 1, "listen", l->address, "port", (json_int_t) l->port,
                         "socket_activated", l->activated, "connections", (json_int_t) connections);
}

static int cmd_stats(void *userdata, json_t *args _unused_, json_t **ret, char **ret_error _unused_) {
        Manager *m = userdata;
        char started[32], loaded[32];
        uint64_t now, bytes = 0;
        json_t *o;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        (void) store_size(m->store, &bytes);
        format_rfc3339(m->started_at, started, sizeof started);
        format_rfc3339(m->loaded_at, loaded, sizeof loaded);

        o = json_pack("{s:s,s:s,s:i,s:s,s:I,"
                      "s:{s:s,s:i,s:s},"
                      "s:o,s:o,s:{s:s},"
                      "s:{s:s,s:i,s:I,s:s?},"
                      "s:{s:s,s:i,s:i},"
                      "s:{s:s,s:s,s:s,s:s},"
                      "s:o,s:o,s:o,s:o}",
                      "version", PACKAGE_VERSION, "state", manager_state_table[m->state], "pid", (json_int_t) getpid(),
                      "started_at", started, "uptime_seconds", (json_int_t) ((now - m->started_mono) / USEC_PER_SEC),
                      "config", "path", m->config_path, "generation", (json_int_t) m->generation, "loaded_at", loaded,
                      "http", listener_json(&m->http_listener, http_server_n_connections(m->http)), "lmtp",
                      listener_json(&m->lmtp_listener, lmtp_ingress_n_connections(m->lmtp)), "control", "socket",
                      config(m)->control_socket, "store", "path", store_path(m->store), "schema_version",
                      (json_int_t) store_schema_version(m->store), "bytes", (json_int_t) bytes, "instance_id",
                      store_instance_id(m->store), "catalog", "store_name", config(m)->store_name, "products",
                      (json_int_t) catalog_n_items(m->snapshot->catalog), "zones",
                      (json_int_t) catalog_n_zones(m->snapshot->catalog), "backends", "nlu",
                      nlu_backend_to_string(config(m)->nlu_backend), "engine",
                      engine_backend_to_string(config(m)->engine_backend), "sms",
                      sms_transport_to_string(config(m)->sms_transport), "mail",
                      mail_transport_to_string(config(m)->mail_transport), "counters", metrics_to_json(&m->metrics),
                      "inbox", inbox_counts_json(m->inbox), "outbox", outbox_counts_json(m->outbox), "mail_parser",
                      mail_parser_status_json(m->mail_parser));
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int cmd_reload(void *userdata, json_t *args _unused_, json_t **ret, char **ret_error) {
        Manager *m = userdata;
        Diags d = {};
        json_t *problems;
        int r;

        if (m->state != MANAGER_RUNNING) {
                *ret_error = mem_printf("cannot reload while %s", manager_state_table[m->state]);
                return -EBUSY;
        }
        r = manager_reload(m, &d);
        if (m->state == MANAGER_FAILED) {
                diags_clear(&d);
                *ret_error = mem_strdup("the store failed while recording the reload; deliveryd is stopping");
                return -EIO;
        }
        if (r < 0) {
                diags_clear(&d);
                return r;
        }
        problems = json_array();
        for (size_t i = 0; problems && i < d.n; i++)
                json_array_append_new(problems, json_string(d.lines[i]));
        diags_clear(&d);
        *ret = json_pack("{s:s,s:i,s:o?}", "result", r > 0 ? "reloaded" : "refused", "generation",
                         (json_int_t) m->generation, "problems", problems);
        return *ret ? 0 : -ENOMEM;
}

/* An injected message waiting for its commit to be on disk. */
typedef struct InjectWait {
        Manager *manager;
        ControlPending *pending;
} InjectWait;

static void on_inject_done(void *userdata, InboxOutcome outcome, int64_t id) {
        _cleanup_free_ InjectWait *w = userdata;
        json_t *result = NULL;

        inbox_outcome_count(outcome, &w->manager->metrics);
        if (outcome == INBOX_FAILED) {
                control_pending_finish(w->pending, -EIO, NULL, "the message could not be stored; nothing was received");
                return;
        }
        log_event("inbound id=%lld source=inject outcome=%s", (long long) id, inbox_outcome_to_string(outcome));
        result = json_pack("{s:I,s:s}", "id", (json_int_t) id, "outcome", inbox_outcome_to_string(outcome));
        control_pending_finish(w->pending, result ? 0 : -ENOMEM, result, NULL);
}

/* Hand msg to the inbox (taking it); the deferred request p is answered
 * once it is committed and on disk, like any other sender.  -errno when it
 * could not be handed on: p is the caller's still. */
static int inject_submit(Manager *m, InboxMessage *msg, ControlPending *p) {
        InjectWait *w = mem_new(InjectWait, 1);
        int r;

        if (!w) {
                inbox_message_free(msg);
                return -ENOMEM;
        }
        *w = (InjectWait){ .manager = m, .pending = p };
        r = inbox_submit(m->inbox, msg, on_inject_done, w, NULL);
        if (r < 0)
                free(w);
        return r;
}

/* An injected mail waiting for the mail parser process. */
typedef struct InjectMail {
        Manager *manager;
        ControlPending *pending;
        uint8_t *raw;
        size_t len;
} InjectMail;

static void on_inject_parsed(void *userdata, int r, MailContent *mc) {
        _cleanup_(mail_content_freep) MailContent *content = mc;
        _cleanup_free_ InjectMail *im = userdata;
        _cleanup_free_ uint8_t *raw = im->raw;
        _cleanup_free_ char *error = NULL;
        Manager *m = im->manager;
        InboxMessage **msgs = NULL;
        /* No envelope: the mail is for the first of its To addresses that is ours. */
        const MailEnvelope env = { .source = INBOX_SOURCE_INJECT };

        if (r >= 0)
                r = ingress_mail_messages_from(config(m), content, raw, im->len, &env, &msgs);
        if (r >= 0) {
                InboxMessage *msg = TAKE_PTR(msgs[0]);
                inbox_messages_free(msgs);
                if (!msg->ignore_reason)
                        msg->authenticated = 1; /* the operator vouches for it */
                r = inject_submit(m, msg, im->pending);
                if (r >= 0)
                        return;
                error = mem_strdup("the message could not be stored; nothing was received");
        } else if (mail_parser_error_is_temporary(r))
                error = mem_printf("the mail could not be read now (%s); nothing was received, try again",
                                   strerror(-r));
        else
                error = mem_printf("the mail cannot be stored: %s", strerror(-r));
        control_pending_finish(im->pending, r, NULL, error);
}

/* Answered once the mail parser process has read the mail and the inbox
 * has committed it. */
static int inject_mail(Manager *m, json_t *args, char **ret_error) {
        _cleanup_free_ InjectMail *im = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        MailParserRequest *req = NULL;
        const char *b64 = NULL;
        size_t len = 0;
        int r;

        if (json_unpack(args, "{s:s}", "raw_base64", &b64) < 0) {
                *ret_error = mem_strdup("inject mail needs raw_base64");
                return -EINVAL;
        }
        r = base64_decode(b64, strlen(b64), &raw, &len);
        if (r < 0) {
                *ret_error = mem_strdup("raw_base64 is not valid base64");
                return r;
        }
        if (len > config(m)->mail_max_size) {
                *ret_error = mem_printf("the mail is larger than mail.max_size (%llu bytes)",
                                        (unsigned long long) config(m)->mail_max_size);
                return -EFBIG;
        }
        if (strv_length(config(m)->mail_addresses) == 0) {
                *ret_error = mem_strdup("mail.addresses is empty: no address of ours to deliver to");
                return -EDESTADDRREQ;
        }
        im = mem_new(InjectMail, 1);
        if (!im)
                return -ENOMEM;
        const MailEnvelope env = { .source = INBOX_SOURCE_INJECT };
        r = ingress_mail_parse(m->mail_parser, config(m), raw, len, &env, on_inject_parsed, im, &req);
        if (r < 0)
                return r;
        im->pending = control_server_defer(m->control);
        if (!im->pending) {
                mail_parser_cancel(req);
                return -ENOMEM;
        }
        *im = (InjectMail){ .manager = m, .pending = im->pending, .raw = TAKE_PTR(raw), .len = len };
        TAKE_PTR(im);
        return CONTROL_DEFERRED;
}

static int cmd_inject(void *userdata, json_t *args, json_t **ret _unused_, char **ret_error) {
        Manager *m = userdata;
        _cleanup_(inbox_message_freep) InboxMessage *msg = NULL;
        const char *channel = NULL, *from = NULL, *text = NULL;
        ControlPending *p;
        int r;
        char key[64];
        uint8_t rnd[12];

        if (m->state != MANAGER_RUNNING) {
                *ret_error = mem_printf("not accepting messages while %s", manager_state_table[m->state]);
                return -EBUSY;
        }
        if (json_unpack(args, "{s:s}", "channel", &channel) < 0) {
                *ret_error = mem_strdup("inject needs a channel");
                return -EINVAL;
        }
        if (streq(channel, "email"))
                return inject_mail(m, args, ret_error);
        if (!streq(channel, "sms")) {
                *ret_error = mem_printf("cannot inject channel '%s' (sms or email)", channel);
                return -EOPNOTSUPP;
        }
        if (json_unpack(args, "{s:s,s:s}", "from", &from, "text", &text) < 0) {
                *ret_error = mem_strdup("inject sms needs from and text");
                return -EINVAL;
        }
        if (!customer_phone_valid(from)) {
                *ret_error = mem_printf("'%s' is not a phone number in E.164 form (e.g. +5511987654321)", from);
                return -EINVAL;
        }
        if (strlen(text) == 0 || strlen(text) > config(m)->sms_max_length) {
                *ret_error = mem_printf("the text must have 1 to %llu bytes (sms.max_length), not %zu",
                                        (unsigned long long) config(m)->sms_max_length, strlen(text));
                return -EMSGSIZE;
        }

        msg = inbox_message_new(INBOX_SMS, INBOX_SOURCE_INJECT);
        if (!msg)
                return -ENOMEM;
        /* Each injection is a message of its own. */
        if (getentropy(rnd, sizeof rnd) < 0)
                return -errno;
        size_t k = strscpy(key, sizeof key, "inject:");
        for (size_t i = 0; i < sizeof rnd; i++)
                k += (size_t) snprintf(key + k, sizeof key - k, "%02x", rnd[i]);
        if (inbox_message_add_key(msg, key) < 0)
                return -ENOMEM;
        msg->customer = mem_strdup(from);
        msg->body = mem_strdup(text);
        msg->authenticated = 1; /* the operator vouches for it */
        if (!msg->customer || !msg->body)
                return -ENOMEM;
        p = control_server_defer(m->control);
        if (!p)
                return -ENOMEM;
        r = inject_submit(m, TAKE_PTR(msg), p);
        if (r < 0) {
                control_pending_cancel(p); /* answered now, below */
                *ret_error = mem_strdup("the message could not be stored; nothing was received");
                return r;
        }
        return CONTROL_DEFERRED;
}

static int cmd_inbox(void *userdata, json_t *args, json_t **ret, char **ret_error _unused_) {
        Manager *m = userdata;
        json_int_t limit = 1000;

        if (args)
                (void) json_unpack(args, "{s?I}", "limit", &limit);
        *ret = inbox_list_json(m->inbox, (unsigned) MAX(0, MIN(limit, 100000)));
        return *ret ? 0 : -ENOMEM;
}

static int cmd_outbox(void *userdata, json_t *args, json_t **ret, char **ret_error _unused_) {
        Manager *m = userdata;
        json_int_t limit = 1000;

        if (args)
                (void) json_unpack(args, "{s?I}", "limit", &limit);
        *ret = outbox_list_json(m->outbox, (unsigned) MAX(0, MIN(limit, 100000)));
        return *ret ? 0 : -ENOMEM;
}

/* outbox-retry and outbox-drop: {"id": N} → {"id": N, "status": S}. */
static int outbox_operator(Manager *m, json_t *args, bool drop, json_t **ret, char **ret_error) {
        const char *status = NULL;
        json_int_t id = 0;
        int r;

        if (!args || json_unpack(args, "{s:I}", "id", &id) < 0 || id <= 0) {
                *ret_error = mem_printf("outbox-%s needs an id", drop ? "drop" : "retry");
                return -EINVAL;
        }
        r = drop ? outbox_drop(m->outbox, id, &status) : outbox_retry(m->outbox, id, &status);
        if (r == -ENOENT) {
                *ret_error = mem_printf("no outbound message %lld", (long long) id);
                return r;
        }
        if (r == -EBUSY) {
                *ret_error = mem_printf(drop ? "message %lld is %s and cannot be dropped"
                                             : "message %lld is %s; only failed or deferred messages can be retried",
                                        (long long) id, strempty(status));
                return r;
        }
        if (r < 0)
                return r;
        log_event("outbox_%s id=%lld by=operator", drop ? "dropped" : "retried", (long long) id);
        *ret = json_pack("{s:I,s:s}", "id", id, "status", drop ? "failed" : "queued");
        return *ret ? 0 : -ENOMEM;
}

static int cmd_outbox_retry(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        return outbox_operator(userdata, args, false, ret, ret_error);
}

static int cmd_outbox_drop(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        return outbox_operator(userdata, args, true, ret, ret_error);
}

static int cmd_orders(void *userdata, json_t *args, json_t **ret, char **ret_error _unused_) {
        Manager *m = userdata;
        json_int_t limit = 1000;

        if (args)
                (void) json_unpack(args, "{s?I}", "limit", &limit);
        *ret = orders_list_json(m->orders, config(m)->http_public_url, (unsigned) MAX(0, MIN(limit, 100000)));
        return *ret ? 0 : -ENOMEM;
}

/* {"id": ID} → the order JSON. */
static int cmd_order(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        Manager *m = userdata;
        const char *id = NULL;
        int r;

        if (!args || json_unpack(args, "{s:s}", "id", &id) < 0) {
                *ret_error = mem_strdup("order needs an id");
                return -EINVAL;
        }
        r = orders_get_json(m->orders, id, config(m)->http_public_url, ret);
        if (r == -EINVAL)
                *ret_error = mem_printf("'%.40s' is not an order id (6 letters and digits, like #7KQ2XM)", id);
        else if (r == -ENOENT)
                *ret_error = mem_printf("no order %.40s", id);
        return r;
}

/* The workflow execution of an order: status, current state, next
 * deadline and its history (GetExecutionHistory events). */
static int cmd_order_execution(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        Manager *m = userdata;
        char id[ORDER_ID_LEN + 1];
        const char *text = NULL;
        int r;

        if (!args || json_unpack(args, "{s:s}", "id", &text) < 0) {
                *ret_error = mem_strdup("order-execution needs an id");
                return -EINVAL;
        }
        if (order_id_parse(text, id) < 0) {
                *ret_error = mem_printf("'%.40s' is not an order id (6 letters and digits, like #7KQ2XM)", text);
                return -EINVAL;
        }
        r = engine_execution_json(m->engine, id, ret);
        if (r == -ENOENT)
                *ret_error = mem_printf("no workflow execution for order %s", id);
        return r;
}

/* The customer as the inbox stores them: E.164 as given, e-mail lower-cased. */
static int customer_arg(json_t *args, char **ret, char **ret_error) {
        const char *who = NULL;

        if (!args || json_unpack(args, "{s:s}", "customer", &who) < 0) {
                *ret_error = mem_strdup("a customer (E.164 phone number or e-mail address) is needed");
                return -EINVAL;
        }
        if (strchr(who, '@'))
                return customer_email_normalize(who, ret) < 0
                        ? (*ret_error = mem_printf("'%s' is not an e-mail address", who), -EINVAL)
                        : 0;
        if (!customer_phone_valid(who)) {
                *ret_error = mem_printf("'%s' is not an E.164 phone number (+5511…) or an e-mail address", who);
                return -EINVAL;
        }
        *ret = mem_strdup(who);
        return *ret ? 0 : -ENOMEM;
}

static int cmd_conversation(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        Manager *m = userdata;
        _cleanup_free_ char *who = NULL;
        int r = customer_arg(args, &who, ret_error);

        if (r < 0)
                return r;
        *ret = chat_conversation_json(m->chat, who, &r);
        if (!*ret && r == -ENOENT)
                *ret_error = mem_printf("no conversation with %s", who);
        return *ret ? 0 : r;
}

static int cmd_conversation_resume(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        Manager *m = userdata;
        _cleanup_free_ char *who = NULL;
        int r = customer_arg(args, &who, ret_error);

        if (r < 0)
                return r;
        r = chat_resume(m->chat, who);
        if (r == -ENOENT)
                *ret_error = mem_printf("no conversation with %s", who);
        else if (r == -ESRCH)
                *ret_error = mem_printf("the conversation with %s is not with a person", who);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s, s:s}", "customer", who, "status", "resumed");
        return *ret ? 0 : -ENOMEM;
}

/* What the answer to an order event says, once its transaction is over
 * (r as engine_event_in_txn() returned it, or the commit's error): on
 * success the order as JSON in *ret; else a message for the sender and
 * the HTTP status in *ret_http. */
static int order_event_answer(Manager *m, const char *canon, const char *event, json_t *data, int r, const char *why,
                              json_t **ret, char **ret_error, unsigned *ret_http) {
        switch (r) {
        case 0:
                break;
        case -ENOENT:
                *ret_error = mem_printf("no order %s", canon);
                *ret_http = 404;
                return r;
        case -EPERM:
        case -EINVAL:
                *ret_error = mem_printf("order %s: refused: %s", canon, strempty(why));
                *ret_http = r == -EPERM ? 409 : 400;
                return r;
        case -EBUSY:
                *ret_error = why
                        ? mem_printf("order %s: not now: %s", canon, why)
                        : mem_printf("order %s is between two steps of its workflow; try again in a moment", canon);
                *ret_http = 503;
                return r;
        default:
                *ret_http = 503;
                return r;
        }
        log_event("order_event order=%s event=%s%s%s", canon, event, data ? " status=" : "",
                  data ? strempty(json_string_value(json_object_get(data, "status"))) : "");
        *ret_http = 202;
        return orders_get_json(m->orders, canon, config(m)->http_public_url, ret);
}

/* The canonical form of an order id, or a 404 answer. */
static int order_event_id(const char *id, char canon[ORDER_ID_LEN + 1], char **ret_error, unsigned *ret_http) {
        if (order_id_parse(id, canon) < 0) {
                *ret_error = mem_printf("'%.40s' is not an order id (6 letters and digits, like #7KQ2XM)", id);
                *ret_http = 404;
                return -EINVAL;
        }
        return 0;
}

/* order-set-status {"id", "status"} and order-paid {"id"}: an event for the
 * order's workflow, committed before the answer. */
static int order_event(Manager *m, const char *id, const char *event, json_t *data, json_t **ret, char **ret_error,
                       unsigned *ret_http) {
        const char *why = NULL;
        char canon[ORDER_ID_LEN + 1];
        int r;

        r = order_event_id(id, canon, ret_error, ret_http);
        if (r < 0)
                return r;
        r = store_begin(m->store);
        if (r < 0)
                return r;
        r = engine_event_in_txn(m->engine, canon, event, data, &why);
        if (r >= 0)
                r = store_commit(m->store);
        else
                store_rollback(m->store);
        if (r >= 0) {
                engine_kick(m->engine);
                outbox_kick(m->outbox);
        }
        return order_event_answer(m, canon, event, data, r, why, ret, ret_error, ret_http);
}

static int cmd_order_set_status(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        _cleanup_(json_decrefp) json_t *data = NULL;
        const char *id = NULL, *status = NULL;
        unsigned http;

        if (!args || json_unpack(args, "{s:s,s:s}", "id", &id, "status", &status) < 0) {
                *ret_error = mem_strdup("order-set-status needs an id and a status");
                return -EINVAL;
        }
        data = json_pack("{s:s}", "status", status);
        if (!data)
                return -ENOMEM;
        return order_event(userdata, id, "status", data, ret, ret_error, &http);
}

static int cmd_order_paid(void *userdata, json_t *args, json_t **ret, char **ret_error) {
        const char *id = NULL;
        unsigned http;

        if (!args || json_unpack(args, "{s:s}", "id", &id) < 0) {
                *ret_error = mem_strdup("order-paid needs an id");
                return -EINVAL;
        }
        return order_event(userdata, id, "paid", NULL, ret, ret_error, &http);
}

static const ControlCommand control_commands[] = {
        { "order-set-status", cmd_order_set_status },
        { "order-paid", cmd_order_paid },
        { "order-execution", cmd_order_execution },
        { "orders", cmd_orders },
        { "order", cmd_order },
        { "stats", cmd_stats },
        { "reload", cmd_reload },
        { "inject", cmd_inject },
        { "inbox", cmd_inbox },
        { "outbox", cmd_outbox },
        { "outbox-retry", cmd_outbox_retry },
        { "outbox-drop", cmd_outbox_drop },
        { "conversation", cmd_conversation },
        { "conversation-resume", cmd_conversation_resume },
};

/* ---- life cycle ------------------------------------------------------- */

int manager_new(const char *config_path, char *const *overrides, Snapshot *snapshot, bool verbose, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = mem_new(Manager, 1);
        if (!m)
                return -ENOMEM;
        m->http_listener.name = "http";
        m->lmtp_listener.name = "lmtp";
        m->verbose = verbose;
        m->config_path = mem_strdup(config_path);
        m->overrides = strv_copy(overrides);
        if (!m->config_path || !m->overrides)
                return -ENOMEM;
        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        m->snapshot = snapshot;
        *ret = TAKE_PTR(m);
        return 0;
}

static Snapshot *current_snapshot(void *userdata) {
        Manager *m = userdata;
        return m->snapshot;
}

/* ---- what the conversation does to orders ------------------------------ */

static int64_t chat_stock(void *userdata, const char *sku) {
        Manager *m = userdata;
        int64_t n;

        return stock_available(m->store, sku, &n) < 0 ? -1 : n;
}

/* "2026-12-04T18:15:00Z" → usec; 0 when it is not one. */
static uint64_t parse_utc(const char *s) {
        struct tm tm = {};
        const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

        if (!end)
                return 0;
        time_t t = timegm(&tm);
        return t < 0 ? 0 : (uint64_t) t * USEC_PER_SEC;
}

static int chat_find_order(void *userdata, const char *customer, const char *id, ConvOrder *ret) {
        Manager *m = userdata;
        char latest[ORDER_ID_LEN + 1];
        json_t *o = NULL;
        int r;

        if (!id) {
                r = orders_latest_active(m->orders, customer, latest);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                id = latest;
        }
        r = orders_get_for_customer(m->orders, id, customer, NULL, &o);
        if (r == -ENOENT || r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        *ret = (ConvOrder){};
        strscpy(ret->id, sizeof ret->id, json_string_value(json_object_get(o, "id")) ?: id);
        strscpy(ret->status, sizeof ret->status, json_string_value(json_object_get(o, "status")) ?: "CREATED");
        ret->eta_usec = parse_utc(json_string_value(json_object_get(o, "eta")));
        ret->fee_cents = json_integer_value(json_object_get(o, "delivery_fee_cents"));
        ret->total_cents = json_integer_value(json_object_get(o, "total_cents"));
        json_decref(o);
        return 1;
}

_Static_assert((int) ORDER_PAYMENT_PIX == (int) NLU_PAYMENT_PIX && (int) ORDER_PAYMENT_CARD == (int) NLU_PAYMENT_CARD &&
                       (int) ORDER_PAYMENT_CASH == (int) NLU_PAYMENT_CASH,
               "payment methods are the same in both enums");

static int chat_create_order(void *userdata, const char *customer, bool email, const char *thread_id,
                             const char *subject, const ConvDraft *d, char ret_id[static NLU_ORDER_ID_LEN + 1]) {
        Manager *m = userdata;
        _cleanup_free_ OrderItemDraft *items = mem_new(OrderItemDraft, d->n_lines + 1);
        char token[ORDER_TOKEN_LEN + 1];
        const Zone *zone = NULL;

        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_lines; i++)
                items[i] = (OrderItemDraft){ .sku = d->lines[i].sku,
                                             .name = d->lines[i].name,
                                             .qty = d->lines[i].qty,
                                             .unit_price_cents = d->lines[i].unit_price_cents };
        for (size_t i = 0; i < catalog_n_zones(m->snapshot->catalog); i++)
                if (streq(catalog_zone(m->snapshot->catalog, i)->id, d->zone))
                        zone = catalog_zone(m->snapshot->catalog, i);
        const OrderDraft od = {
                .customer = customer,
                .channel = email ? "email" : "sms",
                .lang = nlu_lang_to_string(d->lang),
                .address = d->address,
                .zone = d->zone,
                .zone_name = zone ? zone->name : NULL,
                .delivery_fee_cents = d->fee_cents,
                .payment = (OrderPayment) d->payment,
                .change_for_cents = d->change_for_cents,
                .eta_usec = d->eta_usec,
                .mail_message_id = email ? thread_id : NULL,
                .mail_subject = email ? subject : NULL,
                .items = items,
                .n_items = d->n_lines,
        };
        int r = orders_create_in_txn(m->orders, &od, now_realtime(), ret_id, token);
        if (r < 0)
                return r;
        /* The workflow starts with the order, in the same transaction; it
         * runs once the turn is committed. */
        r = engine_start_in_txn(m->engine, ret_id, NULL);
        if (r < 0)
                return r;
        engine_kick(m->engine);
        return 0;
}

/* The customer asked to cancel or to change the address: an event for the
 * order's workflow, in the turn's transaction.  A refusal is a reply with
 * the reason (the status the order is in), not a failed turn. */
static int chat_order_request(void *userdata, const char *customer, ConvRequestKind kind, const char *order_id,
                              const char *address) {
        Manager *m = userdata;
        bool cancel = kind == CONV_REQUEST_CANCEL;
        _cleanup_(json_decrefp) json_t *data = NULL, *order = NULL;
        const char *why = NULL;
        int r;

        log_event("order_request order=%s customer=%s kind=%s", order_id, customer,
                  cancel ? "cancel" : "change_address");
        if (!cancel) {
                data = json_pack("{s:s}", "address", strempty(address));
                if (!data)
                        return -ENOMEM;
        }
        r = engine_event_in_txn(m->engine, order_id, cancel ? "cancel" : "change_address", data, &why);
        if (r >= 0) {
                engine_kick(m->engine);
                return 0;
        }
        if (r == -EPERM || r == -EINVAL) {
                log_event("order_request_refused order=%s reason=\"%s\"", order_id, strempty(why));
                r = orders_get_json(m->orders, order_id, NULL, &order);
                if (r < 0)
                        return r;
                r = engine_notify_in_txn(m->engine, order_id, cancel ? "cancel_refused" : "change_address_refused",
                                         json_string_value(json_object_get(order, "status")));
                if (r < 0)
                        return r;
                outbox_kick(m->outbox);
                return 1;
        }
        if (r == -EBUSY) {
                /* Between two steps (a retry): the customer was told the
                 * request was forwarded; the store sees it here. */
                log_warning("Order %s: the %s request came while its workflow was between two steps; handle it by "
                            "hand.",
                            order_id, cancel ? "cancel" : "address change");
                return 0;
        }
        if (r == -ENOENT) {
                log_notice("Order %s: no workflow waits for the %s request; handle it by hand.", order_id,
                           cancel ? "cancel" : "address change");
                return 0;
        }
        return r;
}

/* STOP and START take effect before the message is acknowledged, so that
 * nothing else reaches a customer who said STOP, even if the daemon stops
 * before the conversation answers. */
static int inbox_store_hook(void *userdata, const InboxMessage *msg, int64_t id _unused_) {
        Manager *m = userdata;
        _cleanup_(nlu_result_freep) NluResult *r = NULL;
        /* The rules whatever nlu.backend says: this runs before the
         * acknowledgement, and only the intent and signals matter. */
        int k = nlu_rules_parse_intent(m->snapshot->nlu_rules, msg->body, strlen(msg->body),
                                       m->snapshot->config->nlu_max_input, &r);

        if (k < 0)
                return k;
        if (r->intent == NLU_INTENT_OPT_OUT)
                return outbox_set_opt_out_in_txn(m->outbox, msg->customer, true);
        if (nlu_result_has(r, NLU_SIGNAL_OPT_IN))
                return outbox_set_opt_out_in_txn(m->outbox, msg->customer, false);
        return 0;
}

static ChatHooks manager_chat_hooks(Manager *m) {
        return (ChatHooks){
                .stock = chat_stock,
                .find_order = chat_find_order,
                .create_order = chat_create_order,
                .order_request = chat_order_request,
                .userdata = m,
        };
}

static int manager_new_engine(Manager *m) {
        _cleanup_free_ char *error = NULL;
        const EngineContext ctx = {
                .event = m->event,
                .store = m->store,
                .orders = m->orders,
                .outbox = m->outbox,
                .snapshot = current_snapshot,
                .userdata = m,
                .curl = m->curl,
                .credentials = m->aws_credentials,
        };
        int r = engine_new(&ctx, &m->engine, &error);

        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to set up the order workflow: %s", error ? error : strerror(-r));
        log_info("Order workflow: engine.backend=%s, %s.", engine_backend_name(m->engine),
                 config(m)->engine_definition);
        r = order_events_new(m->event, m->store, m->engine, m->outbox, &m->order_events);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the order events: %m");
        return 0;
}

static Snapshot *chat_snapshot(void *userdata) {
        Manager *m = userdata;
        return m->snapshot;
}

static int manager_new_chat(Manager *m) {
        /* Bedrock (nlu.backend = bedrock) with the daemon's credentials chain. */
        const NluClientOptions nlu_options = {
                .curl = m->curl,
                .credentials = m->aws_credentials,
                .metrics = &m->metrics,
        };
        int r = nlu_client_new_with(m->event, &nlu_options, &m->nlu);

        if (r < 0)
                return log_error_errno(r, "Failed to set up the NLU client: %m");
        const ChatContext ctx = {
                .event = m->event,
                .store = m->store,
                .inbox = m->inbox,
                .outbox = m->outbox,
                .nlu = m->nlu,
                .metrics = &m->metrics,
                .snapshot = chat_snapshot,
                .userdata = m,
                .hooks = manager_chat_hooks(m),
        };
        r = chat_new(&ctx, &m->chat);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the conversation: %m");
        inbox_set_store_hook(m->inbox, inbox_store_hook, m);
        return 0;
}

static int manager_start_sns(Manager *m) {
        _cleanup_free_ char *dir = mem_printf("%s/sns-certificates", config(m)->state_directory);
        int r;

        if (!dir)
                return log_oom();
        /* Downloaded signing certificates go here unless sns.certificate_cache says otherwise. */
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create %s: %m", dir);
        const SnsIngressContext ctx = {
                .event = m->event,
                .verify_threads = (unsigned) config(m)->sns_verify_threads,
                .store = m->store,
                .inbox = m->inbox,
                .parser = m->mail_parser,
                .curl = m->curl,
                .metrics = &m->metrics,
                .snapshot = current_snapshot,
                .userdata = m,
                .state_directory = config(m)->state_directory,
        };
        r = sns_ingress_new(&ctx, &m->sns);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the SNS webhook: %m");
        return 0;
}

static int manager_start_mail_parser(Manager *m) {
        const MailParserOptions o = { .memory_limit = config(m)->mail_parser_memory_limit };
        int r = mail_parser_new(m->event, &o, &m->mail_parser);

        if (r < 0)
                return log_error_errno(r, "Failed to set up the mail parser: %m");
        /* Now, so that the first mail does not wait for it; if it cannot
         * start, each mail tries again. */
        r = mail_parser_start(m->mail_parser);
        if (r < 0)
                log_warning_errno(r, "Cannot start the mail parser process: %m");
        return 0;
}

static int manager_new_outbox(Manager *m) {
        const char *sms = sms_transport_to_string(config(m)->sms_transport);
        const char *mail = mail_transport_to_string(config(m)->mail_transport);
        OutboxOptions o = {
                .transport = { [OUTBOX_SMS] = outbox_transport_find(sms),
                               [OUTBOX_EMAIL] = outbox_transport_find(mail) },
                .lifetime_usec = { [OUTBOX_SMS] = config(m)->sms_lifetime_usec,
                                   [OUTBOX_EMAIL] = config(m)->mail_lifetime_usec },
                .sms_max_per_second = config(m)->sms_max_per_second,
                .metrics = &m->metrics,
        };
        int r;

        if (config(m)->mail_transport == MAIL_TRANSPORT_SMTP) {
                const Config *c = config(m);
                _cleanup_free_ char *username = NULL;
                char *password = NULL;
                SmtpOptions so = {
                        .host = c->smtp_host,
                        .port = (unsigned) c->smtp_port,
                        .starttls = (SmtpStarttls) c->smtp_starttls,
                        .timeout_usec = c->smtp_timeout_usec,
                        .from = c->mail_from,
                };
                if (isempty(c->mail_from) || !strchr(c->mail_from, '@')) {
                        log_error("mail.transport=smtp needs mail.from, the address e-mail is sent from "
                                  "(local@domain); it is '%s'.",
                                  strempty(c->mail_from));
                        return -EINVAL;
                }
                if (!isempty(c->smtp_credentials_file)) {
                        r = smtp_credentials_read(c->smtp_credentials_file, &username, &password);
                        if (r == -ENOKEY || r == -EINVAL) {
                                log_error("smtp.credentials_file %s needs non-empty 'username = ' and 'password = ' "
                                          "lines.",
                                          c->smtp_credentials_file);
                                return r;
                        }
                        if (r < 0)
                                return log_error_errno(r, "Failed to read smtp.credentials_file %s: %m",
                                                       c->smtp_credentials_file);
                        so.username = username;
                        so.password = password;
                }
                r = smtp_sender_new(m->event, &so, &m->smtp);
                if (password) {
                        explicit_bzero(password, strlen(password));
                        free(password);
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the SMTP transport (mail.from=%s): %m",
                                               c->mail_from);
                o.transport_data[OUTBOX_EMAIL] = m->smtp;
        }

        if (config(m)->sms_transport == SMS_TRANSPORT_SNS || config(m)->sms_transport == SMS_TRANSPORT_EUM) {
                bool sns = config(m)->sms_transport == SMS_TRANSPORT_SNS;

                if (sns) {
                        const OutboxSnsOptions so = {
                                .curl = m->curl,
                                .region = config(m)->aws_region,
                                .endpoint = config(m)->aws_endpoint_sns,
                                .sender_id = config(m)->sms_sender_id,
                                .origination_number = config(m)->sms_origination_number,
                                .provider = m->aws_credentials,
                                .connect_to = config(m)->http_client_connect_to,
                                .ca_file = config(m)->http_client_ca_file,
                        };
                        r = outbox_sns_new(&so, &m->outbox_sns);
                        o.transport_data[OUTBOX_SMS] = m->outbox_sns;
                } else {
                        const OutboxEumOptions eo = {
                                .curl = m->curl,
                                .region = config(m)->aws_region,
                                .endpoint = config(m)->aws_endpoint_eum,
                                .origination_identity = config(m)->sms_origination_number,
                                .provider = m->aws_credentials,
                                .connect_to = config(m)->http_client_connect_to,
                                .ca_file = config(m)->http_client_ca_file,
                        };
                        r = outbox_eum_new(&eo, &m->outbox_eum);
                        o.transport_data[OUTBOX_SMS] = m->outbox_eum;
                }
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the %s transport (aws.endpoint_%s=%s): %m",
                                               sns ? "SNS" : "End User Messaging SMS", sns ? "sns" : "eum",
                                               sns ? config(m)->aws_endpoint_sns : config(m)->aws_endpoint_eum);
        }

        /* A transport this version does not have: that channel's messages wait in
         * the store until a version that has it starts. */
        if (!o.transport[OUTBOX_SMS])
                log_warning("sms.transport=%s is not available in this version; outbound SMS stay queued.", sms);
        if (!o.transport[OUTBOX_EMAIL])
                log_warning("mail.transport=%s is not available in this version; outbound e-mail stays queued.", mail);
        r = outbox_new(m->event, m->store, &o, &m->outbox);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the outbox: %m");
        return 0;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *error = NULL;
        sigset_t mask;
        int fd, r;

        m->started_at = m->loaded_at = now_realtime();
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &m->started_mono);
        m->generation = 1;
        apply_log_level(m);
        r = manager_set_timezone(m);
        if (r < 0)
                return r;

        r = store_open(config(m)->state_directory, &m->store, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to open the store: %s", error ? error : strerror(-r));
        store_set_failure_handler(m->store, on_store_failure, m);
        r = store_attach_sync(m->store, m->event);
        if (r < 0)
                /* Correct without it: every commit waits for the disk. */
                log_warning_errno(r, "Failed to start the store's sync thread, committing synchronously: %m");
        r = inbox_new(m->event, m->store, &m->inbox);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the inbox: %m");
        r = orders_new(m->store, &m->orders);
        if (r < 0)
                return log_oom();
        r = stock_sync(m->store, m->snapshot->catalog);
        if (r < 0)
                return log_error_errno(r, "Failed to seed the stock from the catalog: %m");
        r = curl_event_new(m->event, &m->curl);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP client: %m");
        /* Nothing is read before the first AWS call; temporary credentials are
         * refreshed before they expire. */
        r = aws_credentials_provider_new(m->event, m->curl, NULL, &m->aws_credentials);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the AWS credentials provider: %m");
        r = manager_new_outbox(m);
        if (r < 0)
                return r;
        r = manager_start_mail_parser(m);
        if (r < 0)
                return r;
        r = manager_start_sns(m);
        if (r < 0)
                return r;
        r = manager_new_engine(m);
        if (r < 0)
                return r;
        r = manager_new_chat(m);
        if (r < 0)
                return r;
        log_info("Store %s open (schema version %d).", store_path(m->store), store_schema_version(m->store));

        /* main() blocked these already; sd-event requires them blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m)) < 0)
                return log_error_errno(r, "Failed to set up signal handlers: %m");

        fd = open_listener(&m->http_listener, config(m)->http_listen);
        if (fd >= 0) {
                const HttpOptions o = {
                        .max_body = config(m)->http_max_body,
                        .connection_timeout_usec = config(m)->http_connection_timeout_usec,
                        .header_timeout_usec = config(m)->http_header_timeout_usec,
                        .body_timeout_usec = config(m)->http_body_timeout_usec,
                        .max_connections = (unsigned) config(m)->http_max_connections,
                        .max_connections_per_ip = (unsigned) config(m)->http_max_connections_per_ip,
                };
                r = http_server_new(m->event, fd, &o, http_routes, ELEMENTSOF(http_routes), m, &m->metrics, &m->http);
                if (r < 0)
                        return log_error_errno(r, "Failed to start the HTTP service: %m");
        } else if (fd != -ENOENT)
                return fd;

        fd = open_listener(&m->lmtp_listener, config(m)->lmtp_listen);
        if (fd >= 0) {
                const LmtpIngressContext lctx = {
                        .inbox = m->inbox,
                        .parser = m->mail_parser,
                        .metrics = &m->metrics,
                        .snapshot = current_snapshot,
                        .userdata = m,
                };
                r = lmtp_ingress_new(m->event, fd, &lctx, &m->lmtp);
                if (r < 0)
                        return log_error_errno(r, "Failed to start the LMTP service: %m");
        } else if (fd != -ENOENT)
                return fd;

        for (const char *const *l = listen_activated_leftovers(); *l; l++)
                log_warning("Ignoring a socket passed by systemd with unknown name '%s' (expected http or lmtp).", *l);

        r = control_server_new(m->event, config(m)->control_socket, control_commands, ELEMENTSOF(control_commands), m,
                               &m->metrics, &m->control);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on control socket %s: %m", config(m)->control_socket);

        record_config(m, "started", NULL);
        if (store_failed(m->store))
                return -EIO;

        (void) sd_event_set_watchdog(m->event, true);
        manager_set_state(m, MANAGER_RUNNING);
        log_event("daemon_ready generation=%u http=%s lmtp=%s control=%s", m->generation,
                  *m->http_listener.address ? m->http_listener.address : "off",
                  *m->lmtp_listener.address ? m->lmtp_listener.address : "off", config(m)->control_socket);
        manager_notify_status(m, "READY=1\n");
        /* Sending starts once we are up: a message sent before READY could
         * not be listed or retried by the operator yet. */
        r = outbox_start(m->outbox);
        if (r < 0)
                return log_error_errno(r, "Failed to start the outbox sender: %m");
        /* Messages waiting from before (and every new one) are answered now. */
        /* Executions resume where they were: timers from the store. */
        r = engine_start(m->engine);
        if (r < 0)
                return log_error_errno(r, "Failed to resume the order workflows: %m");
        r = chat_start(m->chat);
        if (r < 0)
                return log_error_errno(r, "Failed to start the conversation: %m");
        return 0;
}

int manager_run(Manager *m) {
        int r = sd_event_loop(m->event);

        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_FAILURE;
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->drain_poll = sd_event_source_disable_unref(m->drain_poll);
        /* First: mail it still holds is answered "try again" (503, 451, an
         * error) while the webhook, the LMTP and control servers can. */
        mail_parser_free(m->mail_parser);
        /* The webhook answers what it still holds (503: SNS retries) before
         * the HTTP server and the inbox it uses go away. */
        /* Before the HTTP server: its requests are answered while it can. */
        order_events_free(m->order_events);
        sns_ingress_free(m->sns);
        http_server_free(m->http);
        control_server_free(m->control);
        /* Freed before the LMTP server: deliveries still waiting for a commit
         * are answered 451 while the server can take the answers. */
        chat_free(m->chat); /* before the inbox: its turns hold messages */
        engine_free(m->engine); /* before the outbox and orders it uses */
        nlu_client_free(m->nlu);
        inbox_free(m->inbox);
        outbox_free(m->outbox);
        orders_free(m->orders);
        smtp_sender_free(m->smtp); /* after the outbox: answers to it are dropped */
        outbox_sns_free(m->outbox_sns); /* after the outbox: its rows stay 'sending' */
        outbox_eum_free(m->outbox_eum);
        aws_credentials_provider_free(m->aws_credentials); /* after its users */
        lmtp_ingress_free(m->lmtp);
        curl_event_free(m->curl);
        store_close(m->store);
        snapshot_unref(m->snapshot);
        sd_event_unref(m->event);
        strv_free(m->overrides);
        free(m->config_path);
        free(m->failure);
        free(m);
        return NULL;
}
