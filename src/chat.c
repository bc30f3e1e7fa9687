/* SPDX-License-Identifier: MIT */
/*
 * chat.c — the conversation's driver (see chat.h): inbox → understanding →
 * one turn → one transaction.  Owns the conversations table.
 *
 * Security: see chat.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "chat.h"
#include "log.h"
#include "outbox-smtp.h"
#include "sms-text.h"
#include "strutil.h"
#include "template.h"

typedef struct Turn Turn;

struct Turn {
        Chat *chat;
        Turn *next, **pprev;
        int64_t id;
        bool email;
        int authenticated; /* 1 yes, 0 no, -1 unknown */
        char *customer, *recipient, *body, *subject, *message_id, *in_reply_to, *references;
        Snapshot *snapshot;
        NluQuery *query;
        NluResult *result; /* understood, waiting for the next group commit */
        Turn *ready_next;
        char *log; /* the turn's event line, logged once committed */
        int error; /* why the turn was undone, or 0 */
};

struct Chat {
        ChatContext ctx;
        Turn *turns;
        unsigned n_busy;
        bool started;
        /* Turns understood during one turn of the loop are committed together
         * ("group commit", as the inbox does): one fsync for all of them. */
        Turn *ready, **ready_tail;
        sd_event_source *commit_defer;
        /* The last long reply split into SMS bodies, with what it was split
         * for: the same menu goes to many customers in a row. */
        char *split_text;
        char **split_bodies;
        unsigned split_max;
        bool split_fold;
};

static uint64_t now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static Turn *turn_free(Turn *t) {
        if (!t)
                return NULL;
        if (t->pprev) {
                *t->pprev = t->next;
                if (t->next)
                        t->next->pprev = t->pprev;
                t->chat->n_busy--;
        }
        nlu_query_cancel(t->query);
        nlu_result_free(t->result);
        free(t->log);
        snapshot_unref(t->snapshot);
        free(t->customer);
        free(t->recipient);
        free(t->body);
        free(t->subject);
        free(t->message_id);
        free(t->in_reply_to);
        free(t->references);
        free(t);
        return NULL;
}

static char *msgids_bracketed(const char *ids);

/* ---- the conversations table ------------------------------------------------ */

static int load_state(Chat *c, const char *customer, ConvState **ret) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        rc = store_prepare_rc(c->ctx.store, "SELECT state FROM conversations WHERE customer = ?", &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, customer, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        if (rc == SQLITE_ROW) {
                json_error_t e;
                json_t *j = json_loads((const char *) sqlite3_column_text(st, 0), 0, &e);
                r = j ? conv_state_from_json(j, ret) : -EINVAL;
                json_decref(j);
                store_finish(c->ctx.store, st);
                return r;
        }
        store_finish(c->ctx.store, st);
        r = store_check(c->ctx.store, rc == SQLITE_DONE ? SQLITE_OK : rc, "read a conversation");
        return r < 0 ? r : -ENOENT;
}

static int save_state(Chat *c, const char *customer, const ConvState *s) {
        _cleanup_free_ char *text = NULL;
        json_t *j = conv_state_to_json(s);
        sqlite3_stmt *st = NULL;
        int rc;

        if (!j)
                return -ENOMEM;
        text = mem_json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        rc = store_prepare_rc(c->ctx.store,
                              "INSERT INTO conversations (customer, phase, state, updated_at) VALUES (?, ?, ?, ?) "
                              "ON CONFLICT (customer) DO UPDATE SET phase = excluded.phase, state = excluded.state, "
                              "updated_at = excluded.updated_at",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, customer, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, conv_phase_to_string(s->phase), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 4, (int64_t) s->updated_usec);
                rc = sqlite3_step(st);
        }
        store_finish(c->ctx.store, st);
        return store_check(c->ctx.store, rc == SQLITE_DONE ? SQLITE_OK : rc, "store a conversation");
}

/* The order of the message we sent to customer that this mail answers
 * (its In-Reply-To, else the last of its References), into id. */
