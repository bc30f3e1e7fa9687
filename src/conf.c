/* SPDX-License-Identifier: MIT */
/*
 * conf.c — the configuration table and its parser.
 *
 * Adding a key is one row in conf_keys[] and one field in struct Config;
 * parsing, bounds, defaults, --dump-config, reload carry-over and the man
 * page check all follow from the row.
 *
 * Security: see conf.h.  Values are bounded by INI_LINE_MAX; numbers are
 * parsed strictly (strutil.c).
 */
#include "conf.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ini.h"
#include "listen.h"
#include "outbox-smtp.h"
#include "strutil.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static const char *const nlu_backend_table[] = { [NLU_RULES] = "rules", [NLU_BEDROCK] = "bedrock", NULL };
static const char *const engine_backend_table[] = {
        [ENGINE_LOCAL] = "local", [ENGINE_STEPFUNCTIONS] = "stepfunctions", NULL
};
static const char *const engine_cancel_until_table[] = { [ENGINE_CANCEL_UNTIL_CONFIRMED] = "CONFIRMED",
                                                         [ENGINE_CANCEL_UNTIL_PREPARING] = "PREPARING",
                                                         [ENGINE_CANCEL_UNTIL_READY] = "READY",
                                                         NULL };
static const char *const sms_transport_table[] = {
        [SMS_TRANSPORT_LOG] = "log", [SMS_TRANSPORT_SNS] = "sns", [SMS_TRANSPORT_EUM] = "eum", NULL
};
static const char *const mail_transport_table[] = {
        [MAIL_TRANSPORT_LOG] = "log", [MAIL_TRANSPORT_SMTP] = "smtp", NULL
};
static const char *const smtp_starttls_table[] = {
        [SMTP_STARTTLS_REQUIRED] = "required", [SMTP_STARTTLS_OPTIONAL] = "optional", [SMTP_STARTTLS_OFF] = "off", NULL
};
static const char *const log_level_table[] = { "emerg",  "alert", "crit",  "err", "warning",
                                               "notice", "info",  "debug", NULL };

static int table_lookup(const char *const *table, const char *s) {
        for (size_t i = 0; table[i]; i++)
                if (streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

static const char *table_name(const char *const *table, size_t n, int i) {
        if (i < 0 || (size_t) i >= n)
                return NULL;
        return table[i];
}

#define DEFINE_STRING_TABLE(name, type, table, max)                                                                    \
        const char *name##_to_string(type v) {                                                                         \
                return table_name(table, max, (int) v);                                                                \
        }                                                                                                              \
        type name##_from_string(const char *s) {                                                                       \
                return (type) table_lookup(table, s);                                                                  \
        }

DEFINE_STRING_TABLE(nlu_backend, NluBackend, nlu_backend_table, _NLU_BACKEND_MAX)
DEFINE_STRING_TABLE(engine_backend, EngineBackend, engine_backend_table, _ENGINE_BACKEND_MAX)
DEFINE_STRING_TABLE(engine_cancel_until, EngineCancelUntil, engine_cancel_until_table, _ENGINE_CANCEL_UNTIL_MAX)
DEFINE_STRING_TABLE(sms_transport, SmsTransport, sms_transport_table, _SMS_TRANSPORT_MAX)
DEFINE_STRING_TABLE(mail_transport, MailTransport, mail_transport_table, _MAIL_TRANSPORT_MAX)

/* systemd passes StateDirectory= and RuntimeDirectory= as colon-separated
 * lists; the first entry is ours. */
static const char *first_of_env(const char *name, const char *suffix) {
        static char buf[2][4096];
        static int which;
        const char *e = getenv(name);
        char *b;

        if (isempty(e))
                return NULL;
        b = buf[which++ % 2];
        snprintf(b, sizeof buf[0], "%.*s%s", (int) strcspn(e, ":"), e, suffix);
        return b;
}

static const char *default_state_directory(void) {
        return first_of_env("STATE_DIRECTORY", "");
}

static const char *default_control_socket(void) {
        return first_of_env("RUNTIME_DIRECTORY", "/control.sock");
}

#define OFF(field) offsetof(Config, field)
#define USEC(s) ((uint64_t) (s) *USEC_PER_SEC)

