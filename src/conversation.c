/* SPDX-License-Identifier: MIT */
/*
 * conversation.c — the conversation's state machine (see conversation.h
 * for the picture).  Every reply is a template of the snapshot, in the
 * customer's language; every price, fee and total is the catalog's and
 * the zones'; nothing here touches the store or the network.
 *
 * Security: see conversation.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <time.h>

#include "alloc.h"
#include "conversation.h"
#include "strutil.h"
#include "template.h"

#define CART_LINES_MAX 20 /* different products in one order */
#define CART_QTY_MAX 50 /* units of one product */
#define ALTERNATIVES_MAX 3

static const char *const phase_table[_CONV_PHASE_MAX] = {
        [CONV_IDLE] = "idle",
        [CONV_ORDERING] = "ordering",
        [CONV_AWAIT_NEIGHBOURHOOD] = "await_neighbourhood",
        [CONV_AWAIT_CONFIRM] = "await_confirm",
        [CONV_AWAIT_CANCEL] = "await_cancel",
        [CONV_AWAIT_NEW_ADDRESS] = "await_new_address",
        [CONV_AWAIT_ADDRESS_FEE] = "await_address_fee",
        [CONV_HANDOFF] = "handoff",
};

const char *conv_phase_to_string(ConvPhase p) {
        return p >= 0 && p < _CONV_PHASE_MAX ? phase_table[p] : NULL;
}

ConvPhase conv_phase_from_string(const char *s) {
        for (int i = 0; s && i < _CONV_PHASE_MAX; i++)
                if (streq(phase_table[i], s))
                        return (ConvPhase) i;
        return _CONV_PHASE_INVALID;
}

/* ---- state ---------------------------------------------------------------- */

ConvState *conv_state_new(NluLang lang) {
        ConvState *s = mem_new(ConvState, 1);

        if (!s)
                return NULL;
        s->lang = lang;
        s->payment = _NLU_PAYMENT_INVALID;
        return s;
}

static void cart_clear(ConvState *s) {
        for (size_t i = 0; i < s->n_items; i++)
                free(s->items[i].sku);
        s->items = mfree(s->items);
        s->n_items = 0;
        s->last_sku = mfree(s->last_sku);
}

/* Forget the order being put together (not the language). */
static void order_clear(ConvState *s) {
        cart_clear(s);
        s->address = mfree(s->address);
        s->zone = mfree(s->zone);
        s->payment = _NLU_PAYMENT_INVALID;
        s->change_for_cents = 0;
        s->order_id[0] = 0;
}

ConvState *conv_state_free(ConvState *s) {
        if (!s)
                return NULL;
        order_clear(s);
        free(s);
        return NULL;
}

json_t *conv_state_to_json(const ConvState *s) {
        json_t *items = json_array();
        int k = items ? 0 : -1;

        for (size_t i = 0; k == 0 && i < s->n_items; i++)
                k = json_array_append_new(
                        items, json_pack("{s:s, s:i}", "sku", s->items[i].sku, "qty", (json_int_t) s->items[i].qty));
        if (k < 0) {
                json_decref(items);
                return NULL;
        }
        return json_pack("{s:s, s:s, s:s, s:b, s:o, s:s*, s:s*, s:s*, s:s*, s:I, s:s*, s:I, s:I}", "phase",
                         conv_phase_to_string(s->phase), "before_handoff", conv_phase_to_string(s->before_handoff),
                         "lang", nlu_lang_to_string(s->lang), "lang_set", s->lang_set, "items", items, "last_sku",
                         s->last_sku, "address", s->address, "zone", s->zone, "payment",
                         nlu_payment_to_string(s->payment), "change_for_cents", (json_int_t) s->change_for_cents,
                         "order_id", s->order_id[0] ? s->order_id : NULL, "updated_usec", (json_int_t) s->updated_usec,
                         "handoff_until_usec", (json_int_t) s->handoff_until_usec);
}