static int order_of_thread(Chat *c, const Turn *t, char id[static NLU_ORDER_ID_LEN + 1]) {
        _cleanup_free_ char *all = mem_printf("%s %s", strempty(t->references), strempty(t->in_reply_to));
        _cleanup_free_ char *bracketed = all ? msgids_bracketed(all) : NULL;
        _cleanup_(strv_freep) char **refs = bracketed ? strv_split_ws(bracketed) : NULL;
        sqlite3_stmt *st = NULL;
        int rc = SQLITE_OK;

        if (!refs)
                return -ENOMEM;
        rc = store_prepare_rc(c->ctx.store,
                              "SELECT order_id FROM outbox WHERE message_id = ? AND recipient = ? AND order_id IS "
                              "NOT NULL ORDER BY id DESC LIMIT 1",
                              &st);
        /* newest reference first: In-Reply-To was appended last */
        for (size_t i = strv_length(refs); rc == SQLITE_OK && i-- > 0;) {
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, refs[i], -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, t->customer, -1, SQLITE_STATIC);
                int s = sqlite3_step(st);
                if (s == SQLITE_ROW) {
                        const char *o = (const char *) sqlite3_column_text(st, 0);
                        if (o && strlen(o) == NLU_ORDER_ID_LEN) {
                                strscpy(id, NLU_ORDER_ID_LEN + 1, o);
                                store_finish(c->ctx.store, st);
                                return 1;
                        }
                } else if (s != SQLITE_DONE)
                        rc = s;
        }
        store_finish(c->ctx.store, st);
        int r = store_check(c->ctx.store, rc, "match a reply to an order");
        return r < 0 ? r : 0;
}

/* ---- replies ------------------------------------------------------------------- */

/* Message-IDs as headers carry them, "<id>": the inbox keeps them bare,
 * ours are made with the brackets.  ids is one or more, space-separated. */
static char *msgids_bracketed(const char *ids) {
        _cleanup_(strv_freep) char **l = strv_split_ws(ids ?: "");

        if (!l)
                return NULL;
        for (char **p = l; *p; p++)
                if (**p != '<') {
                        char *b = mem_printf("<%s>", *p);
                        if (!b)
                                return NULL;
                        free(*p);
                        *p = b;
                }
        return strv_join(l, " ");
}

/* "Re: subject", unless it has one already. */
static char *reply_subject(const Snapshot *s, const Turn *t, NluLang lang) {
        char *subject = NULL;

        if (isempty(t->subject)) {
                if (template_render(s->templates, lang, "email_subject", NULL, 0, &subject) < 0)
                        return NULL;
                return subject;
        }
        if (strncasecmp(t->subject, "re:", 3) == 0)
                return mem_strdup(t->subject);
        return mem_printf("Re: %s", t->subject);
}

/* text as SMS bodies (sms_text_split()), valid until the next call: the
 * last split is kept and given again for the same text and settings. */
static int split_sms(Chat *c, const char *text, unsigned max_segments, bool fold, char ***ret) {
        char **bodies = NULL, *copy;
        int r;

        if (c->split_text && c->split_max == max_segments && c->split_fold == fold && streq(c->split_text, text)) {
                *ret = c->split_bodies;
                return 0;
        }
        r = sms_text_split(text, max_segments, fold, &bodies);
        if (r < 0)
                return r;
        copy = mem_strdup(text);
        if (!copy) {
                strv_free(bodies);
                return -ENOMEM;
        }
        free(c->split_text);
        strv_free(c->split_bodies);
        c->split_text = copy;
        c->split_bodies = bodies;
        c->split_max = max_segments;
        c->split_fold = fold;
        *ret = bodies;
        return 0;
}