static const ConfKey conf_keys[] = {
        { "daemon", "state_directory", CONF_PATH, LOCALSTATEDIR "/lib/deliveryd", default_state_directory, 0, 0, NULL,
          OFF(state_directory), false,
          "Directory holding the store (deliveryd.sqlite) and the instance lock. Defaults to $STATE_DIRECTORY when "
          "systemd sets it." },
        { "daemon", "log_level", CONF_ENUM, "info", NULL, 0, 0, log_level_table, OFF(log_level), true,
          "Most verbose level logged: emerg, alert, crit, err, warning, notice, info or debug." },
        { "daemon", "drain_timeout", CONF_DURATION, "10s", NULL, 0, USEC(600), NULL, OFF(drain_timeout_usec), true,
          "On SIGTERM, how long in-flight work may take to finish before the daemon exits anyway." },

        { "store", "name", CONF_STRING, "deliveryd", NULL, 0, 0, NULL, OFF(store_name), true,
          "The business's name, as customers see it in replies." },
        { "store", "catalog", CONF_PATH, "catalog.conf", NULL, 0, 0, NULL, OFF(store_catalog), true,
          "File listing the products: SKU, names, price, stock, aliases." },
        { "store", "zones", CONF_PATH, "zones.conf", NULL, 0, 0, NULL, OFF(store_zones), true,
          "File listing the delivery zones: neighbourhoods, CEP prefixes, streets, fee and delivery time." },
        { "store", "templates", CONF_PATH, "templates", NULL, 0, 0, NULL, OFF(store_templates), true,
          "Directory of the reply templates: pt-BR/ID.txt and en/ID.txt for every template id." },
        { "store", "timezone", CONF_STRING, "America/Sao_Paulo", NULL, 0, 0, NULL, OFF(store_timezone), false,
          "Time zone (a tz database name) of the times on the tracking page." },

        { "http", "listen", CONF_LISTEN, "127.0.0.1:8080", NULL, 0, 0, NULL, OFF(http_listen), false,
          "Address of the HTTP service (webhooks, health, metrics, tracking pages); port 0 picks a free port; "
          "empty turns it off. A socket passed by systemd with FileDescriptorName=http takes precedence." },
        { "http", "max_body", CONF_SIZE, "256K", NULL, 1024, 64ULL * 1024 * 1024, NULL, OFF(http_max_body), true,
          "Largest request body accepted; larger ones get 413." },
        { "http", "connection_timeout", CONF_DURATION, "10s", NULL, USEC(1), USEC(3600), NULL,
          OFF(http_connection_timeout_usec), false, "An idle HTTP connection is closed after this long." },
        { "http", "header_timeout", CONF_DURATION, "10s", NULL, USEC(1), USEC(300), NULL, OFF(http_header_timeout_usec),
          false,
          "A connection that has not sent a whole request head this long after it was opened (or after its previous "
          "answer) is closed, however slowly it keeps sending." },
        { "http", "body_timeout", CONF_DURATION, "30s", NULL, USEC(1), USEC(3600), NULL, OFF(http_body_timeout_usec),
          false, "A request whose body has not arrived whole this long after its head is closed." },
        { "http", "max_connections", CONF_UINT, "512", NULL, 1, 65536, NULL, OFF(http_max_connections), false,
          "Most HTTP connections open at once." },
        { "http", "max_connections_per_ip", CONF_UINT, "64", NULL, 1, 65536, NULL, OFF(http_max_connections_per_ip),
          false, "Most HTTP connections open at once from one client address." },
        { "http", "api_token", CONF_STRING, "", NULL, 0, 0, NULL, OFF(http_api_token), true,
          "Bearer token of the store and courier API (POST /api/orders/ID/status). Prefer http.api_token_file. "
          "Empty (and no file): the API answers 401 to everyone." },
        { "http", "api_token_file", CONF_PATH, "", NULL, 0, 0, NULL, OFF(http_api_token_file), true,
          "File whose first line is the bearer token of the store and courier API, read at each request (so a "
          "new token needs no reload). Wins over http.api_token." },
        { "http", "public_url", CONF_STRING, "", NULL, 0, 0, NULL, OFF(http_public_url), true,
          "Address at which customers reach the HTTP service, e.g. https://pedidos.example.com; tracking links are "
          "this plus /t/TOKEN. Empty: orders have no tracking link." },

        { "lmtp", "listen", CONF_LISTEN, "", NULL, 0, 0, NULL, OFF(lmtp_listen), false,
          "Address of the LMTP service for the local MTA (\"unix:PATH\" or host:port); empty turns it off. A "
          "socket passed by systemd with FileDescriptorName=lmtp takes precedence." },
        { "lmtp", "timeout", CONF_DURATION, "5min", NULL, USEC(1), USEC(3600), NULL, OFF(lmtp_timeout_usec), false,
          "An LMTP session idle this long is closed (421 4.4.2)." },
        { "lmtp", "max_recipients", CONF_UINT, "100", NULL, 1, 10000, NULL, OFF(lmtp_max_recipients), false,
          "Most recipients in one LMTP transaction; more get 452 4.5.3." },
        { "lmtp", "max_connections", CONF_UINT, "32", NULL, 1, 4096, NULL, OFF(lmtp_max_connections), false,
          "Most LMTP sessions at once; more get 421 4.3.2." },

        { "sns", "topics", CONF_LIST, "", NULL, 0, 0, NULL, OFF(sns_topics), true,
          "TopicArns whose messages are accepted, space-separated; a message or subscription request from any other "
          "topic is refused with 403. Empty: none." },
        { "sns", "certificate_cache", CONF_PATH, "", NULL, 0, 0, NULL, OFF(sns_certificate_cache), true,
          "Directory of SNS signing certificates, each as <SHA-256 of its URL>.pem; one found there is used without "
          "download (offline installs put theirs here). Empty: sns-certificates in the state directory." },
        { "sns", "verify_threads", CONF_UINT, "2", NULL, 0, 64, NULL, OFF(sns_verify_threads), false,
          "Threads that parse SNS messages and check their signatures, beside the loop that does everything "
          "else; 0: the loop does it too. More than the cores left to the loop does not help." },
        { "sns", "min_signature_version", CONF_UINT, "1", NULL, 1, 2, NULL, OFF(sns_min_signature_version), true,
          "Lowest SignatureVersion accepted: 1 (SHA1withRSA) or 2 (SHA256withRSA)." },
        { "sns", "timestamp_max_age", CONF_DURATION, "65min", NULL, USEC(1), USEC(7 * 86400), NULL,
          OFF(sns_timestamp_max_age_usec), true,
          "A message whose Timestamp is older than this is refused as a replay (SNS keeps the original Timestamp "
          "when it retries)." },
        { "sns", "timestamp_max_ahead", CONF_DURATION, "5min", NULL, 0, USEC(86400), NULL,
          OFF(sns_timestamp_max_ahead_usec), true,
          "A message whose Timestamp is further than this in the future is refused (clock skew allowance)." },
        { "sns", "fetch_timeout", CONF_DURATION, "10s", NULL, USEC(1), USEC(120), NULL, OFF(sns_fetch_timeout_usec),
          true, "Time allowed to download a signing certificate or to confirm a subscription." },

        { "http_client", "connect_to", CONF_LIST, "", NULL, 0, 0, NULL, OFF(http_client_connect_to), true,
          "Outgoing connections to HOST:PORT go to CONNECT-HOST:CONNECT-PORT instead, written "
          "HOST:PORT:CONNECT-HOST:CONNECT-PORT and space-separated (as curl --connect-to); TLS still checks HOST. For "
          "VPC endpoints and test set-ups." },
        { "http_client", "ca_file", CONF_PATH, "", NULL, 0, 0, NULL, OFF(http_client_ca_file), true,
          "CA bundle that outgoing HTTPS connections trust; empty: the system's (/etc/ssl/certs)." },

        { "aws", "region", CONF_STRING, "us-east-1", NULL, 0, 0, NULL, OFF(aws_region), false,
          "The AWS region of the services the daemon calls (SNS Publish for sms.transport=sns)." },
        { "aws", "endpoint_sns", CONF_STRING, "", NULL, 0, 0, NULL, OFF(aws_endpoint_sns), false,
          "URL of the SNS API, http:// or https://; empty: https://sns.REGION.amazonaws.com/. For VPC endpoints "
          "and tests." },
        { "aws", "endpoint_eum", CONF_STRING, "", NULL, 0, 0, NULL, OFF(aws_endpoint_eum), false,
          "URL of the End User Messaging SMS API (sms.transport=eum); empty: "
          "https://sms-voice.REGION.amazonaws.com/. For VPC endpoints and tests." },
        { "aws", "endpoint_bedrock", CONF_STRING, "", NULL, 0, 0, NULL, OFF(aws_endpoint_bedrock), true,
          "Base URL of the Bedrock Runtime API (nlu.backend=bedrock), http:// or https://, without a path; empty: "
          "https://bedrock-runtime.REGION.amazonaws.com. For VPC endpoints and tests." },
        { "aws", "endpoint_states", CONF_STRING, "", NULL, 0, 0, NULL, OFF(aws_endpoint_states), false,
          "URL of the Step Functions API (engine.backend=stepfunctions), http:// or https://, with the path "
          "requests are posted to; empty: https://states.REGION.amazonaws.com/. For VPC endpoints and tests." },

        { "pix", "key", CONF_STRING, "", NULL, 0, 0, NULL, OFF(pix_key), true,
          "The store's Pix key (e-mail, +55 phone, CPF/CNPJ digits or random key) in the BR Codes of Pix orders. "
          "Empty: Pix payment fails." },
        { "pix", "merchant_name", CONF_STRING, "", NULL, 0, 0, NULL, OFF(pix_merchant_name), true,
          "Merchant name in the BR Code, folded to ASCII and cut to 25 characters. Empty: store.name." },
        { "pix", "merchant_city", CONF_STRING, "", NULL, 0, 0, NULL, OFF(pix_merchant_city), true,
          "Merchant city in the BR Code, folded to ASCII and cut to 15 characters; required for Pix." },

        { "control", "socket", CONF_PATH, "/run/deliveryd/control.sock", default_control_socket, 0, 0, NULL,
          OFF(control_socket), false,
          "Unix socket of the control protocol used by deliveryctl (mode 0660). Defaults to "
          "$RUNTIME_DIRECTORY/control.sock when systemd sets it." },

        { "nlu", "backend", CONF_ENUM, "rules", NULL, 0, 0, nlu_backend_table, OFF(nlu_backend), true,
          "How customer messages are understood: rules (offline) or bedrock (Amazon Bedrock)." },
        { "nlu", "rules", CONF_PATH, "nlu/intents.conf", NULL, 0, 0, NULL, OFF(nlu_rules), true,
          "File of the rules backend: intent patterns per language, abbreviations, number words, address and "
          "order id words. Product names and aliases come from store.catalog." },
        { "nlu", "max_input", CONF_SIZE, "4K", NULL, 256, 64 * 1024, NULL, OFF(nlu_max_input), true,
          "Most bytes of one message that are read for its meaning; the rest is ignored." },
        { "nlu", "model_id", CONF_STRING, "anthropic.claude-3-haiku-20240307-v1:0", NULL, 0, 0, NULL, OFF(nlu_model_id),
          true, "With nlu.backend=bedrock: the model (or inference profile) id or ARN that the Converse API calls." },
        { "nlu", "timeout_ms", CONF_UINT, "3000", NULL, 100, 60000, NULL, OFF(nlu_timeout_ms), true,
          "With nlu.backend=bedrock: milliseconds Bedrock may take (credentials included) before the rules answer "
          "instead." },
        { "nlu", "max_calls_per_hour", CONF_UINT, "30", NULL, 0, 100000, NULL, OFF(nlu_max_calls_per_hour), true,
          "With nlu.backend=bedrock: most Bedrock calls per customer in an hour; further messages are understood "
          "by the rules. 0: never call Bedrock." },
        { "nlu", "max_tokens", CONF_UINT, "400", NULL, 64, 4096, NULL, OFF(nlu_max_tokens), true,
          "With nlu.backend=bedrock: the maxTokens of the answer (the tool call is short)." },
        { "conversation", "idle_timeout", CONF_DURATION, "30min", NULL, 0, USEC(7 * 24 * 3600), NULL,
          OFF(conversation_idle_timeout), true,
          "An order being put together is forgotten after this long without a message from the customer; 0: "
          "never." },
        { "conversation", "handoff_timeout", CONF_DURATION, "2h", NULL, USEC(60), USEC(7 * 24 * 3600), NULL,
          OFF(conversation_handoff_timeout), true,
          "How long the assistant stays silent after a customer asked for a person, unless 'deliveryctl "
          "conversation ID resume' ends it first." },
        { "conversation", "handoff_to", CONF_STRING, "", NULL, 0, 0, NULL, OFF(conversation_handoff_to), true,
          "Where the store is alerted when a customer asks for a person: an E.164 phone number (by SMS) or an "
          "e-mail address; empty: no alert, only a log line." },
        { "engine", "backend", CONF_ENUM, "local", NULL, 0, 0, engine_backend_table, OFF(engine_backend), false,
          "Where the order workflow runs: local (durable interpreter) or stepfunctions (AWS Step Functions)." },
        { "engine", "definition", CONF_PATH, "order.asl.json", NULL, 0, 0, NULL, OFF(engine_definition), false,
          "The order workflow in Amazon States Language (statemachine/order.asl.json of the source, installed "
          "beside deliveryd.conf); the local engine loads it at start and refuses to start when it is not valid." },
        { "engine", "state_machine_arn", CONF_STRING, "", NULL, 0, 0, NULL, OFF(engine_state_machine_arn), false,
          "With engine.backend=stepfunctions: the ARN of the state machine (order.asl.json deployed on AWS) that "
          "StartExecution starts, arn:aws:states:REGION:ACCOUNT:stateMachine:NAME; required there." },
        { "engine", "heartbeat", CONF_DURATION, "5min", NULL, 0, USEC(86400), NULL, OFF(engine_heartbeat_usec), true,
          "How long a workflow's wait (Pix payment, store status) may go without word from the daemon that holds "
          "its task token before it times out (HeartbeatSeconds; the daemon beats every half of it). A wait whose "
          "heartbeat ran out while the daemon was down takes its timeout branch (a delay notice). 0: none. Taken by "
          "executions when they start." },
        { "engine", "payment_timeout", CONF_DURATION, "15min", NULL, USEC(1), USEC(86400), NULL,
          OFF(engine_payment_timeout_usec), true,
          "How long a Pix payment may take: an order not paid by then is cancelled (reason timeout) and its "
          "stock released. Orders already waiting keep the time they started with." },
        { "engine", "cancel_until", CONF_ENUM, "CONFIRMED", NULL, 0, 0, engine_cancel_until_table,
          OFF(engine_cancel_until), true,
          "The last order status at which a customer may cancel: CONFIRMED (not once it is being prepared), "
          "PREPARING or READY. Later cancellations are refused with the reason." },
        { "engine", "late_grace", CONF_DURATION, "5min", NULL, 0, USEC(86400), NULL, OFF(engine_late_grace_usec), true,
          "An order not delivered this long after its ETA is late: the customer gets a delay notice." },
        { "engine", "delay_step", CONF_DURATION, "10min", NULL, USEC(1), USEC(86400), NULL, OFF(engine_delay_step_usec),
          true, "How much later the new ETA of a late order is, from the time it was late." },
        { "sms", "transport", CONF_ENUM, "log", NULL, 0, 0, sms_transport_table, OFF(sms_transport), false,
          "How SMS replies leave: log (journal only), sns (Amazon SNS Publish) or eum (AWS End User Messaging SMS "
          "SendTextMessage)." },
        { "sms", "sender_id", CONF_STRING, "", NULL, 0, 0, NULL, OFF(sms_sender_id), false,
          "With sms.transport=sns: the AWS.SNS.SMS.SenderID of outbound SMS (an alphanumeric sender, where the "
          "destination country allows one). Empty: none." },
        { "sms", "origination_number", CONF_STRING, "", NULL, 0, 0, NULL, OFF(sms_origination_number), false,
          "With sms.transport=sns: the AWS.MM.SMS.OriginationNumber of outbound SMS (an E.164 number of the "
          "account); with sms.transport=eum: the OriginationIdentity (a phone number, its ARN or ID, a pool, a "
          "sender ID). Empty: the service chooses." },
        { "sms", "max_length", CONF_SIZE, "1600", NULL, 1, 65536, NULL, OFF(sms_max_length), true,
          "Longest inbound SMS text accepted, in bytes of UTF-8 (1600 is ten concatenated segments); longer ones "
          "are refused." },
        { "sms", "lifetime", CONF_DURATION, "1d", NULL, USEC(60), USEC(30 * 86400), NULL, OFF(sms_lifetime_usec), false,
          "An SMS not sent this long after it was queued fails as expired (a late status message misleads more "
          "than a missing one)." },
        { "sms", "max_per_second", CONF_UINT, "1", NULL, 1, 1000, NULL, OFF(sms_max_per_second), false,
          "Most SMS sends started per second (the provider's throughput for the origination number); up to a tenth "
          "of a second's worth may start together." },
        { "sms", "max_segments", CONF_UINT, "3", NULL, 1, 10, NULL, OFF(sms_max_segments), true,
          "Most concatenated segments of one outbound SMS reply; a longer reply is cut at a word boundary and ends "
          "with an ellipsis." },
        { "sms", "fold_accents", CONF_BOOL, "no", NULL, 0, 0, NULL, OFF(sms_fold_accents), true,
          "Fold the accents that GSM 7-bit lacks (ã to a, ç to c) in outbound SMS when that keeps the reply in GSM "
          "7-bit, which fits 160 characters per segment instead of 70." },
        { "mail", "transport", CONF_ENUM, "log", NULL, 0, 0, mail_transport_table, OFF(mail_transport), false,
          "How e-mail replies leave: log (journal only) or smtp (a relay)." },
        { "mail", "from", CONF_STRING, "", NULL, 0, 0, NULL, OFF(mail_from), false,
          "Envelope sender and From: address of outbound e-mail (mail.transport = smtp, which refuses to start "
          "without it); its domain ends our Message-IDs." },
        { "smtp", "host", CONF_STRING, "localhost", NULL, 0, 0, NULL, OFF(smtp_host), false,
          "The SMTP relay that outbound e-mail goes to (mail.transport = smtp)." },
        { "smtp", "port", CONF_UINT, "25", NULL, 1, 65535, NULL, OFF(smtp_port), false, "Port of smtp.host." },
        { "smtp", "starttls", CONF_ENUM, "optional", NULL, 0, 0, smtp_starttls_table, OFF(smtp_starttls), false,
          "STARTTLS with the relay: required (no TLS, no send), optional (when offered) or off." },
        { "smtp", "timeout", CONF_DURATION, "30s", NULL, USEC(1), USEC(3600), NULL, OFF(smtp_timeout_usec), false,
          "Time allowed for each step of an SMTP session (greeting, each command, the data)." },
        { "smtp", "credentials_file", CONF_PATH, "", NULL, 0, 0, NULL, OFF(smtp_credentials_file), false,
          "File with \"username = ...\" and \"password = ...\" lines for SMTP AUTH with the relay. Empty: no AUTH." },
        { "mail", "lifetime", CONF_DURATION, "5d", NULL, USEC(60), USEC(30 * 86400), NULL, OFF(mail_lifetime_usec),
          false, "An e-mail not sent this long after it was queued fails as expired." },
        { "mail", "addresses", CONF_LIST, "", NULL, 0, 0, NULL, OFF(mail_addresses), true,
          "The store's own e-mail addresses, space-separated: LMTP accepts mail for these only, and mail from them "
          "is never answered (loop protection)." },
        { "mail", "max_size", CONF_SIZE, "10M", NULL, 1024, 64ULL * 1024 * 1024, NULL, OFF(mail_max_size), true,
          "Largest inbound e-mail accepted (LMTP 552, SNS 400)." },
        { "mail", "trust_local_mta", CONF_STRING, "", NULL, 0, 0, NULL, OFF(mail_trust_local_mta), true,
          "The authserv-id (usually the host name) that the local MTA writes in Authentication-Results; those "
          "headers decide whether LMTP mail is authenticated. Empty: trust none, so whether LMTP mail "
          "is authenticated stays unknown." },
        { "mail", "parser_timeout", CONF_DURATION, "10s", NULL, 100 * USEC_PER_MSEC, USEC(600), NULL,
          OFF(mail_parser_timeout_usec), true,
          "How long the mail parser process may take over one message before it is stopped and the message "
          "answered \"try again later\" (LMTP 451, SNS 503)." },
        { "mail", "parser_memory_limit", CONF_SIZE, "256M", NULL, 0, 64ULL * 1024 * 1024 * 1024, NULL,
          OFF(mail_parser_memory_limit), false,
          "Address space of the mail parser process (RLIMIT_AS); a message that needs more fails in that "
          "process, not in the daemon. 0: no limit." },
};

