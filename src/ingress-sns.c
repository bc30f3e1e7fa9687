/* SPDX-License-Identifier: MIT */
/*
 * ingress-sns.c — the SNS webhook.
 *
 * A request becomes an SnsJob that lives until it is answered: it may wait
 * for the signing certificate (downloaded once per URL however many jobs
 * need it), for the GET of a SubscribeURL, for the mail parser process
 * to read an SES mail, or for the inbox's group commit.  Freeing the
 * ingress answers every job 503.
 *
 * Security: see ingress-sns.h.
 */
#include "ingress-sns.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "customer.h"
#include "ingress-mail.h"
#include "log.h"
#include "sns-payload.h"
#include "sns.h"
#include "strutil.h"
#include "worker-pool.h"

typedef struct SnsJob SnsJob;
typedef struct CertFetch CertFetch;

/* What the checks on a worker thread found, for the loop to act on. */
typedef enum CheckOutcome {
        CHECK_VERIFIED, /* the signature was checked: verify_r, verify_result */
        CHECK_NEED_CERT, /* passed the checks; the certificate is not in memory */
        CHECK_ANSWER, /* answer status with text */
        CHECK_REJECT, /* job_reject() with metric, status and text */
} CheckOutcome;

struct SnsJob {
        SnsIngress *ingress;
        SnsJob *next, *prev;
        HttpPending *pending;
        Snapshot *snapshot;
        SnsMessage *msg;

        unsigned long alloc_failures; /* alloc_failures() when it came */
        /* The request's body (valid until the answer) and the checks made
         * on it off the loop: parse, topic, URL, time stamp, signature. */
        const char *body;
        size_t body_len;
        WorkItem work;
        CheckOutcome outcome;
        MetricId reject_metric;
        unsigned status;
        const char *text; /* static */
        int verify_r;
        SnsVerifyResult verify_result;

        CertFetch *fetch; /* waiting for this download */
        SnsJob *fetch_next; /* in the fetch's waiting list */
        CurlTransfer *subscribe;
        SnsPayload *payload; /* an SES mail while the parser reads it */
        char *transport_key; /* "ses:" and SES's messageId, for the same while */
        MailParserRequest *parse;
        unsigned inbox_waiting; /* inbox requests not answered yet */
        InboxRequest **requests;
        size_t n_requests;
        bool failed; /* an inbox request failed: answer 503 */
};

struct CertFetch {
        SnsIngress *ingress;
        CertFetch *next;
        char *url;
        char *dir;
        CurlTransfer *transfer;
        SnsJob *waiting;
};

/* Parsed certificates, so that a message costs one signature check and not
 * a file read and a PEM parse as well.  SNS signs with one certificate a
 * region, changed rarely: a handful of entries is plenty, and the least
 * recently used one makes room.  The files stay the durable copy. */
#define CERTS_IN_MEMORY 8

typedef struct CertMemo {
        char *dir, *url;
        SnsCert *cert;
        uint64_t used; /* ing->cert_clock when last used; 0: empty */
} CertMemo;

struct SnsIngress {
        SnsIngressContext ctx;
        char *default_cert_dir;
        SnsJob *jobs;
        unsigned n_jobs;
        CertFetch *fetches;
        WorkerPool *pool;
        /* The worker threads read the certificates too; the loop alone
         * adds them. */
        pthread_mutex_t certs_lock;
        CertMemo certs[CERTS_IN_MEMORY];
        uint64_t cert_clock;
};