/* Queue text to the customer of t, composed for its channel. */
static int enqueue_reply(Chat *c, const Turn *t, const char *text, bool opt_out_confirmation, NluLang lang,
                         const char *order_id) {
        const Config *cf = t->snapshot->config;
        _cleanup_free_ char *subject = NULL, *refs = NULL, *message_id = NULL, *in_reply_to = NULL;
        OutboxMessage m = {
                .channel = t->email ? OUTBOX_EMAIL : OUTBOX_SMS,
                .to = t->customer,
                .order_id = order_id,
                .opt_out_confirmation = opt_out_confirmation,
        };
        int r;

        if (!t->email) {
                char **bodies;
                r = split_sms(c, text, (unsigned) cf->sms_max_segments, cf->sms_fold_accents, &bodies);
                for (char **b = bodies; r >= 0 && b && *b; b++) {
                        m.body = *b;
                        r = outbox_enqueue_in_txn(c->ctx.outbox, &m, NULL);
                }
                return r;
        }
        subject = reply_subject(t->snapshot, t, lang);
        /* Ours, recorded now, so that the customer's answer to it can be
         * matched to this conversation and order. */
        message_id = smtp_new_message_id(!isempty(cf->mail_from)          ? cf->mail_from
                                                 : !isempty(t->recipient) ? t->recipient
                                                                          : "deliveryd@localhost");
        if (!subject || !message_id)
                return -ENOMEM;
        if (t->message_id) {
                _cleanup_free_ char *all = isempty(t->references) ? mem_strdup(t->message_id)
                                                                  : mem_printf("%s %s", t->references, t->message_id);
                if (!all || !(refs = msgids_bracketed(all)) || !(in_reply_to = msgids_bracketed(t->message_id)))
                        return -ENOMEM;
        }
        m.body = text;
        m.subject = subject;
        m.in_reply_to = in_reply_to;
        m.references = refs;
        m.message_id = message_id;
        return outbox_enqueue_in_txn(c->ctx.outbox, &m, NULL);
}

/* The store's alert, to conversation.handoff_to. */
static int enqueue_alert(Chat *c, const Turn *t, const char *text) {
        const char *to = t->snapshot->config->conversation_handoff_to;
        _cleanup_free_ char *body = NULL, *subject = NULL;

        if (isempty(to)) {
                log_warning("Customer %s asked for a person; set conversation.handoff_to to be alerted.", t->customer);
                return 0;
        }
        OutboxMessage m = { .to = to, .body = text };
        if (strchr(to, '@')) {
                const TemplateVar v[] = { { "customer", t->customer } };
                int r = template_render(t->snapshot->templates, NLU_LANG_PT, "handoff_alert_subject", v, ELEMENTSOF(v),
                                        &subject);
                if (r < 0)
                        return r;
                m.channel = OUTBOX_EMAIL;
                m.subject = subject;
        } else {
                SmsTextInfo info;
                int r = sms_text_compose(text, 3, false, &body, &info);
                if (r < 0)
                        return r;
                m.channel = OUTBOX_SMS;
                m.body = body;
        }
        return outbox_enqueue_in_txn(c->ctx.outbox, &m, NULL);
}

/* ---- one turn ------------------------------------------------------------------- */

static ConvEnv make_env(Chat *c, const Snapshot *s) {
        return (ConvEnv){
                .snapshot = s,
                .now_usec = now_realtime(),
                .stock = c->ctx.hooks.stock,
                .find_order = c->ctx.hooks.find_order,
                .userdata = c->ctx.hooks.userdata,
        };
}