static int dup_opt(json_t *j, const char *key, char **ret) {
        json_t *v = json_object_get(j, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EINVAL;
        *ret = mem_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

/* Optional members read by hand: json_unpack() allocates, and its
 * failure under memory pressure would look like a bad state. */
static int get_string(json_t *j, const char *key, bool required, const char **ret) {
        json_t *v = json_object_get(j, key);

        if (!v || json_is_null(v)) {
                *ret = NULL;
                return required ? -EINVAL : 0;
        }
        if (!json_is_string(v))
                return -EINVAL;
        *ret = json_string_value(v);
        return 0;
}

static int get_uint(json_t *j, const char *key, int64_t *ret) {
        json_t *v = json_object_get(j, key);

        if (!v) {
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EINVAL;
        *ret = json_integer_value(v);
        return 0;
}

int conv_state_from_json(json_t *j, ConvState **ret) {
        _cleanup_(conv_state_freep) ConvState *s = NULL;
        const char *phase, *before, *lang, *payment, *order_id;
        json_t *items = json_object_get(j, "items"), *lang_set = json_object_get(j, "lang_set");
        int64_t change, updated, until;
        int k;

        if (!json_is_object(j) || !json_is_array(items) || (lang_set && !json_is_boolean(lang_set)) ||
            get_string(j, "phase", true, &phase) < 0 || get_string(j, "before_handoff", false, &before) < 0 ||
            get_string(j, "lang", true, &lang) < 0 || get_string(j, "payment", false, &payment) < 0 ||
            get_string(j, "order_id", false, &order_id) < 0 || get_uint(j, "change_for_cents", &change) < 0 ||
            get_uint(j, "updated_usec", &updated) < 0 || get_uint(j, "handoff_until_usec", &until) < 0)
                return -EINVAL;
        s = conv_state_new(NLU_LANG_PT);
        if (!s)
                return -ENOMEM;
        s->phase = conv_phase_from_string(phase);
        s->before_handoff = before ? conv_phase_from_string(before) : CONV_IDLE;
        s->lang = nlu_lang_from_string(lang);
        if (s->phase < 0 || s->before_handoff < 0 || s->lang < 0)
                return -EINVAL;
        s->lang_set = json_is_true(lang_set);
        if (payment) {
                s->payment = nlu_payment_from_string(payment);
                if (s->payment < 0)
                        return -EINVAL;
        }
        if (order_id) {
                if (strlen(order_id) != NLU_ORDER_ID_LEN)
                        return -EINVAL;
                strscpy(s->order_id, sizeof s->order_id, order_id);
        }
        s->change_for_cents = change;
        s->updated_usec = (uint64_t) updated;
        s->handoff_until_usec = (uint64_t) until;
        if (json_array_size(items) > CART_LINES_MAX)
                return -EINVAL;
        s->items = mem_new(ConvItem, json_array_size(items) + 1);
        if (!s->items)
                return -ENOMEM;
        size_t i;
        json_t *it;
        json_array_foreach (items, i, it) {
                const char *sku;
                int64_t qty;
                if (get_string(it, "sku", true, &sku) < 0 || get_uint(it, "qty", &qty) < 0 || qty < 1 ||
                    qty > CART_QTY_MAX)
                        return -EINVAL;
                s->items[s->n_items].sku = mem_strdup(sku);
                if (!s->items[s->n_items].sku)
                        return -ENOMEM;
                s->items[s->n_items++].qty = (unsigned) qty;
        }
        if ((k = dup_opt(j, "last_sku", &s->last_sku)) < 0 || (k = dup_opt(j, "address", &s->address)) < 0 ||
            (k = dup_opt(j, "zone", &s->zone)) < 0)
                return k;
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- actions ---------------------------------------------------------------- */

ConvDraft *conv_draft_free(ConvDraft *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_lines; i++) {
                free(d->lines[i].sku);
                free(d->lines[i].name);
        }
        free(d->lines);
        free(d->address);
        free(d->zone);
        free(d);
        return NULL;
}

void conv_actions_done(ConvActions *a) {
        strv_free(a->replies);
        free(a->alert);
        conv_draft_free(a->create);
        free(a->request_address);
        *a = (ConvActions){};
}

static const Config *config(const ConvEnv *env) {
        return env->snapshot->config;
}

static const Catalog *catalog(const ConvEnv *env) {
        return env->snapshot->catalog;
}

/* Render id in s's language. */
static int render(const ConvEnv *env, NluLang lang, const char *id, const TemplateVar *v, size_t n, char **ret) {
        return template_render(env->snapshot->templates, lang, id, v, n, ret);
}

/* Render id and queue it as a reply. */
static int say(const ConvEnv *env, const ConvState *s, ConvActions *out, const char *id, const TemplateVar *v,
               size_t n) {
        _cleanup_free_ char *text = NULL;
        int k = render(env, s->lang, id, v, n, &text);

        if (k < 0)
                return k;
        return strv_extend(&out->replies, text);
}

static const char *item_name(const CatalogItem *it, NluLang lang) {
        return lang == NLU_LANG_EN && it->name_en ? it->name_en : it->name_pt;
}

static int64_t stock_left(const ConvEnv *env, const CatalogItem *it) {
        int64_t n = env->stock ? env->stock(env->userdata, it->sku) : -1;
        return n >= 0 ? n : it->stock;
}

static int money(int64_t cents, NluLang lang, char **ret) {
        return format_money(cents, lang, ret);
}

/* ---- the cart ----------------------------------------------------------------- */

static ConvItem *cart_find(ConvState *s, const char *sku) {
        for (size_t i = 0; i < s->n_items; i++)
                if (streq(s->items[i].sku, sku))
                        return &s->items[i];
        return NULL;
}

static void cart_remove(ConvState *s, const char *sku) {
        for (size_t i = 0; i < s->n_items; i++)
                if (streq(s->items[i].sku, sku)) {
                        free(s->items[i].sku);
                        memmove(&s->items[i], &s->items[i + 1], (s->n_items - i - 1) * sizeof(ConvItem));
                        s->n_items--;
                        break;
                }
        if (s->last_sku && streq(s->last_sku, sku))
                s->last_sku = mfree(s->last_sku);
}

/* Set sku's quantity (replace) or add to it. */
static int cart_put(ConvState *s, const char *sku, unsigned qty, bool replace) {
        ConvItem *it = cart_find(s, sku);
        char *last = mem_strdup(sku);

        if (!last)
                return -ENOMEM;
        free(s->last_sku);
        s->last_sku = last;
        if (it) {
                it->qty = MIN(replace ? qty : it->qty + qty, (unsigned) CART_QTY_MAX);
                return 0;
        }
        if (s->n_items >= CART_LINES_MAX)
                return 0;
        ConvItem *v = mem_realloc(s->items, (s->n_items + 1) * sizeof(ConvItem));
        if (!v)
                return -ENOMEM;
        s->items = v;
        s->items[s->n_items].sku = mem_strdup(sku);
        if (!s->items[s->n_items].sku)
                return -ENOMEM;
        s->items[s->n_items++].qty = MIN(qty, (unsigned) CART_QTY_MAX);
        return 0;
}

static int64_t cart_subtotal(const ConvEnv *env, const ConvState *s) {
        int64_t t = 0;

        for (size_t i = 0; i < s->n_items; i++) {
                const CatalogItem *it = catalog_find_sku(catalog(env), s->items[i].sku);
                if (it)
                        t += it->price_cents * (int64_t) s->items[i].qty;
        }
        return t;
}

/* The cart as summary lines ("2x Pizza Calabresa R$ 105,80") joined by sep. */
static int cart_lines(const ConvEnv *env, const ConvState *s, const char *sep, char **ret) {
        _cleanup_(strv_freep) char **lines = NULL;
        int k;

        for (size_t i = 0; i < s->n_items; i++) {
                const CatalogItem *it = catalog_find_sku(catalog(env), s->items[i].sku);
                _cleanup_free_ char *price = NULL, *line = NULL;
                char qty[16];
                if (!it)
                        continue;
                snprintf(qty, sizeof qty, "%u", s->items[i].qty);
                if ((k = money(it->price_cents * (int64_t) s->items[i].qty, s->lang, &price)) < 0)
                        return k;
                const TemplateVar v[] = { { "qty", qty }, { "name", item_name(it, s->lang) }, { "price", price } };
                if ((k = render(env, s->lang, "summary_line", v, ELEMENTSOF(v), &line)) < 0 ||
                    (k = strv_extend(&lines, line)) < 0)
                        return k;
        }
        *ret = lines ? strv_join(lines, sep) : mem_strdup("");
        return *ret ? 0 : -ENOMEM;
}

/* "A, B ou C" / "A, B or C". */
static char *join_choices(char **l, NluLang lang) {
        size_t n = strv_length(l);

        if (n <= 1)
                return mem_strdup(n ? l[0] : "");
        char *last = l[n - 1];
        l[n - 1] = NULL;
        _cleanup_free_ char *head = strv_join(l, ", ");
        l[n - 1] = last;
        return head ? mem_printf("%s %s %s", head, lang == NLU_LANG_EN ? "or" : "ou", last) : NULL;
}

/* "X is sold out; how about A, B or C?": products of the same category
 * (else any) that are in stock and not in the cart. */
static int say_sold_out(const ConvEnv *env, ConvState *s, ConvActions *out, const CatalogItem *gone) {
        _cleanup_(strv_freep) char **alts = NULL;
        int k;

        for (unsigned pass = 0; pass < 2 && strv_length(alts) < ALTERNATIVES_MAX; pass++)
                for (size_t i = 0; i < catalog_n_items(catalog(env)) && strv_length(alts) < ALTERNATIVES_MAX; i++) {
                        const CatalogItem *it = catalog_item(catalog(env), i);
                        bool same = gone->category && it->category && streq(gone->category, it->category);
                        const char *name = item_name(it, s->lang);
                        if (it == gone || (pass == 0) != same || stock_left(env, it) <= 0 || cart_find(s, it->sku) ||
                            strv_contains(alts, name))
                                continue;
                        if ((k = strv_extend(&alts, name)) < 0)
                                return k;
                }
        _cleanup_free_ char *text = join_choices(alts, s->lang);
        if (!text)
                return -ENOMEM;
        const TemplateVar v[] = { { "item", item_name(gone, s->lang) }, { "alternatives", text } };
        return say(env, s, out, "sold_out", v, ELEMENTSOF(v));
}

/* Apply the items of a message to the cart.  Returns how many products
 * were found sold out (each answered), or -errno. */
static int apply_items(const ConvEnv *env, ConvState *s, const NluResult *r, ConvActions *out, bool *changed) {
        bool remove = nlu_result_has(r, NLU_SIGNAL_REMOVE), replace = nlu_result_has(r, NLU_SIGNAL_REPLACE);
        int n_sold_out = 0, k;

        for (size_t i = 0; i < r->n_items; i++) {
                const CatalogItem *it = catalog_find_sku(catalog(env), r->items[i].sku);
                if (!it)
                        continue;
                if (remove) {
                        if (cart_find(s, it->sku)) {
                                cart_remove(s, it->sku);
                                *changed = true;
                        }
                        continue;
                }
                ConvItem *have = cart_find(s, it->sku);
                unsigned want = MIN(r->items[i].qty, (unsigned) CART_QTY_MAX);
                unsigned total = replace || !have ? want : have->qty + want;
                if (stock_left(env, it) < (int64_t) total) {
                        if ((k = say_sold_out(env, s, out, it)) < 0)
                                return k;
                        n_sold_out++;
                        continue;
                }
                if ((k = cart_put(s, it->sku, want, replace)) < 0)
                        return k;
                *changed = true;
        }
        /* "na verdade 3": the last product named, now three */
        if (r->n_items == 0 && r->bare_qty > 0 && s->last_sku && (replace || s->phase == CONV_AWAIT_CONFIRM)) {
                const CatalogItem *it = catalog_find_sku(catalog(env), s->last_sku);
                if (it && stock_left(env, it) < (int64_t) r->bare_qty) {
                        if ((k = say_sold_out(env, s, out, it)) < 0)
                                return k;
                        return n_sold_out + 1;
                }
                _cleanup_free_ char *sku = mem_strdup(s->last_sku);
                if (!sku)
                        return -ENOMEM;
                if ((k = cart_put(s, sku, r->bare_qty, true)) < 0)
                        return k;
                *changed = true;
        }
        return n_sold_out;
}

/* ---- the address ---------------------------------------------------------------- */

static const Zone *zone_by_id(const ConvEnv *env, const char *id) {
        for (size_t i = 0; id && i < catalog_n_zones(catalog(env)); i++)
                if (streq(catalog_zone(catalog(env), i)->id, id))
                        return catalog_zone(catalog(env), i);
        return NULL;
}

static int say_outside(const ConvEnv *env, ConvState *s, ConvActions *out, const char *place) {
        _cleanup_free_ char *zones = catalog_neighbourhoods_text(catalog(env), s->lang == NLU_LANG_EN);

        if (!zones)
                return -ENOMEM;
        const TemplateVar v[] = { { "address", place ?: s->address }, { "zones", zones } };
        return say(env, s, out, "outside_zone", v, ELEMENTSOF(v));
}

/* Take address (the customer's words) as the delivery address, or as the
 * neighbourhood of the one given before (bare); context is the whole
 * message it came in, or NULL.  Returns 1 when the address
 * is now placed in a zone, 0 when a question or refusal was queued,
 * -errno. */
static int apply_address(const ConvEnv *env, ConvState *s, const char *address, bool bare, const char *context,
                         ConvActions *out) {
        const Zone *z = NULL;
        _cleanup_free_ char *place = NULL;
        int k = catalog_locate(catalog(env), address, bare, &z, &place);

        /* The rules keep the street and number; the neighbourhood or CEP
         * may be elsewhere in the message ("…, Tatuapé", "cep 08090-000"). */
        if (k == ZONE_PLACE_UNKNOWN && context && !streq(context, address))
                k = catalog_locate(catalog(env), context, false, &z, &place);
        if (k < 0)
                return k;
        if (!bare) {
                char *a = mem_strdup(address);
                if (!a)
                        return -ENOMEM;
                free(s->address);
                s->address = a;
        } else if (k == ZONE_PLACE_FOUND && s->address) {
                /* keep the neighbourhood with the address, for the courier */
                char *a = mem_printf("%s, %s", s->address, address);
                if (!a)
                        return -ENOMEM;
                free(s->address);
                s->address = a;
        }
        s->zone = mfree(s->zone);
        switch (k) {
        case ZONE_PLACE_FOUND:
                s->zone = mem_strdup(z->id);
                if (!s->zone)
                        return -ENOMEM;
                if (s->phase == CONV_AWAIT_NEIGHBOURHOOD)
                        s->phase = CONV_ORDERING;
                return 1;
        case ZONE_PLACE_OUTSIDE:
                k = say_outside(env, s, out, place);
                s->address = mfree(s->address);
                s->phase = CONV_ORDERING;
                return k < 0 ? k : 0;
        default: {
                const TemplateVar v[] = { { "address", s->address ?: address } };
                s->phase = CONV_AWAIT_NEIGHBOURHOOD;
                k = say(env, s, out, "ask_neighbourhood", v, ELEMENTSOF(v));
                return k < 0 ? k : 0;
        }
        }
}

/* ---- payment and the summary ----------------------------------------------------- */

static int payment_text(const ConvEnv *env, const ConvState *s, char **ret) {
        if (s->payment == NLU_PAYMENT_CASH && s->change_for_cents > 0) {
                _cleanup_free_ char *change = NULL;
                int k = money(s->change_for_cents, s->lang, &change);
                if (k < 0)
                        return k;
                const TemplateVar v[] = { { "change", change } };
                return render(env, s->lang, "payment_name_cash_change", v, ELEMENTSOF(v), ret);
        }
        char id[32];
        snprintf(id, sizeof id, "payment_name_%s", nlu_payment_to_string(s->payment));
        return render(env, s->lang, id, NULL, 0, ret);
}

static int say_summary(const ConvEnv *env, ConvState *s, ConvActions *out) {
        const Zone *z = zone_by_id(env, s->zone);
        _cleanup_free_ char *lines = NULL, *subtotal = NULL, *fee = NULL, *total = NULL, *payment = NULL;
        int64_t sub = cart_subtotal(env, s);
        char minutes[16];
        int k;

        if (!z)
                return -EINVAL;
        snprintf(minutes, sizeof minutes, "%" PRIu64, z->eta_usec / (60 * USEC_PER_SEC));
        if ((k = cart_lines(env, s, "\n", &lines)) < 0 || (k = money(sub, s->lang, &subtotal)) < 0 ||
            (k = money(z->fee_cents, s->lang, &fee)) < 0 || (k = money(sub + z->fee_cents, s->lang, &total)) < 0 ||
            (k = payment_text(env, s, &payment)) < 0)
                return k;
        const TemplateVar v[] = { { "lines", lines },  { "subtotal", subtotal },   { "fee", fee },
                                  { "total", total },  { "eta_minutes", minutes }, { "address", s->address },
                                  { "zone", z->name }, { "payment", payment } };
        s->phase = CONV_AWAIT_CONFIRM;
        return say(env, s, out, "summary", v, ELEMENTSOF(v));
}

/* Ask for what the order still lacks, one thing at a time, or send the
 * summary when nothing is missing. */
static int next_step(const ConvEnv *env, ConvState *s, ConvActions *out) {
        if (s->phase == CONV_AWAIT_NEIGHBOURHOOD)
                return 0; /* the question is out */
        if (s->n_items == 0) {
                s->phase = CONV_ORDERING;
                return say(env, s, out, "ask_items", NULL, 0);
        }
        if (!s->address || !s->zone) {
                _cleanup_free_ char *lines = NULL;
                int k = cart_lines(env, s, ", ", &lines);
                if (k < 0)
                        return k;
                const TemplateVar v[] = { { "items", lines } };
                s->phase = CONV_ORDERING;
                return say(env, s, out, "ask_address", v, ELEMENTSOF(v));
        }
        if (s->payment < 0) {
                const Zone *z = zone_by_id(env, s->zone);
                _cleanup_free_ char *total = NULL;
                int k = money(cart_subtotal(env, s) + (z ? z->fee_cents : 0), s->lang, &total);
                if (k < 0)
                        return k;
                const TemplateVar v[] = { { "total", total } };
                s->phase = CONV_ORDERING;
                return say(env, s, out, "ask_payment", v, ELEMENTSOF(v));
        }
        return say_summary(env, s, out);
}

/* Everything this message brings to the order being put together. */
static int build_order(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out) {
        const NluResult *r = in->nlu;
        bool changed = false, asked = false;
        int k;

        if (s->phase == CONV_IDLE)
                s->phase = CONV_ORDERING;
        k = apply_items(env, s, r, out, &changed);
        if (k < 0)
                return k;
        if (k > 0)
                asked = true;
        if (r->payment >= 0) {
                s->payment = r->payment;
                s->change_for_cents = r->payment == NLU_PAYMENT_CASH ? r->change_for_cents : 0;
                changed = true;
        }
        if (r->address) {
                k = apply_address(env, s, r->address, false, in->text, out);
                if (k < 0)
                        return k;
                if (k == 0)
                        return 0; /* one question at a time */
                changed = true;
        }
        if (!changed && !asked && r->intent == NLU_INTENT_PLACE_ORDER && s->n_items == 0) {
                s->phase = CONV_ORDERING;
                return say(env, s, out, "item_unknown", NULL, 0);
        }
        if (asked && s->n_items == 0)
                return 0; /* the sold-out answer asks already */
        out->why = changed ? "order updated" : "order asked";
        return next_step(env, s, out);
}

/* The order a SIM creates, priced from the catalog and the zone. */
static int make_draft(const ConvEnv *env, const ConvState *s, ConvDraft **ret) {
        const Zone *z = zone_by_id(env, s->zone);
        ConvDraft *d;

        if (!z)
                return -EINVAL;
        d = mem_new(ConvDraft, 1);
        if (!d)
                return -ENOMEM;
        d->lines = mem_new(ConvLine, s->n_items + 1);
        d->address = mem_strdup(s->address);
        d->zone = mem_strdup(z->id);
        if (!d->lines || !d->address || !d->zone) {
                conv_draft_free(d);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_items; i++) {
                const CatalogItem *it = catalog_find_sku(catalog(env), s->items[i].sku);
                if (!it)
                        continue;
                ConvLine *l = &d->lines[d->n_lines++];
                l->sku = mem_strdup(it->sku);
                l->name = mem_strdup(item_name(it, s->lang));
                if (!l->sku || !l->name) {
                        conv_draft_free(d);
                        return -ENOMEM;
                }
                l->qty = s->items[i].qty;
                l->unit_price_cents = it->price_cents;
                d->subtotal_cents += it->price_cents * (int64_t) l->qty;
        }
        d->fee_cents = z->fee_cents;
        d->total_cents = d->subtotal_cents + d->fee_cents;
        d->payment = s->payment;
        d->change_for_cents = s->change_for_cents;
        d->lang = s->lang;
        d->eta_usec = env->now_usec + z->eta_usec;
        *ret = d;
        return 0;
}

/* SIM to the summary: check the stock once more (it may have gone while
 * the customer thought), then the order. */
static int confirm_order(const ConvEnv *env, ConvState *s, ConvActions *out) {
        int k;

        for (size_t i = 0; i < s->n_items;) {
                const CatalogItem *it = catalog_find_sku(catalog(env), s->items[i].sku);
                if (it && stock_left(env, it) >= (int64_t) s->items[i].qty) {
                        i++;
                        continue;
                }
                if (it && (k = say_sold_out(env, s, out, it)) < 0)
                        return k;
                _cleanup_free_ char *sku = mem_strdup(s->items[i].sku);
                if (!sku)
                        return -ENOMEM;
                cart_remove(s, sku);
        }
        if (out->replies) {
                s->phase = CONV_ORDERING;
                return s->n_items > 0 ? say_summary(env, s, out) : 0;
        }
        k = make_draft(env, s, &out->create);
        if (k < 0)
                return k;
        out->why = "order confirmed";
        order_clear(s);
        s->phase = CONV_IDLE;
        return 0;
}

int conversation_placed(const ConvEnv *env, const ConvDraft *d, const char *id, char **ret) {
        _cleanup_free_ char *total = NULL;
        char minutes[16], clock[16], order_id_text[NLU_ORDER_ID_LEN + 1];
        int k = money(d->total_cents, d->lang, &total);

        if (k < 0)
                return k;
        snprintf(order_id_text, sizeof order_id_text, "%s", id);
        snprintf(minutes, sizeof minutes, "%" PRIu64,
                 d->eta_usec > env->now_usec ? (d->eta_usec - env->now_usec) / (60 * USEC_PER_SEC) : 0);
        conv_format_clock(d->eta_usec, clock, sizeof clock);
        const TemplateVar v[] = {
                { "order_id", order_id_text }, { "total", total }, { "eta_time", clock }, { "eta_minutes", minutes }
        };
        return render(env, d->lang, "order_placed", v, ELEMENTSOF(v), ret);
}

/* ---- questions about orders ---------------------------------------------------- */

void conv_format_clock(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, size, "%H:%M", &tm) == 0)
                strscpy(buf, size, "?");
}

/* The order a question is about: the id the customer gave if it is
 * theirs, else their latest active one.  1 found, 0 answered already
 * (unknown id, or no order), -errno. */
static int which_order(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out, ConvOrder *o) {
        const char *id = in->nlu->order_id[0] ? in->nlu->order_id : NULL;
        int k = env->find_order ? env->find_order(env->userdata, in->customer, id, o) : 0;

        if (k != 0)
                return k;
        if (id) {
                char order_id_text[NLU_ORDER_ID_LEN + 1];
                snprintf(order_id_text, sizeof order_id_text, "%s", id);
                const TemplateVar v[] = { { "order_id", order_id_text } };
                k = say(env, s, out, "unknown_order", v, ELEMENTSOF(v));
        } else
                k = say(env, s, out, "no_order", NULL, 0);
        out->why = "no such order";
        return k < 0 ? k : 0;
}

static int say_about_order(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out) {
        ConvOrder o = {};
        char order_id_text[NLU_ORDER_ID_LEN + 1], clock[16] = "", minutes[16] = "", status_id[48];
        _cleanup_free_ char *status = NULL;
        int k = which_order(env, s, in, out, &o);

        if (k <= 0)
                return k;
        snprintf(order_id_text, sizeof order_id_text, "%s", o.id);
        strscpy(out->about_order, sizeof out->about_order, o.id);
        if (o.eta_usec > 0) {
                conv_format_clock(o.eta_usec, clock, sizeof clock);
                snprintf(minutes, sizeof minutes, "%" PRIu64,
                         o.eta_usec > env->now_usec
                                 ? (o.eta_usec - env->now_usec + 59 * USEC_PER_SEC) / (60 * USEC_PER_SEC)
                                 : 0);
        }
        snprintf(status_id, sizeof status_id, "status_name_%s", o.status);
        for (char *p = status_id; *p; p++)
                *p = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        k = render(env, s->lang, status_id, NULL, 0, &status);
        if (k == -ENOENT)
                status = mem_strdup(o.status), k = status ? 0 : -ENOMEM;
        if (k < 0)
                return k;
        const TemplateVar v[] = {
                { "order_id", order_id_text }, { "status", status }, { "eta_time", clock }, { "eta_minutes", minutes }
        };
        out->why = "order question";
        return say(env, s, out, in->nlu->intent == NLU_INTENT_ORDER_ETA && o.eta_usec > 0 ? "eta" : "status", v,
                   ELEMENTSOF(v));
}

/* A new address for order o (the customer's words; context: the whole
 * message): placed in a zone and quoted before anything is asked of the
 * workflow.  Outside the zones, say so; a fee that changes, ask first;
 * else hand it over. */
static int propose_address(const ConvEnv *env, ConvState *s, const ConvOrder *o, const char *address,
                           const char *context, ConvActions *out) {
        const Zone *z = NULL;
        _cleanup_free_ char *place = NULL;
        char order_id_text[NLU_ORDER_ID_LEN + 1];
        int k = catalog_locate(catalog(env), address, false, &z, &place);

        if (k == ZONE_PLACE_UNKNOWN && context && !streq(context, address))
                k = catalog_locate(catalog(env), context, false, &z, &place);
        if (k < 0)
                return k;
        snprintf(order_id_text, sizeof order_id_text, "%s", o->id);
        strscpy(out->about_order, sizeof out->about_order, o->id);
        /* Dispatched already: the workflow refuses, with its reason. */
        bool late = streq(o->status, "IN_DELIVERY") || streq(o->status, "DELIVERED") || streq(o->status, "CANCELLED");
        if (late)
                k = ZONE_PLACE_FOUND, z = NULL;
        if (k == ZONE_PLACE_OUTSIDE) {
                free(s->address);
                s->address = mem_strdup(address);
                if (!s->address)
                        return -ENOMEM;
                k = say_outside(env, s, out, place);
                s->address = mfree(s->address);
                s->phase = CONV_AWAIT_NEW_ADDRESS;
                out->why = "new address outside the zones";
                return k;
        }
        if (k == ZONE_PLACE_UNKNOWN) {
                const TemplateVar v[] = { { "address", address } };
                s->phase = CONV_AWAIT_NEW_ADDRESS;
                out->why = "new address not placed";
                return say(env, s, out, "ask_neighbourhood", v, ELEMENTSOF(v));
        }
        if (z && z->fee_cents != o->fee_cents) {
                _cleanup_free_ char *old_fee = NULL, *new_fee = NULL, *total = NULL;
                if ((k = money(o->fee_cents, s->lang, &old_fee)) < 0 ||
                    (k = money(z->fee_cents, s->lang, &new_fee)) < 0 ||
                    (k = money(o->total_cents - o->fee_cents + z->fee_cents, s->lang, &total)) < 0)
                        return k;
                free(s->address);
                s->address = mem_strdup(address);
                if (!s->address)
                        return -ENOMEM;
                const TemplateVar v[] = { { "order_id", order_id_text },
                                          { "address", address },
                                          { "old_fee", old_fee },
                                          { "new_fee", new_fee },
                                          { "total", total } };
                s->phase = CONV_AWAIT_ADDRESS_FEE;
                out->why = "new fee asked";
                return say(env, s, out, "change_address_fee", v, ELEMENTSOF(v));
        }
        out->request = CONV_REQUEST_CHANGE_ADDRESS;
        strscpy(out->request_order, sizeof out->request_order, o->id);
        out->request_address = mem_strdup(address);
        if (!out->request_address)
                return -ENOMEM;
        s->order_id[0] = 0;
        s->phase = CONV_IDLE;
        out->why = "address change requested";
        const TemplateVar v[] = { { "order_id", order_id_text } };
        return say(env, s, out, "request_forwarded", v, ELEMENTSOF(v));
}

static int ask_about_order(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out) {
        ConvOrder o = {};
        char order_id_text[NLU_ORDER_ID_LEN + 1];
        int k = which_order(env, s, in, out, &o);

        if (k <= 0)
                return k;
        snprintf(order_id_text, sizeof order_id_text, "%s", o.id);
        strscpy(s->order_id, sizeof s->order_id, o.id);
        strscpy(out->about_order, sizeof out->about_order, o.id);
        const TemplateVar v[] = { { "order_id", order_id_text } };
        if (in->nlu->intent == NLU_INTENT_CANCEL_ORDER) {
                s->phase = CONV_AWAIT_CANCEL;
                out->why = "cancel asked";
                return say(env, s, out, "cancel_ask", v, ELEMENTSOF(v));
        }
        if (in->nlu->address) /* "change the address to Rua X 10" */
                return propose_address(env, s, &o, in->nlu->address, in->text, out);
        s->phase = CONV_AWAIT_NEW_ADDRESS;
        out->why = "new address asked";
        return say(env, s, out, "change_address_ask", v, ELEMENTSOF(v));
}

/* ---- menu, help, handoff ---------------------------------------------------------- */

static int say_menu(const ConvEnv *env, ConvState *s, ConvActions *out) {
        _cleanup_(strv_freep) char **lines = NULL;
        int k;

        for (size_t i = 0; i < catalog_n_items(catalog(env)); i++) {
                const CatalogItem *it = catalog_item(catalog(env), i);
                _cleanup_free_ char *price = NULL, *line = NULL;
                if ((k = money(it->price_cents, s->lang, &price)) < 0)
                        return k;
                const TemplateVar v[] = { { "name", item_name(it, s->lang) }, { "price", price } };
                if ((k = render(env, s->lang, stock_left(env, it) > 0 ? "menu_line" : "menu_line_sold_out", v,
                                ELEMENTSOF(v), &line)) < 0 ||
                    (k = strv_extend(&lines, line)) < 0)
                        return k;
        }
        _cleanup_free_ char *text = lines ? strv_join(lines, "\n") : mem_strdup("");
        if (!text)
                return -ENOMEM;
        const TemplateVar v[] = { { "lines", text } };
        out->why = "menu";
        return say(env, s, out, "menu", v, ELEMENTSOF(v));
}

static int start_handoff(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out) {
        int k;

        if (s->phase != CONV_HANDOFF)
                s->before_handoff = s->phase;
        s->phase = CONV_HANDOFF;
        s->handoff_until_usec = env->now_usec + config(env)->conversation_handoff_timeout;
        out->why = "handoff";
        if ((k = say(env, s, out, "handoff", NULL, 0)) < 0)
                return k;
        const TemplateVar v[] = { { "customer", in->customer }, { "text", in->text } };
        /* the store reads Portuguese */
        return render(env, NLU_LANG_PT, "handoff_alert", v, ELEMENTSOF(v), &out->alert);
}

int conversation_resume(const ConvEnv *env, ConvState *s, ConvActions *out) {
        if (s->phase != CONV_HANDOFF)
                return -ESRCH;
        s->phase = s->before_handoff == CONV_HANDOFF ? CONV_IDLE : s->before_handoff;
        s->handoff_until_usec = 0;
        out->why = "handoff ended";
        return say(env, s, out, "handoff_resumed", NULL, 0);
}

/* ---- the turn ---------------------------------------------------------------------- */

bool conversation_expired(const ConvEnv *env, const ConvState *s) {
        uint64_t idle = config(env)->conversation_idle_timeout;

        if (s->phase == CONV_IDLE || s->phase == CONV_HANDOFF || idle == 0)
                return false;
        return env->now_usec >= s->updated_usec + idle;
}

/* The conversation keeps its language; a message changes it only when it
 * says enough to tell ("add a brownie" in a Portuguese conversation is
 * not enough; "Hi, can I order two pizzas" is). */
static void update_lang(ConvState *s, const NluResult *r, const char *text) {
        size_t words = 0;

        for (const char *p = text; p && *p;) {
                p += strspn(p, " \t\r\n,.!?;:");
                if (!*p)
                        break;
                words++;
                p += strcspn(p, " \t\r\n,.!?;:");
        }
        bool telling = words >= 4 && r->intent != NLU_INTENT_CONFIRM && r->intent != NLU_INTENT_DENY &&
                r->intent != NLU_INTENT_OTHER;
        if (!s->lang_set || telling) {
                s->lang = r->lang;
                s->lang_set = true;
        }
}

static bool brings_order(const NluResult *r) {
        return r->n_items > 0 || r->address || r->payment >= 0 || r->bare_qty > 0;
}

static int turn(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out) {
        const NluResult *r = in->nlu;
        int k;

        /* STOP is recorded when the message is stored (before it is
         * acknowledged); each STOP is confirmed once, even though the
         * customer counts as opted out already. */
        if (r->intent == NLU_INTENT_OPT_OUT) {
                update_lang(s, r, in->text);
                order_clear(s);
                s->phase = CONV_IDLE;
                out->opt = CONV_OPT_OUT;
                out->opt_out_confirmation = true;
                out->why = "opted out";
                return say(env, s, out, "opted_out", NULL, 0);
        }
        /* Opted out: only START is heard, and nothing else is answered. */
        if (in->opted_out) {
                if (!nlu_result_has(r, NLU_SIGNAL_OPT_IN)) {
                        out->why = "opted out: not answered";
                        return 0;
                }
                update_lang(s, r, in->text);
                out->opt = CONV_OPT_IN;
                s->phase = CONV_IDLE;
                out->why = "opted in";
                return say(env, s, out, "opted_in", NULL, 0);
        }
        update_lang(s, r, in->text);
        if (s->phase == CONV_HANDOFF) {
                if (env->now_usec < s->handoff_until_usec) {
                        out->why = "handoff: a person answers";
                        return 0;
                }
                s->phase = s->before_handoff == CONV_HANDOFF ? CONV_IDLE : s->before_handoff;
        }
        if (conversation_expired(env, s)) {
                bool continues = r->intent == NLU_INTENT_CONFIRM || r->intent == NLU_INTENT_DENY ||
                        (s->phase == CONV_AWAIT_NEIGHBOURHOOD && !brings_order(r));
                order_clear(s);
                s->phase = CONV_IDLE;
                if (continues) {
                        out->why = "expired";
                        return say(env, s, out, "cart_expired", NULL, 0);
                }
        }
        if (nlu_result_has(r, NLU_SIGNAL_OPT_IN) && r->intent == NLU_INTENT_OTHER) {
                out->why = "already opted in";
                return say(env, s, out, "opted_in", NULL, 0);
        }

        /* A mail that may not be from whom it says gets general answers
         * only: it cannot place, change or cancel an order. */
        if (in->unauthenticated &&
            (brings_order(r) || r->intent == NLU_INTENT_PLACE_ORDER || r->intent == NLU_INTENT_CANCEL_ORDER ||
             r->intent == NLU_INTENT_CHANGE_ADDRESS ||
             (r->intent == NLU_INTENT_CONFIRM && s->phase != CONV_IDLE && s->phase != CONV_ORDERING))) {
                out->why = "unauthenticated mail: no orders";
                return say(env, s, out, "mail_unauthenticated", NULL, 0);
        }

        switch (r->intent) {
        case NLU_INTENT_HELP:
                out->why = "help";
                return say(env, s, out, "help", NULL, 0);
        case NLU_INTENT_HUMAN:
                return start_handoff(env, s, in, out);
        case NLU_INTENT_MENU:
                return say_menu(env, s, out);
        case NLU_INTENT_ORDER_STATUS:
        case NLU_INTENT_ORDER_ETA:
                return say_about_order(env, s, in, out);
        case NLU_INTENT_CANCEL_ORDER:
                if (s->phase == CONV_ORDERING || s->phase == CONV_AWAIT_CONFIRM ||
                    s->phase == CONV_AWAIT_NEIGHBOURHOOD) {
                        /* no order yet: the cart goes */
                        if (!r->order_id[0]) {
                                order_clear(s);
                                s->phase = CONV_IDLE;
                                out->why = "cart dropped";
                                return say(env, s, out, "cart_cleared", NULL, 0);
                        }
                }
                return ask_about_order(env, s, in, out);
        case NLU_INTENT_CHANGE_ADDRESS:
                if (s->phase == CONV_ORDERING || s->phase == CONV_AWAIT_CONFIRM ||
                    s->phase == CONV_AWAIT_NEIGHBOURHOOD) {
                        if (r->address)
                                return build_order(env, s, in, out);
                        s->address = mfree(s->address);
                        s->zone = mfree(s->zone);
                        return next_step(env, s, out);
                }
                return ask_about_order(env, s, in, out);
        default:
                break;
        }

        switch (s->phase) {
        case CONV_AWAIT_CONFIRM:
                if (r->intent == NLU_INTENT_CONFIRM && !brings_order(r))
                        return confirm_order(env, s, out);
                if (r->intent == NLU_INTENT_DENY && !brings_order(r)) {
                        s->phase = CONV_ORDERING;
                        out->why = "summary denied";
                        return say(env, s, out, "ask_change", NULL, 0);
                }
                break;
        case CONV_AWAIT_CANCEL:
        case CONV_AWAIT_NEW_ADDRESS: {
                char order_id_text[NLU_ORDER_ID_LEN + 1];
                snprintf(order_id_text, sizeof order_id_text, "%s", s->order_id);
                const TemplateVar v[] = { { "order_id", order_id_text } };
                bool cancel = s->phase == CONV_AWAIT_CANCEL;
                if (cancel && r->intent == NLU_INTENT_CONFIRM) {
                        out->request = CONV_REQUEST_CANCEL;
                } else if (cancel && r->intent == NLU_INTENT_DENY) {
                        s->phase = CONV_IDLE;
                        out->why = "cancel withdrawn";
                        return say(env, s, out, "cancel_kept", v, ELEMENTSOF(v));
                } else if (!cancel && (r->address || r->intent == NLU_INTENT_OTHER)) {
                        /* the order as it is now: its fee may have changed since */
                        ConvOrder o = {};
                        k = env->find_order ? env->find_order(env->userdata, in->customer, s->order_id, &o) : 0;
                        if (k < 0)
                                return k;
                        if (k == 0) {
                                s->phase = CONV_IDLE;
                                out->why = "no such order";
                                return say(env, s, out, "unknown_order", v, ELEMENTSOF(v));
                        }
                        return propose_address(env, s, &o, r->address ?: in->text, in->text, out);
                } else if (!cancel && r->intent == NLU_INTENT_DENY) {
                        s->phase = CONV_IDLE;
                        out->why = "address change withdrawn";
                        return say(env, s, out, "cancel_kept", v, ELEMENTSOF(v));
                } else
                        break;
                strscpy(out->request_order, sizeof out->request_order, s->order_id);
                s->order_id[0] = 0;
                s->phase = CONV_IDLE;
                out->why = cancel ? "cancel requested" : "address change requested";
                return say(env, s, out, "request_forwarded", v, ELEMENTSOF(v));
        }
        case CONV_AWAIT_ADDRESS_FEE: {
                char order_id_text[NLU_ORDER_ID_LEN + 1];
                snprintf(order_id_text, sizeof order_id_text, "%s", s->order_id);
                const TemplateVar v[] = { { "order_id", order_id_text } };
                strscpy(out->about_order, sizeof out->about_order, s->order_id);
                if (r->intent == NLU_INTENT_CONFIRM && s->address) {
                        out->request = CONV_REQUEST_CHANGE_ADDRESS;
                        strscpy(out->request_order, sizeof out->request_order, s->order_id);
                        out->request_address = TAKE_PTR(s->address);
                        s->order_id[0] = 0;
                        s->phase = CONV_IDLE;
                        out->why = "address change requested";
                        return say(env, s, out, "request_forwarded", v, ELEMENTSOF(v));
                }
                if (r->intent == NLU_INTENT_DENY) {
                        s->address = mfree(s->address);
                        s->order_id[0] = 0;
                        s->phase = CONV_IDLE;
                        out->why = "address change withdrawn";
                        return say(env, s, out, "cancel_kept", v, ELEMENTSOF(v));
                }
                if (r->address) {
                        /* yet another address */
                        ConvOrder o = {};
                        k = env->find_order ? env->find_order(env->userdata, in->customer, s->order_id, &o) : 0;
                        if (k <= 0)
                                return k;
                        return propose_address(env, s, &o, r->address, in->text, out);
                }
                break;
        }
        case CONV_AWAIT_NEIGHBOURHOOD:
                if (!r->address && r->n_items == 0 &&
                    (r->intent == NLU_INTENT_OTHER || r->intent == NLU_INTENT_PLACE_ORDER)) {
                        k = apply_address(env, s, in->text, true, NULL, out);
                        if (k <= 0)
                                return k;
                        out->why = "address placed";
                        return next_step(env, s, out);
                }
                break;
        default:
                break;
        }

        if (brings_order(r) || r->intent == NLU_INTENT_PLACE_ORDER)
                return build_order(env, s, in, out);
        if (s->phase == CONV_ORDERING && r->intent == NLU_INTENT_OTHER && !s->address && s->n_items > 0 &&
            strlen(in->text) >= 6) {
                /* the answer to "which address?" that the rules did not read as one */
                k = apply_address(env, s, in->text, false, NULL, out);
                if (k <= 0)
                        return k;
                return next_step(env, s, out);
        }
        if (r->intent == NLU_INTENT_CONFIRM || r->intent == NLU_INTENT_DENY) {
                if (s->phase != CONV_IDLE)
                        return next_step(env, s, out);
        }
        out->why = "out of scope";
        return say(env, s, out, "fallback", NULL, 0);
}

int conversation_turn(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out) {
        int k = turn(env, s, in, out);

        if (k >= 0)
                s->updated_usec = env->now_usec;
        return k;
}