#define N_KEYS ELEMENTSOF(conf_keys)

const ConfKey *conf_table(size_t *ret_n) {
        *ret_n = N_KEYS;
        return conf_keys;
}

const char *conf_type_to_string(ConfType t) {
        static const char *const names[_CONF_TYPE_MAX] = {
                [CONF_STRING] = "string",     [CONF_PATH] = "path",    [CONF_LISTEN] = "address",
                [CONF_BOOL] = "boolean",      [CONF_UINT] = "integer", [CONF_SIZE] = "size",
                [CONF_DURATION] = "duration", [CONF_ENUM] = "enum",    [CONF_LIST] = "list",
        };
        return (unsigned) t < _CONF_TYPE_MAX ? names[t] : NULL;
}

static void *field(Config *c, const ConfKey *k) {
        return (uint8_t *) c + k->offset;
}

static const void *field_const(const Config *c, const ConfKey *k) {
        return (const uint8_t *) c + k->offset;
}

static bool type_is_string(ConfType t) {
        return t == CONF_STRING || t == CONF_PATH || t == CONF_LISTEN;
}

static const ConfKey *conf_find(const char *section, const char *key, size_t *ret_index) {
        for (size_t i = 0; i < N_KEYS; i++)
                if (streq(conf_keys[i].section, section) && streq(conf_keys[i].key, key)) {
                        if (ret_index)
                                *ret_index = i;
                        return &conf_keys[i];
                }
        return NULL;
}