/* Perform a turn's actions inside the transaction. */
static int apply(Chat *c, const Turn *t, const ConvEnv *env, const ConvState *s, const ConvActions *a) {
        char id[NLU_ORDER_ID_LEN + 1] = "";
        int r;

        if (a->opt == CONV_OPT_IN || a->opt == CONV_OPT_OUT) {
                /* recorded before its confirmation is queued */
                r = outbox_set_opt_out_in_txn(c->ctx.outbox, t->customer, a->opt == CONV_OPT_OUT);
                if (r < 0)
                        return r;
        }
        /* A request the workflow refuses is answered with the reason, by
         * the hook: then "we are handling it" would be wrong. */
        bool answered = false;
        if (a->request != CONV_REQUEST_NONE && c->ctx.hooks.order_request) {
                r = c->ctx.hooks.order_request(c->ctx.hooks.userdata, t->customer, a->request, a->request_order,
                                               a->request_address);
                if (r < 0)
                        return r;
                answered = r > 0;
        }
        for (char **p = a->replies; !answered && p && *p; p++)
                if ((r = enqueue_reply(c, t, *p, a->opt_out_confirmation, s->lang,
                                       a->request_order[0]         ? a->request_order
                                               : a->about_order[0] ? a->about_order
                                                                   : (s->order_id[0] ? s->order_id : NULL))) < 0)
                        return r;
        if (a->create) {
                _cleanup_free_ char *text = NULL;
                if (!c->ctx.hooks.create_order)
                        return -EOPNOTSUPP;
                r = c->ctx.hooks.create_order(c->ctx.hooks.userdata, t->customer, t->email, t->message_id, t->subject,
                                              a->create, id);
                if (r < 0)
                        return r;
                if ((r = conversation_placed(env, a->create, id, &text)) < 0 ||
                    (r = enqueue_reply(c, t, text, false, a->create->lang, id)) < 0)
                        return r;
        }
        if (a->alert && (r = enqueue_alert(c, t, a->alert)) < 0)
                return r;
        if (id[0])
                log_event("order_created order=%s customer=%s message=%" PRIi64, id, t->customer, t->id);
        return 0;
}

static void count(Chat *c, MetricId id) {
        if (c->ctx.metrics)
                metrics_inc(c->ctx.metrics, id);
}

/* One turn, inside the batch's transaction (and its own savepoint). */
static int run_turn_in_txn(Chat *c, Turn *t, NluResult *r) {
        _cleanup_(conv_state_freep) ConvState *s = NULL;
        _cleanup_(conv_actions_done) ConvActions a = {};
        ConvEnv env = make_env(c, t->snapshot);
        ConvPhase old;
        int k, opted;

        if (t->email && !r->order_id[0] && (t->in_reply_to || t->references)) {
                k = order_of_thread(c, t, r->order_id);
                if (k < 0)
                        return k;
        }
        k = load_state(c, t->customer, &s);
        if (k == -EINVAL) {
                log_warning("Conversation of %s could not be read; starting it again.", t->customer);
                k = -ENOENT;
        }
        if (k == -ENOENT) {
                s = conv_state_new(r->lang);
                k = s ? 0 : -ENOMEM;
        }
        if (k < 0)
                return k;
        opted = outbox_customer_opted_out(c->ctx.outbox, t->customer);
        if (opted < 0)
                return opted;
        old = s->phase;
        const ConvInput in = {
                .customer = t->customer,
                .email = t->email,
                .nlu = r,
                .text = t->body,
                .opted_out = opted > 0,
                .unauthenticated = t->email && t->authenticated == 0,
        };
        if ((k = conversation_turn(&env, s, &in, &a)) < 0 || (k = apply(c, t, &env, s, &a)) < 0 ||
            (k = save_state(c, t->customer, s)) < 0 || (k = inbox_mark_done(c->ctx.inbox, t->id, false)) < 0)
                return k;
        t->log =
                mem_printf("conversation customer=%s message=%" PRIi64 " intent=%s phase=%s->%s replies=%zu why=\"%s\"",
                           t->customer, t->id, nlu_intent_to_string(r->intent), conv_phase_to_string(old),
                           conv_phase_to_string(s->phase), strv_length(a.replies), strempty(a.why));
        return 0;
}

/* A turn that cannot be run (its state or its actions fail for a reason
 * that would not go away by trying again): the message is set aside as
 * corrupt, and the customer's next message may go. */