static uint64_t now_usec(SnsIngress *ing) {
        struct timespec ts;

        if (ing->ctx.now_usec)
                return ing->ctx.now_usec();
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static const Config *job_config(SnsJob *j) {
        return j->snapshot->config;
}

static const char *cert_dir(SnsJob *j) {
        const char *d = job_config(j)->sns_certificate_cache;
        return isempty(d) ? j->ingress->default_cert_dir : d;
}

static const char *empty_to_null(const char *s) {
        return isempty(s) ? NULL : s;
}

static const char *field(SnsJob *j, SnsField f) {
        return strempty(sns_message_get(j->msg, f));
}

/* ---- answering ---------------------------------------------------------- */

static void job_free(SnsJob *j) {
        SnsIngress *ing = j->ingress;

        if (j->prev)
                j->prev->next = j->next;
        else
                ing->jobs = j->next;
        if (j->next)
                j->next->prev = j->prev;
        ing->n_jobs--;

        for (size_t i = 0; i < j->n_requests; i++)
                if (j->requests[i])
                        inbox_request_cancel(j->requests[i]);
        free(j->requests);
        mail_parser_cancel(j->parse);
        sns_payload_free(j->payload);
        free(j->transport_key);
        curl_event_transfer_free(j->subscribe);
        sns_message_free(j->msg);
        snapshot_unref(j->snapshot);
        free(j);
}

static void job_answer(SnsJob *j, unsigned status, const char *text) {
        HttpResponse resp = {};

        (void) http_response_text(&resp, status, "text/plain; charset=utf-8", text);
        http_pending_finish(j->pending, &resp);
        job_free(j);
}

static void job_reject(SnsJob *j, MetricId reason, unsigned status, const char *why) {
        /* A refusal while an allocation failed may be the failure's doing
         * (jansson, for one, can cut a string it could not grow and parse
         * on): the sender tries again, and a forgery is refused then. */
        if (alloc_failures() != j->alloc_failures)
                return job_answer(j, 503, "out of memory, try again\n");
        metrics_inc(j->ingress->ctx.metrics, reason);
        log_notice("event=sns_rejected message_id=%s topic=%s status=%u reason=\"%s\"",
                   j->msg ? field(j, SNS_FIELD_MESSAGE_ID) : "-", j->msg ? field(j, SNS_FIELD_TOPIC_ARN) : "-", status,
                   why);
        job_answer(j, status, why);
}

/* ---- non-customer events ------------------------------------------------ */

/* Record a subscription event or an ignored notification.  Returns 0, or
 * -errno when the store failed (the caller answers 5xx). */
static int record_event(SnsJob *j, const char *status, const char *detail) {
        sqlite3_stmt *st = NULL;
        Store *store = j->ingress->ctx.store;
        int rc;

        if (store_failed(store))
                return -EIO;
        rc = store_prepare_rc(store,
                              "INSERT INTO sns_events (message_id, type, topic_arn, status, detail, received_at) "
                              "VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) "
                              "ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, "
                              "detail = excluded.detail",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, field(j, SNS_FIELD_MESSAGE_ID), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, field(j, SNS_FIELD_TYPE), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, field(j, SNS_FIELD_TOPIC_ARN), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
                if (detail)
                        sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        store_finish(store, st);
        return store_check(store, rc, "record SNS event");
}

static void on_subscribed(int result, const CurlResponse *resp, void *userdata) {
        SnsJob *j = userdata;
        char detail[256];

        /* j->subscribe is ours: job_free() frees it, after resp was used. */
        if (result == 200) {
                if (record_event(j, "confirmed", NULL) < 0)
                        return job_answer(j, 503, "storage failed\n");
                log_event("sns_subscription_confirmed topic=%s message_id=%s", field(j, SNS_FIELD_TOPIC_ARN),
                          field(j, SNS_FIELD_MESSAGE_ID));
                return job_answer(j, 200, "confirmed\n");
        }
        if (result > 0)
                snprintf(detail, sizeof detail, "SubscribeURL answered HTTP %d", result);
        else
                snprintf(detail, sizeof detail, "SubscribeURL failed: %s (%s)", strerror(-result), resp->error);
        log_warning("Could not confirm the SNS subscription to %s: %s", field(j, SNS_FIELD_TOPIC_ARN), detail);
        (void) record_event(j, "confirm_failed", detail);
        /* 5xx: SNS delivers the confirmation request again later. */
        job_answer(j, 502, "subscription not confirmed\n");
}

static void handle_subscription(SnsJob *j) {
        const char *url = field(j, SNS_FIELD_SUBSCRIBE_URL), *reason = NULL;
        int r;

        r = sns_subscribe_url_check(url, &reason);
        if (r < 0)
                return job_reject(j, METRIC_REJECTED_CERT_URL, 403, reason ? reason : "bad SubscribeURL");

        const CurlRequest req = {
                .method = "GET",
                .url = url,
                .timeout_usec = job_config(j)->sns_fetch_timeout_usec,
                .max_response_body = 64 * 1024,
                .ca_file = empty_to_null(job_config(j)->http_client_ca_file),
                .connect_to = job_config(j)->http_client_connect_to,
        };
        r = curl_event_request(j->ingress->ctx.curl, &req, on_subscribed, j, &j->subscribe);
        if (r < 0)
                return job_answer(j, 503, "cannot confirm now\n");
        /* on_subscribed answers; the transfer is ours until then */
}

/* ---- customer messages -------------------------------------------------- */

static void on_committed(void *userdata, InboxOutcome outcome, int64_t id) {
        SnsJob *j = userdata;
        SnsIngress *ing = j->ingress;

        /* The inbox answers in submission order and frees each request after
         * its callback: forget the oldest one still held. */
        for (size_t i = 0; i < j->n_requests; i++)
                if (j->requests[i]) {
                        j->requests[i] = NULL;
                        break;
                }
        j->inbox_waiting--;
        inbox_outcome_count(outcome, ing->ctx.metrics);
        if (outcome == INBOX_FAILED)
                j->failed = true;
        log_event("inbound id=%lld source=sns message_id=%s outcome=%s", (long long) id, field(j, SNS_FIELD_MESSAGE_ID),
                  inbox_outcome_to_string(outcome));
        if (j->inbox_waiting > 0)
                return;
        if (j->failed)
                return job_answer(j, 503, "storage failed, try again\n");
        job_answer(j, 200, "OK\n");
}

/* Hand msgs (NULL-terminated, ownership taken) to the inbox; the job is
 * answered when the last one is committed. */
static void submit(SnsJob *j, InboxMessage **msgs) {
        size_t n = 0;
        int r;

        while (msgs[n])
                n++;
        j->requests = mem_new(InboxRequest *, n ?: 1);
        if (!j->requests) {
                inbox_messages_free(msgs);
                return job_answer(j, 503, "out of memory\n");
        }
        j->n_requests = n;
        for (size_t i = 0; i < n; i++) {
                r = inbox_submit(j->ingress->ctx.inbox, TAKE_PTR(msgs[i]), on_committed, j, &j->requests[i]);
                if (r < 0) {
                        j->failed = true;
                        continue;
                }
                j->inbox_waiting++;
        }
        free(msgs);
        if (j->inbox_waiting == 0)
                job_answer(j, j->failed ? 503 : 200, j->failed ? "storage failed, try again\n" : "OK\n");
}

static int sms_message(SnsJob *j, SnsPayload *p, InboxMessage ***ret) {
        _cleanup_(inbox_message_freep) InboxMessage *m = inbox_message_new(INBOX_SMS, INBOX_SOURCE_SNS);
        _cleanup_free_ char *k1 = NULL, *k2 = NULL;
        InboxMessage **l;

        if (!m)
                return -ENOMEM;
        /* SNS may deliver the same notification twice (same MessageId), and
         * End User Messaging may publish the same SMS twice (same
         * inboundMessageId): either makes it a duplicate. */
        k1 = mem_printf("sns:%s", field(j, SNS_FIELD_MESSAGE_ID));
        k2 = mem_printf("sms:%s", p->inbound_message_id);
        if (!k1 || !k2 || inbox_message_add_key(m, k1) < 0 || inbox_message_add_key(m, k2) < 0)
                return -ENOMEM;
        m->customer = TAKE_PTR(p->origination_number);
        m->recipient = TAKE_PTR(p->destination_number);
        m->body = TAKE_PTR(p->body);
        m->authenticated = 1; /* the carrier's number, signed by AWS */
        l = mem_new(InboxMessage *, 2);
        if (!l)
                return -ENOMEM;
        l[0] = TAKE_PTR(m);
        *ret = l;
        return 0;
}

/* An absent verdict is no verdict, not one called "absent". */
static const char *verdict_or_null(SesVerdict v) {
        return v == SES_VERDICT_ABSENT ? NULL : ses_verdict_to_string(v);
}

static MailEnvelope ses_envelope(SnsJob *j) {
        SnsPayload *p = j->payload;

        return (MailEnvelope){
                .source = INBOX_SOURCE_SNS,
                .sender = p->ses_source,
                .recipients = p->ses_recipients,
                .transport_key = j->transport_key,
                .ses_spf = verdict_or_null(p->spf),
                .ses_dkim = verdict_or_null(p->dkim),
                .ses_dmarc = verdict_or_null(p->dmarc),
        };
}

/* Answer a customer message that could not be made into inbox messages:
 * 5xx when a later try may work (SNS retries), 4xx when it never will. */
static void job_refuse(SnsJob *j, int r, const char *what) {
        if (r == -ENOMEM)
                return job_answer(j, 503, "out of memory\n");
        if (mail_parser_error_is_temporary(r)) {
                log_event("inbound source=sns message_id=%s outcome=deferred reason=\"%s\"",
                          field(j, SNS_FIELD_MESSAGE_ID), strerror(-r));
                return job_answer(j, 503, "mail could not be read now, try again\n");
        }
        if (r == -EFBIG)
                return job_reject(j, METRIC_REJECTED_SIZE, 400, "mail too large");
        job_reject(j, METRIC_REJECTED_PARSE, 400, what);
}

/* The parser's answer about the SES mail of j. */
static void on_parsed(void *userdata, int r, MailContent *mc) {
        _cleanup_(mail_content_freep) MailContent *m = mc;
        SnsJob *j = userdata;
        InboxMessage **msgs = NULL;

        j->parse = NULL;
        if (r >= 0) {
                const MailEnvelope env = ses_envelope(j);
                r = ingress_mail_messages_from(job_config(j), m, j->payload->content, j->payload->content_len, &env,
                                               &msgs);
        }
        if (r < 0)
                return job_refuse(j, r, "mail cannot be parsed");
        submit(j, msgs);
}

/* An SES notification with the mail in it: the job (and the payload, now
 * its own) waits for the mail parser process. */
static void ses_parse(SnsJob *j, SnsPayload *p) {
        int r;

        j->payload = p;
        j->transport_key = mem_printf("ses:%s", p->ses_message_id);
        if (!j->transport_key)
                return job_answer(j, 503, "out of memory\n");
        const MailEnvelope env = ses_envelope(j);
        r = ingress_mail_parse(j->ingress->ctx.parser, job_config(j), p->content, p->content_len, &env, on_parsed, j,
                               &j->parse);
        if (r < 0)
                return job_refuse(j, r, "mail cannot be parsed");
}

static void handle_notification(SnsJob *j) {
        _cleanup_(sns_payload_freep) SnsPayload *p = NULL;
        const Config *c = job_config(j);
        const char *reason = NULL;
        InboxMessage **msgs = NULL;
        int r;

        r = sns_payload_parse(field(j, SNS_FIELD_MESSAGE), c->sms_max_length, c->mail_max_size, &p, &reason);
        if (r == -ENOMEM)
                return job_answer(j, 503, "out of memory\n");
        if (r == -EMSGSIZE)
                return job_reject(j, METRIC_REJECTED_SIZE, 400, reason);
        if (r < 0)
                return job_reject(j, METRIC_REJECTED_PARSE, 400, reason);

        if (p->kind == SNS_PAYLOAD_SES && p->has_content)
                return ses_parse(j, TAKE_PTR(p));
        if (p->kind != SNS_PAYLOAD_SMS) {
                /* Signed by AWS, for an allowed topic, but not a customer message
                 * we can read (another service, an SES alert without content). */
                const char *what = p->kind == SNS_PAYLOAD_SES ? "SES notification without content"
                                                              : "payload is neither two-way SMS nor SES";
                if (record_event(j, "ignored", what) < 0)
                        return job_answer(j, 503, "storage failed, try again\n");
                metrics_inc(j->ingress->ctx.metrics, METRIC_INBOUND_IGNORED);
                log_notice("event=sns_ignored message_id=%s topic=%s reason=\"%s\"", field(j, SNS_FIELD_MESSAGE_ID),
                           field(j, SNS_FIELD_TOPIC_ARN), what);
                return job_answer(j, 200, "ignored\n");
        }
        r = sms_message(j, p, &msgs);
        if (r < 0)
                return job_refuse(j, r, "message cannot be parsed");
        submit(j, msgs);
}

/* ---- verification ------------------------------------------------------- */

static void cert_memo_clear(CertMemo *c) {
        free(c->dir);
        free(c->url);
        sns_cert_unref(c->cert);
        *c = (CertMemo){};
}

/* A new reference to the certificate remembered for dir and url, or NULL.
 * Any thread. */
static SnsCert *cert_memo_get(SnsIngress *ing, const char *dir, const char *url) {
        SnsCert *cert = NULL;

        pthread_mutex_lock(&ing->certs_lock);
        for (size_t i = 0; i < CERTS_IN_MEMORY; i++) {
                CertMemo *c = &ing->certs[i];
                if (c->used > 0 && streq(c->url, url) && streq(c->dir, dir)) {
                        c->used = ++ing->cert_clock;
                        cert = sns_cert_ref(c->cert);
                        break;
                }
        }
        pthread_mutex_unlock(&ing->certs_lock);
        return cert;
}

/* Remember cert (a reference is taken) for dir and url.  The loop only.
 * -ENOMEM. */
static int cert_memo_add(SnsIngress *ing, const char *dir, const char *url, SnsCert *cert) {
        _cleanup_free_ char *d = mem_strdup(dir), *u = mem_strdup(url);
        CertMemo *slot = &ing->certs[0];

        if (!d || !u)
                return -ENOMEM;
        pthread_mutex_lock(&ing->certs_lock);
        for (size_t i = 0; i < CERTS_IN_MEMORY; i++) {
                CertMemo *c = &ing->certs[i];
                if (c->used > 0 && streq(c->url, url) && streq(c->dir, dir)) {
                        slot = c;
                        break;
                }
                if (c->used < slot->used)
                        slot = c;
        }
        cert_memo_clear(slot);
        *slot = (CertMemo){
                .dir = TAKE_PTR(d), .url = TAKE_PTR(u), .cert = sns_cert_ref(cert), .used = ++ing->cert_clock
        };
        pthread_mutex_unlock(&ing->certs_lock);
        return 0;
}

/* Parse pem and remember it for the job's certificate URL.  0 and
 * *ret_cert (a new reference; NULL when pem is not a certificate:
 * verification then says so), -ENOMEM. */
static int job_cert_from_pem(SnsJob *j, const char *pem, size_t pem_len, SnsCert **ret_cert) {
        _cleanup_(sns_cert_unrefp) SnsCert *cert = NULL;
        int r;

        r = sns_cert_parse(pem, pem_len, &cert);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_cert = NULL;
                return 0;
        }
        r = cert_memo_add(j->ingress, cert_dir(j), field(j, SNS_FIELD_SIGNING_CERT_URL), cert);
        if (r < 0)
                return r;
        *ret_cert = TAKE_PTR(cert);
        return 0;
}

static void job_after_verify(SnsJob *j, int r, SnsVerifyResult v);

static void job_verified(SnsJob *j, const SnsCert *cert) {
        SnsVerifyResult v = SNS_VERIFY_OK;
        int r;

        r = sns_message_verify_cert(j->msg, cert, (unsigned) job_config(j)->sns_min_signature_version,
                                    now_usec(j->ingress), &v);
        job_after_verify(j, r, v);
}

/* After the signature check: r < 0 out of memory, else v says. */
static void job_after_verify(SnsJob *j, int r, SnsVerifyResult v) {
        if (r < 0)
                return job_answer(j, 503, "out of memory\n");
        if (v != SNS_VERIFY_OK)
                return job_reject(j, METRIC_REJECTED_SIGNATURE, 403, sns_verify_result_to_string(v));

        switch (sns_message_get_type(j->msg)) {
        case SNS_MESSAGE_NOTIFICATION:
                return handle_notification(j);
        case SNS_MESSAGE_SUBSCRIPTION_CONFIRMATION:
                return handle_subscription(j);
        case SNS_MESSAGE_UNSUBSCRIBE_CONFIRMATION:
                if (record_event(j, "unsubscribed", NULL) < 0)
                        return job_answer(j, 503, "storage failed, try again\n");
                log_event("sns_unsubscribed topic=%s message_id=%s", field(j, SNS_FIELD_TOPIC_ARN),
                          field(j, SNS_FIELD_MESSAGE_ID));
                return job_answer(j, 200, "OK\n");
        default:
                return job_reject(j, METRIC_REJECTED_PARSE, 400, "unknown message type");
        }
}

static void fetch_unlink(CertFetch *f) {
        for (CertFetch **p = &f->ingress->fetches; *p; p = &(*p)->next)
                if (*p == f) {
                        *p = f->next;
                        break;
                }
        f->next = NULL;
}

static CertFetch *fetch_free(CertFetch *f) {
        fetch_unlink(f);
        curl_event_transfer_free(f->transfer);
        free(f->url);
        free(f->dir);
        free(f);
        return NULL;
}

static void on_cert_downloaded(int result, const CurlResponse *resp, void *userdata) {
        CertFetch *f = userdata;
        SnsJob *waiting = TAKE_PTR(f->waiting);
        int r = -EIO;

        if (result == 200) {
                /* sns.certificate_cache may name a directory nobody made yet. */
                if (mkdir(f->dir, 0750) < 0 && errno != EEXIST)
                        log_warning_errno(errno, "Cannot create the certificate cache %s: %m", f->dir);
                r = sns_cert_cache_store(f->dir, f->url, resp->body, resp->body_len);
        }

        if (r < 0) {
                if (result == 200)
                        log_warning("Signing certificate from %s not stored: %s", f->url, strerror(-r));
                else
                        log_warning("Signing certificate %s could not be downloaded: %s%s%s", f->url,
                                    result > 0 ? "HTTP status " : strerror(-result), result > 0 ? "" : " ",
                                    result > 0 ? "" : resp->error);
        } else
                log_info("Stored SNS signing certificate %s.", f->url);

        /* Out of the list first, so that a job arriving meanwhile starts a
         * fetch of its own instead of waiting on this finished one; freed
         * last, since resp lives in its transfer. */
        fetch_unlink(f);
        _cleanup_(sns_cert_unrefp) SnsCert *cert = NULL;
        if (r >= 0 && waiting && job_cert_from_pem(waiting, resp->body, resp->body_len, &cert) < 0)
                r = -ENOMEM;
        while (waiting) {
                SnsJob *j = waiting;
                waiting = j->fetch_next;
                j->fetch = NULL;
                j->fetch_next = NULL;
                if (r == -EBADMSG)
                        /* what an SNS host served is not a certificate: nothing verifies */
                        job_reject(j, METRIC_REJECTED_SIGNATURE, 403, "signing certificate unusable");
                else if (r == -ENOMEM)
                        job_answer(j, 503, "out of memory\n");
                else if (r < 0)
                        /* 5xx: SNS retries, and by then the download may work */
                        job_answer(j, 502, "signing certificate unavailable\n");
                else
                        job_verified(j, cert);
        }
        fetch_free(f);
}

/* Wait for the certificate at the job's SigningCertURL, downloading it
 * unless a download of the same URL is already under way. */
static void job_fetch_cert(SnsJob *j) {
        SnsIngress *ing = j->ingress;
        const char *url = field(j, SNS_FIELD_SIGNING_CERT_URL);
        CertFetch *f;
        int r;

        for (f = ing->fetches; f; f = f->next)
                if (streq(f->url, url) && streq(f->dir, cert_dir(j)))
                        break;
        if (!f) {
                f = mem_new(CertFetch, 1);
                if (!f)
                        return job_answer(j, 503, "out of memory\n");
                f->ingress = ing;
                f->url = mem_strdup(url);
                f->dir = mem_strdup(cert_dir(j));
                if (!f->url || !f->dir) {
                        free(f->url);
                        free(f->dir);
                        free(f);
                        return job_answer(j, 503, "out of memory\n");
                }
                const CurlRequest req = {
                        .method = "GET",
                        .url = url,
                        .timeout_usec = job_config(j)->sns_fetch_timeout_usec,
                        .max_response_body = SNS_CERT_MAX_SIZE,
                        .ca_file = empty_to_null(job_config(j)->http_client_ca_file),
                        .connect_to = job_config(j)->http_client_connect_to,
                };
                r = curl_event_request(ing->ctx.curl, &req, on_cert_downloaded, f, &f->transfer);
                if (r < 0) {
                        free(f->url);
                        free(f->dir);
                        free(f);
                        return job_answer(j, 503, "cannot download the signing certificate now\n");
                }
                f->next = ing->fetches;
                ing->fetches = f;
        }
        j->fetch = f;
        j->fetch_next = f->waiting;
        f->waiting = j;
}

/* The checks that need nothing of the loop, on a worker thread: parse,
 * topic, certificate URL, time stamp, and the signature when the
 * certificate is in memory.  Writes only the job's check fields and msg. */
static void job_check(void *userdata) {
        SnsJob *j = userdata;
        SnsIngress *ing = j->ingress;
        const char *reason = NULL;
        int r;

#define OUTCOME(o, m, st, t)                                                                                           \
        do {                                                                                                           \
                j->outcome = (o);                                                                                      \
                j->reject_metric = (m);                                                                                \
                j->status = (st);                                                                                      \
                j->text = (t);                                                                                         \
                return;                                                                                                \
        } while (0)

        r = sns_message_parse(j->body, j->body_len, &j->msg, &reason);
        if (r == -ENOMEM)
                OUTCOME(CHECK_ANSWER, 0, 503, "out of memory\n");
        if (r == -EPROTONOSUPPORT)
                /* Raw delivery carries no signature: nobody can tell it from a forgery. */
                OUTCOME(CHECK_REJECT, METRIC_REJECTED_SIGNATURE, 400,
                        "raw message delivery is not accepted: disable RawMessageDelivery");
        if (r == -EMSGSIZE)
                OUTCOME(CHECK_REJECT, METRIC_REJECTED_SIZE, 413, reason ? reason : "too large");
        if (r < 0)
                OUTCOME(CHECK_REJECT, METRIC_REJECTED_PARSE, 400, reason ? reason : "malformed SNS message");

        if (!sns_topic_allowed(job_config(j)->sns_topics, field(j, SNS_FIELD_TOPIC_ARN)))
                OUTCOME(CHECK_REJECT, METRIC_REJECTED_TOPIC, 403, "topic not allowed (sns.topics)");
        r = sns_signing_cert_url_check(field(j, SNS_FIELD_SIGNING_CERT_URL), &reason);
        if (r == -ENOMEM)
                OUTCOME(CHECK_ANSWER, 0, 503, "out of memory\n");
        if (r < 0)
                OUTCOME(CHECK_REJECT, METRIC_REJECTED_CERT_URL, 403, reason ? reason : "bad SigningCertURL");
        SnsVerifyResult t = sns_timestamp_check(sns_message_get_timestamp(j->msg), now_usec(ing),
                                                job_config(j)->sns_timestamp_max_age_usec,
                                                job_config(j)->sns_timestamp_max_ahead_usec);
        if (t != SNS_VERIFY_OK)
                OUTCOME(CHECK_REJECT, METRIC_REJECTED_TIMESTAMP, 403, sns_verify_result_to_string(t));
#undef OUTCOME

        _cleanup_(sns_cert_unrefp) SnsCert *cert =
                cert_memo_get(ing, cert_dir(j), field(j, SNS_FIELD_SIGNING_CERT_URL));
        if (!cert) {
                j->outcome = CHECK_NEED_CERT;
                return;
        }
        j->verify_result = SNS_VERIFY_OK;
        j->verify_r = sns_message_verify_cert(j->msg, cert, (unsigned) job_config(j)->sns_min_signature_version,
                                              now_usec(ing), &j->verify_result);
        j->outcome = CHECK_VERIFIED;
}

/* Back on the loop with what job_check() found. */
static void job_checked(void *userdata, bool cancelled) {
        SnsJob *j = userdata;
        _cleanup_free_ char *pem = NULL;
        _cleanup_(sns_cert_unrefp) SnsCert *cert = NULL;
        size_t pem_len = 0;
        int r;

        if (cancelled)
                return job_answer(j, 503, "shutting down, try again\n");
        switch (j->outcome) {
        case CHECK_ANSWER:
                return job_answer(j, j->status, j->text);
        case CHECK_REJECT:
                return job_reject(j, j->reject_metric, j->status, j->text);
        case CHECK_VERIFIED:
                return job_after_verify(j, j->verify_r, j->verify_result);
        case CHECK_NEED_CERT:
                break;
        }
        r = sns_cert_cache_load(cert_dir(j), field(j, SNS_FIELD_SIGNING_CERT_URL), &pem, &pem_len);
        if (r == -ENOENT)
                return job_fetch_cert(j);
        if (r < 0) {
                log_warning_errno(r, "Cannot read the certificate cache %s: %m", cert_dir(j));
                return job_answer(j, 503, "certificate cache unreadable\n");
        }
        r = job_cert_from_pem(j, pem, pem_len, &cert);
        if (r < 0)
                return job_answer(j, 503, "out of memory\n");
        job_verified(j, cert);
}

void sns_ingress_handle(void *userdata, const HttpRequest *req, HttpResponse *resp) {
        SnsIngress *ing = userdata;
        SnsJob *j;

        j = mem_new(SnsJob, 1);
        if (!j) {
                (void) http_response_text(resp, 503, "text/plain; charset=utf-8", "out of memory\n");
                return;
        }
        j->ingress = ing;
        j->pending = http_request_defer(req);
        j->alloc_failures = alloc_failures();
        j->snapshot = snapshot_ref(ing->ctx.snapshot(ing->ctx.userdata));
        j->body = req->body;
        j->body_len = req->body_len;
        j->next = ing->jobs;
        if (ing->jobs)
                ing->jobs->prev = j;
        ing->jobs = j;
        ing->n_jobs++;

        /* Whatever happens next is answered through j->pending; with no
         * worker threads the checks run here and may answer at once. */
        worker_pool_submit(ing->pool, &j->work, job_check, job_checked, j);
}

int sns_ingress_new(const SnsIngressContext *ctx, SnsIngress **ret) {
        SnsIngress *ing = mem_new(SnsIngress, 1);
        int r;

        if (!ing)
                return -ENOMEM;
        ing->ctx = *ctx;
        pthread_mutex_init(&ing->certs_lock, NULL);
        ing->default_cert_dir = mem_printf("%s/sns-certificates", ctx->state_directory);
        if (!ing->default_cert_dir) {
                sns_ingress_free(ing);
                return -ENOMEM;
        }
        r = worker_pool_new(ctx->event, ctx->verify_threads, &ing->pool);
        if (r < 0) {
                sns_ingress_free(ing);
                return r;
        }
        *ret = ing;
        return 0;
}

unsigned sns_ingress_n_pending(SnsIngress *ing) {
        return ing ? ing->n_jobs : 0;
}

SnsIngress *sns_ingress_free(SnsIngress *ing) {
        if (!ing)
                return NULL;
        /* First: jobs at the threads come back (answered 503) before the
         * rest is torn down. */
        ing->pool = worker_pool_free(ing->pool);
        while (ing->fetches) {
                CertFetch *f = ing->fetches;
                f->waiting = NULL;
                fetch_free(f);
        }
        while (ing->jobs)
                job_answer(ing->jobs, 503, "shutting down, try again\n");
        for (size_t i = 0; i < CERTS_IN_MEMORY; i++)
                cert_memo_clear(&ing->certs[i]);
        pthread_mutex_destroy(&ing->certs_lock);
        free(ing->default_cert_dir);
        free(ing);
        return NULL;
}