static bool section_known(const char *section) {
        for (size_t i = 0; i < N_KEYS; i++)
                if (streq(conf_keys[i].section, section))
                        return true;
        return false;
}

/* Give a human range for error messages. */
static void format_bound(const ConfKey *k, uint64_t v, char *buf, size_t size) {
        if (k->type == CONF_DURATION) {
                if (v % USEC_PER_SEC == 0)
                        snprintf(buf, size, "%llus", (unsigned long long) (v / USEC_PER_SEC));
                else
                        snprintf(buf, size, "%llums", (unsigned long long) (v / USEC_PER_MSEC));
        } else
                snprintf(buf, size, "%llu", (unsigned long long) v);
}

/* Parse value for k into the Config field.  On a bad value, a message goes
 * to *ret_problem (static or in buf) and -EINVAL is returned. */
static int conf_assign(Config *c, const ConfKey *k, const char *value, const char *base_dir, char *buf, size_t bufsize,
                       const char **ret_problem) {
        void *f = field(c, k);
        uint64_t v;
        int r;

        switch (k->type) {
        case CONF_STRING: {
                char *s = mem_strdup(value);
                if (!s)
                        return -ENOMEM;
                free(*(char **) f);
                *(char **) f = s;
                return 0;
        }
        case CONF_PATH: {
                char *s = isempty(value) ? mem_strdup("") : path_join_relative(base_dir, value);
                if (!s)
                        return -ENOMEM;
                free(*(char **) f);
                *(char **) f = s;
                return 0;
        }
        case CONF_LISTEN: {
                _cleanup_free_ char *s = NULL;
                const char *reason = NULL;
                ListenAddress a;

                if (isempty(value))
                        s = mem_strdup("");
                else if (strncmp(value, "unix:", 5) == 0 && value[5] != '/') {
                        _cleanup_free_ char *p = path_join_relative(base_dir, value + 5);
                        if (!p)
                                return -ENOMEM;
                        s = mem_printf("unix:%s", p);
                } else
                        s = mem_strdup(value);
                if (!s)
                        return -ENOMEM;
                if (*s && listen_address_parse(s, &a, &reason) < 0) {
                        snprintf(buf, bufsize, "invalid address '%s': %s", value, reason);
                        *ret_problem = buf;
                        return -EINVAL;
                }
                free(*(char **) f);
                *(char **) f = TAKE_PTR(s);
                return 0;
        }
        case CONF_BOOL: {
                bool b;
                if (parse_boolean(value, &b) < 0) {
                        snprintf(buf, bufsize, "invalid boolean '%s' (use yes or no)", value);
                        *ret_problem = buf;
                        return -EINVAL;
                }
                *(bool *) f = b;
                return 0;
        }
        case CONF_UINT:
        case CONF_SIZE:
        case CONF_DURATION: {
                const char *what = k->type == CONF_UINT ? "number"
                        : k->type == CONF_SIZE          ? "size (e.g. 256K, 1M)"
                                                        : "duration (e.g. 500ms, 10s, 15min)";
                if (k->type == CONF_UINT)
                        r = parse_uint64(value, &v);
                else if (k->type == CONF_SIZE)
                        r = parse_size(value, &v);
                else
                        r = parse_duration_usec(value, &v);
                if (r == -ERANGE || (r >= 0 && (v < k->min || (k->max && v > k->max)))) {
                        char lo[32], hi[32];
                        format_bound(k, k->min, lo, sizeof lo);
                        format_bound(k, k->max, hi, sizeof hi);
                        snprintf(buf, bufsize, "value '%s' out of range (%s to %s)", value, lo, hi);
                        *ret_problem = buf;
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(buf, bufsize, "invalid %s '%s'", what, value);
                        *ret_problem = buf;
                        return -EINVAL;
                }
                *(uint64_t *) f = v;
                return 0;
        }
        case CONF_ENUM: {
                int i = table_lookup(k->choices, value);
                if (i < 0) {
                        _cleanup_free_ char *choices = strv_join((char *const *) k->choices, ", ");
                        snprintf(buf, bufsize, "invalid value '%s' (one of: %s)", value, strempty(choices));
                        *ret_problem = buf;
                        return -EINVAL;
                }
                *(int *) f = i;
                return 0;
        }
        case CONF_LIST: {
                char **l = strv_split_ws(value);
                if (!l)
                        return -ENOMEM;
                strv_free(*(char ***) f);
                *(char ***) f = l;
                return 0;
        }
        default:
                return -EINVAL;
        }
}