static void set_aside(Chat *c, Turn *t, int error) {
        log_error("Message %" PRIi64 " from %s could not be handled (%s); it is kept as corrupt.", t->id, t->customer,
                  strerror(-error));
        if (store_begin(c->ctx.store) < 0)
                return;
        if (inbox_mark_done(c->ctx.inbox, t->id, true) < 0 || store_commit(c->ctx.store) < 0) {
                store_rollback(c->ctx.store);
                return;
        }
        inbox_release(c->ctx.inbox, t->id);
}

static void on_understood(void *userdata, NluResult *r) {
        Turn *t = userdata;
        Chat *c = t->chat;

        t->query = NULL;
        if (!r) {
                /* out of memory: nothing was done; it comes back in a second */
                int64_t id = t->id;
                log_error("Out of memory understanding message %" PRIi64 "; trying again.", id);
                count(c, METRIC_CONVERSATION_TURNS_FAILED);
                turn_free(t);
                inbox_release_retry(c->ctx.inbox, id);
                return;
        }
        t->result = r;
        *c->ready_tail = t;
        c->ready_tail = &t->ready_next;
        (void) sd_event_source_set_enabled(c->commit_defer, SD_EVENT_ONESHOT);
}

/* Commit every turn understood so far in one transaction, each in a
 * savepoint of its own: a turn that fails is undone alone and set aside;
 * a store that fails fails them all (the daemon stops; they come back). */
static int on_commit_defer(sd_event_source *source _unused_, void *userdata) {
        Chat *c = userdata;
        Turn *batch = TAKE_PTR(c->ready);
        int k, r;

        c->ready_tail = &c->ready;
        if (!batch)
                return 0;
        /* Nothing here is promised to anyone: the replies leave through
         * the outbox, which waits for the disk. */
        r = store_begin_nosync(c->ctx.store);
        for (Turn *t = batch; r >= 0 && t; t = t->ready_next) {
                if ((r = store_run(c->ctx.store, "SAVEPOINT turn")) < 0)
                        break;
                k = run_turn_in_txn(c, t, t->result);
                if (k < 0 && store_failed(c->ctx.store)) {
                        r = k;
                        break;
                }
                if (k < 0) {
                        /* undone alone; set aside after the commit */
                        t->error = k;
                        t->log = mfree(t->log);
                        if ((r = store_run(c->ctx.store, "ROLLBACK TO turn")) < 0)
                                break;
                }
                if ((r = store_run(c->ctx.store, "RELEASE turn")) < 0)
                        break;
        }
        if (r >= 0)
                r = store_commit(c->ctx.store);
        else
                store_rollback(c->ctx.store);

        for (Turn *t = batch, *next; t; t = next) {
                next = t->ready_next;
                if (r < 0)
                        count(c, METRIC_CONVERSATION_TURNS_FAILED); /* the store failed: they come back */
                else if (t->error == 0) {
                        count(c, METRIC_CONVERSATION_TURNS_OK);
                        if (t->log)
                                log_event("%s", t->log);
                        inbox_release(c->ctx.inbox, t->id);
                } else if (t->error == -ENOMEM || t->error == -EBUSY || t->error == -EAGAIN) {
                        /* Nothing of it was kept, and trying again may well
                         * work: it comes back in a second. */
                        count(c, METRIC_CONVERSATION_TURNS_FAILED);
                        log_warning("Message %" PRIi64 " from %s could not be handled now (%s); trying again.", t->id,
                                    t->customer, strerror(-t->error));
                        inbox_release_retry(c->ctx.inbox, t->id);
                } else {
                        count(c, METRIC_CONVERSATION_TURNS_CORRUPT);
                        set_aside(c, t, t->error);
                }
                turn_free(t);
        }
        if (r >= 0)
                outbox_kick(c->ctx.outbox);
        return 0;
}

static char *dup_opt(const char *s) {
        return s ? mem_strdup(s) : NULL;
}

static void on_delivery(void *userdata, const InboxDelivery *d) {
        Chat *c = userdata;
        Turn *t = mem_new(Turn, 1);

        if (!t) {
                log_error("Out of memory taking message %" PRIi64 "; trying again.", d->id);
                inbox_release_retry(c->ctx.inbox, d->id);
                return;
        }
        t->chat = c;
        t->id = d->id;
        t->email = d->channel == INBOX_EMAIL;
        t->authenticated = d->authenticated;
        t->customer = mem_strdup(d->customer);
        t->body = mem_strdup(d->body);
        t->recipient = dup_opt(d->recipient);
        t->subject = dup_opt(d->subject);
        t->message_id = dup_opt(d->message_id);
        t->in_reply_to = dup_opt(d->in_reply_to);
        t->references = dup_opt(d->references);
        t->snapshot = snapshot_ref(c->ctx.snapshot(c->ctx.userdata));
        t->next = c->turns;
        if (t->next)
                t->next->pprev = &t->next;
        t->pprev = &c->turns;
        c->turns = t;
        c->n_busy++;
        if (!t->customer || !t->body ||
            nlu_client_parse(c->ctx.nlu, t->snapshot, t->customer, t->body, strlen(t->body), on_understood, t,
                             &t->query) < 0) {
                log_error("Out of memory taking message %" PRIi64 "; it is handled after a restart.", d->id);
                turn_free(t);
        }
}

/* ---- the object -------------------------------------------------------------------- */

int chat_new(const ChatContext *ctx, Chat **ret) {
        Chat *c = mem_new(Chat, 1);
        int r;

        if (!c)
                return -ENOMEM;
        c->ctx = *ctx;
        c->ready_tail = &c->ready;
        r = sd_event_add_defer(ctx->event, &c->commit_defer, on_commit_defer, c);
        if (r < 0) {
                free(c);
                return r;
        }
        (void) sd_event_source_set_enabled(c->commit_defer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->commit_defer, "chat-commit");
        *ret = c;
        return 0;
}

Chat *chat_free(Chat *c) {
        if (!c)
                return NULL;
        while (c->turns)
                turn_free(c->turns);
        sd_event_source_disable_unref(c->commit_defer);
        free(c->split_text);
        strv_free(c->split_bodies);
        free(c);
        return NULL;
}

int chat_start(Chat *c) {
        c->started = true;
        return inbox_set_consumer(c->ctx.inbox, on_delivery, c);
}

unsigned chat_n_busy(const Chat *c) {
        return c->n_busy;
}

json_t *chat_conversation_json(Chat *c, const char *customer, int *ret_error) {
        _cleanup_(conv_state_freep) ConvState *s = NULL;
        int r = load_state(c, customer, &s);
        json_t *j;

        if (r < 0) {
                *ret_error = r;
                return NULL;
        }
        j = conv_state_to_json(s);
        if (!j || json_object_set_new(j, "customer", json_string(customer)) < 0) {
                json_decref(j);
                *ret_error = -ENOMEM;
                return NULL;
        }
        return j;
}

int chat_resume(Chat *c, const char *customer) {
        _cleanup_(conv_state_freep) ConvState *s = NULL;
        _cleanup_(conv_actions_done) ConvActions a = {};
        Snapshot *snap = c->ctx.snapshot(c->ctx.userdata);
        ConvEnv env = make_env(c, snap);
        Turn t = { .chat = c, .email = strchr(customer, '@') != NULL, .customer = (char *) customer, .snapshot = snap };
        int r;

        r = store_begin(c->ctx.store);
        if (r < 0)
                return r;
        if ((r = load_state(c, customer, &s)) < 0 || (r = conversation_resume(&env, s, &a)) < 0 ||
            (r = apply(c, &t, &env, s, &a)) < 0 || (r = save_state(c, customer, s)) < 0 ||
            (r = store_commit(c->ctx.store)) < 0) {
                store_rollback(c->ctx.store);
                return r;
        }
        log_event("conversation customer=%s phase=handoff->%s why=\"resumed by operator\"", customer,
                  conv_phase_to_string(s->phase));
        outbox_kick(c->ctx.outbox);
        return 0;
}