static void conf_free_fields(Config *c) {
        for (size_t i = 0; i < N_KEYS; i++) {
                const ConfKey *k = &conf_keys[i];
                if (type_is_string(k->type)) {
                        char **p = field(c, k);
                        free(*p);
                        *p = NULL;
                } else if (k->type == CONF_LIST) {
                        char ***p = field(c, k);
                        *p = strv_free(*p);
                }
        }
}

Config *conf_ref(Config *c) {
        if (c)
                c->n_ref++;
        return c;
}

Config *conf_unref(Config *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        conf_free_fields(c);
        if (c->sources)
                for (size_t i = 0; i < N_KEYS; i++)
                        free(c->sources[i].file);
        free(c->sources);
        free(c->path);
        free(c->dir);
        free(c);
        return NULL;
}

typedef struct ParseState {
        Config *config;
        Diags *diags;
        const char *base_dir; /* directory of the file being read */
        bool in_unknown_section;
} ParseState;

static int record_source(Config *c, size_t index, const char *file, unsigned line) {
        char *f = mem_strdup(file);
        if (!f)
                return -ENOMEM;
        free(c->sources[index].file);
        c->sources[index].file = f;
        c->sources[index].line = line;
        return 0;
}

static int parse_cb(const char *file, unsigned line, const char *section, const char *key, const char *value,
                    void *userdata) {
        ParseState *st = userdata;
        const char *problem = NULL;
        char buf[512];
        const ConfKey *k;
        size_t index;
        int r;

        if (!key) {
                st->in_unknown_section = !section_known(section);
                if (st->in_unknown_section)
                        diags_add(st->diags, file, line, "unknown section [%s]", section);
                return 0;
        }
        if (st->in_unknown_section)
                return 0; /* reported once, at the header */

        k = conf_find(section, key, &index);
        if (!k) {
                diags_add(st->diags, file, line, "unknown key '%s' in section [%s]", key, section);
                return 0;
        }
        r = conf_assign(st->config, k, value, st->base_dir, buf, sizeof buf, &problem);
        if (r == -EINVAL) {
                diags_add(st->diags, file, line, "%s.%s: %s", section, key, problem);
                return 0;
        }
        if (r < 0)
                return r;
        return record_source(st->config, index, file, line);
}

static int apply_defaults(Config *c, Diags *diags) {
        char buf[512];

        for (size_t i = 0; i < N_KEYS; i++) {
                const ConfKey *k = &conf_keys[i];
                const char *problem = NULL, *def = NULL;
                int r;

                if (k->default_fn)
                        def = k->default_fn();
                if (!def)
                        def = k->default_value;
                /* Built-in defaults resolve relative paths against the main file's directory. */
                r = conf_assign(c, k, def, c->dir, buf, sizeof buf, &problem);
                if (r == -EINVAL) { /* a bad environment-provided default */
                        diags_add(diags, "(default)", 0, "%s.%s: %s", k->section, k->key, problem);
                        continue;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The drop-in directory: "deliveryd.conf.d" beside "deliveryd.conf". */
static int parse_dropins(ParseState *st, const char *main_path) {
        const char *base = strrchr(main_path, '/');
        /* From the absolute directory, so that relative paths in drop-ins
         * resolve the same way as in the main file. */
        _cleanup_free_ char *dir = mem_printf("%s/%s.d", st->config->dir, base ? base + 1 : main_path);
        _cleanup_strv_free_ char **names = NULL;
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                diags_add(st->diags, dir, 0, "cannot open drop-in directory: %s", strerror(errno));
                return 0;
        }
        names = mem_new(char *, 1);
        if (!names) {
                closedir(d);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 6 || !streq(de->d_name + l - 5, ".conf"))
                        continue;
                if (strv_extend(&names, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        closedir(d);
        qsort(names, strv_length(names), sizeof(char *), strcmp_ptr);

        for (char **n = names; *n; n++) {
                _cleanup_free_ char *p = path_join_relative(dir, *n);
                if (!p)
                        return -ENOMEM;
                st->base_dir = dir;
                st->in_unknown_section = false;
                r = ini_parse_file(p, parse_cb, st, st->diags);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        diags_add(st->diags, p, 0, "cannot read: %s", strerror(-r));
        }
        return 0;
}

static int apply_overrides(ParseState *st, char *const *overrides) {
        char buf[512], cwd[4096];

        if (!getcwd(cwd, sizeof cwd))
                return -errno;
        for (size_t i = 0; overrides && overrides[i]; i++) {
                _cleanup_free_ char *copy = mem_strdup(overrides[i]);
                _cleanup_free_ char *label = mem_printf("-o %s", overrides[i]);
                const char *problem = NULL;
                char *eq, *dot;
                const ConfKey *k;
                size_t index;
                int r;

                if (!copy || !label)
                        return -ENOMEM;
                eq = strchr(copy, '=');
                dot = eq ? memchr(copy, '.', (size_t) (eq - copy)) : NULL;
                if (!eq || !dot) {
                        diags_add(st->diags, label, 0, "expected section.key=value");
                        continue;
                }
                *eq = '\0';
                *dot = '\0';
                k = conf_find(copy, dot + 1, &index);
                if (!k) {
                        diags_add(st->diags, label, 0, "unknown key '%s.%s'", copy, dot + 1);
                        continue;
                }
                /* Relative paths on the command line mean relative to where it was typed. */
                r = conf_assign(st->config, k, eq + 1, cwd, buf, sizeof buf, &problem);
                if (r == -EINVAL) {
                        diags_add(st->diags, label, 0, "%s.%s: %s", k->section, k->key, problem);
                        continue;
                }
                if (r < 0)
                        return r;
                r = record_source(st->config, index, label, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Relative paths in the file are relative to the file's directory; make
 * that absolute now so that they stay right whatever directory the daemon
 * or deliveryctl runs in. */
static char *absolute_dirname(const char *path) {
        _cleanup_free_ char *d = path_dirname(path);
        char *abs;

        if (!d)
                return NULL;
        abs = realpath(d, NULL);
        if (abs) {
                char *r = mem_strdup(abs); /* keep every allocation on our wrapper */
                free(abs);
                return r;
        }
        return TAKE_PTR(d); /* missing directory: reported when the file cannot be opened */
}

static const ConfSource *source_of(const Config *c, const void *field_ptr) {
        for (size_t i = 0; i < N_KEYS; i++)
                if ((const uint8_t *) c + conf_keys[i].offset == field_ptr)
                        return &c->sources[i];
        return NULL;
}

/* Checks a single value's parser cannot make: what the value will be used
 * for.  Reported at the line that set it. */
static void conf_validate(const Config *c, Diags *diags) {
        const ConfSource *src;

        if (isempty(c->state_directory)) {
                src = source_of(c, &c->state_directory);
                diags_add(diags, src && src->file ? src->file : c->path, src ? src->line : 0,
                          "daemon.state_directory: must not be empty");
        }
        /* sun_path holds 108 bytes with the terminating NUL. */
        if (isempty(c->control_socket) || strlen(c->control_socket) >= 108 || c->control_socket[0] != '/') {
                src = source_of(c, &c->control_socket);
                diags_add(diags, src && src->file ? src->file : c->path, src ? src->line : 0,
                          "control.socket: '%s' is not a usable Unix socket path (absolute, at most 107 bytes)",
                          strempty(c->control_socket));
        }
        if (c->nlu_backend == NLU_BEDROCK && isempty(c->nlu_model_id)) {
                src = source_of(c, &c->nlu_model_id);
                diags_add(diags, src && src->file ? src->file : c->path, src ? src->line : 0,
                          "nlu.model_id: must not be empty with nlu.backend=bedrock");
        }
        if (c->engine_backend == ENGINE_STEPFUNCTIONS) {
                const char *arn = c->engine_state_machine_arn;

                src = source_of(c, &c->engine_state_machine_arn);
                if (isempty(arn))
                        diags_add(diags, src && src->file ? src->file : c->path, src ? src->line : 0,
                                  "engine.state_machine_arn: must be set with engine.backend=stepfunctions (the ARN "
                                  "of the deployed order state machine)");
                else if (strncmp(arn, "arn:", 4) != 0 || !strstr(arn, ":states:") || !strstr(arn, ":stateMachine:"))
                        diags_add(diags, src && src->file ? src->file : c->path, src ? src->line : 0,
                                  "engine.state_machine_arn: '%s' is not a state machine ARN "
                                  "(arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)",
                                  arn);
        }
}

int conf_load(const char *path, char *const *overrides, ConfLoadFlags flags, Config **ret, Diags *diags) {
        _cleanup_(conf_unrefp) Config *c = NULL;
        Diags local = {};
        ParseState st;
        int r;

        if (!path)
                path = DELIVERYD_DEFAULT_CONFIG;

        c = mem_new(Config, 1);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->path = mem_strdup(path);
        c->dir = absolute_dirname(path);
        c->sources = mem_new(ConfSource, N_KEYS);
        if (!c->path || !c->dir || !c->sources)
                return -ENOMEM;

        r = apply_defaults(c, &local);
        if (r < 0)
                goto finish;

        st = (ParseState){ .config = c, .diags = &local, .base_dir = c->dir };
        r = ini_parse_file(path, parse_cb, &st, &local);
        if (r == -ENOMEM)
                goto finish;
        if (r < 0)
                diags_add(&local, path, 0, "cannot read configuration: %s", strerror(-r));

        r = parse_dropins(&st, path);
        if (r < 0)
                goto finish;
        r = apply_overrides(&st, overrides);
        if (r < 0)
                goto finish;
        conf_validate(c, &local);

        r = diags_to_errno(&local);
        if (r == -EINVAL && (flags & CONF_LOAD_KEEP_GOING))
                r = 0;
        if (r >= 0)
                *ret = TAKE_PTR(c);
finish:
        diags_merge(diags, &local);
        diags_clear(&local);
        return r;
}

static bool field_equal(const Config *a, const Config *b, const ConfKey *k) {
        const void *fa = field_const(a, k), *fb = field_const(b, k);

        switch (k->type) {
        case CONF_STRING:
        case CONF_PATH:
        case CONF_LISTEN:
                return streq_ptr(*(char *const *) fa, *(char *const *) fb);
        case CONF_BOOL:
                return *(const bool *) fa == *(const bool *) fb;
        case CONF_UINT:
        case CONF_SIZE:
        case CONF_DURATION:
                return *(const uint64_t *) fa == *(const uint64_t *) fb;
        case CONF_ENUM:
                return *(const int *) fa == *(const int *) fb;
        case CONF_LIST:
                return strv_equal(*(char **const *) fa, *(char **const *) fb);
        default:
                return false;
        }
}

static int field_copy(Config *dst, const Config *src, const ConfKey *k) {
        void *fd = field(dst, k);
        const void *fs = field_const(src, k);

        if (type_is_string(k->type)) {
                char *s = mem_strdup(strempty(*(char *const *) fs));
                if (!s)
                        return -ENOMEM;
                free(*(char **) fd);
                *(char **) fd = s;
        } else if (k->type == CONF_LIST) {
                char **l = strv_copy(*(char **const *) fs);
                if (!l)
                        return -ENOMEM;
                strv_free(*(char ***) fd);
                *(char ***) fd = l;
        } else if (k->type == CONF_BOOL)
                *(bool *) fd = *(const bool *) fs;
        else if (k->type == CONF_ENUM)
                *(int *) fd = *(const int *) fs;
        else
                *(uint64_t *) fd = *(const uint64_t *) fs;
        return 0;
}

int conf_carry_over(Config *new_config, const Config *old_config, Diags *diags) {
        for (size_t i = 0; i < N_KEYS; i++) {
                const ConfKey *k = &conf_keys[i];
                const ConfSource *s = &new_config->sources[i];
                int r;

                if (k->reloadable || field_equal(new_config, old_config, k))
                        continue;
                diags_add(diags, s->file ? s->file : new_config->path, s->line,
                          "%s.%s changed, but it can only change with a restart; keeping the running value", k->section,
                          k->key);
                r = field_copy(new_config, old_config, k);
                if (r < 0)
                        return r;
        }
        return 0;
}

char *conf_format_value(const Config *c, const ConfKey *k) {
        const void *f = field_const(c, k);

        switch (k->type) {
        case CONF_STRING:
        case CONF_PATH:
        case CONF_LISTEN:
                return mem_strdup(strempty(*(char *const *) f));
        case CONF_BOOL:
                return mem_strdup(*(const bool *) f ? "yes" : "no");
        case CONF_UINT:
        case CONF_SIZE:
                return mem_printf("%llu", (unsigned long long) *(const uint64_t *) f);
        case CONF_DURATION: {
                static const struct {
                        uint64_t usec;
                        const char *unit;
                } units[] = { { 86400 * USEC_PER_SEC, "d" },
                              { 3600 * USEC_PER_SEC, "h" },
                              { 60 * USEC_PER_SEC, "min" } };
                uint64_t v = *(const uint64_t *) f;
                for (size_t i = 0; v > 0 && i < ELEMENTSOF(units); i++)
                        if (v % units[i].usec == 0)
                                return mem_printf("%llu%s", (unsigned long long) (v / units[i].usec), units[i].unit);
                if (v % USEC_PER_SEC == 0)
                        return mem_printf("%llus", (unsigned long long) (v / USEC_PER_SEC));
                if (v % USEC_PER_MSEC == 0)
                        return mem_printf("%llums", (unsigned long long) (v / USEC_PER_MSEC));
                return mem_printf("%lluus", (unsigned long long) v);
        }
        case CONF_ENUM:
                return mem_strdup(strempty(k->choices[*(const int *) f]));
        case CONF_LIST:
                return strv_join(*(char **const *) f, " ");
        default:
                return NULL;
        }
}
