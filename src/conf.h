/* SPDX-License-Identifier: MIT */
/*
 * conf.h — deliveryd.conf: one declared table of every key (section, key,
 * type, default, bounds, whether a reload may change it), parsed from the
 * main file, then its drop-ins (the .conf files in FILE.d, in lexical order), then
 * "-o section.key=value" overrides, into an immutable, reference-counted
 * Config snapshot.  Every problem is reported as "file:line: message".
 *
 * Security: reads admin-supplied files and command-line overrides; every
 * value is checked against its type and bounds before it is stored.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "macro.h"

typedef enum NluBackend {
        NLU_RULES,
        NLU_BEDROCK,
        _NLU_BACKEND_MAX,
        _NLU_BACKEND_INVALID = -EINVAL,
} NluBackend;

typedef enum EngineBackend {
        ENGINE_LOCAL,
        ENGINE_STEPFUNCTIONS,
        _ENGINE_BACKEND_MAX,
        _ENGINE_BACKEND_INVALID = -EINVAL,
} EngineBackend;

typedef enum SmsTransport {
        SMS_TRANSPORT_LOG,
        SMS_TRANSPORT_SNS,
        SMS_TRANSPORT_EUM,
        _SMS_TRANSPORT_MAX,
        _SMS_TRANSPORT_INVALID = -EINVAL,
} SmsTransport;

typedef enum MailTransport {
        MAIL_TRANSPORT_LOG,
        MAIL_TRANSPORT_SMTP,
        _MAIL_TRANSPORT_MAX,
        _MAIL_TRANSPORT_INVALID = -EINVAL,
} MailTransport;

const char *nlu_backend_to_string(NluBackend b);
NluBackend nlu_backend_from_string(const char *s);
const char *engine_backend_to_string(EngineBackend b);
EngineBackend engine_backend_from_string(const char *s);
const char *sms_transport_to_string(SmsTransport t);
SmsTransport sms_transport_from_string(const char *s);
const char *mail_transport_to_string(MailTransport t);
MailTransport mail_transport_from_string(const char *s);

/* engine.cancel_until: the last order status at which a customer may still cancel. */
typedef enum EngineCancelUntil {
        ENGINE_CANCEL_UNTIL_CONFIRMED,
        ENGINE_CANCEL_UNTIL_PREPARING,
        ENGINE_CANCEL_UNTIL_READY,
        _ENGINE_CANCEL_UNTIL_MAX,
        _ENGINE_CANCEL_UNTIL_INVALID = -EINVAL,
} EngineCancelUntil;

const char *engine_cancel_until_to_string(EngineCancelUntil c);
EngineCancelUntil engine_cancel_until_from_string(const char *s);

typedef struct ConfSource {
        char *file; /* NULL: built-in default */
        unsigned line;
} ConfSource;

/* A parsed configuration.  Immutable once conf_load() returns it; share it
 * with conf_ref(), release it with conf_unref(). */
typedef struct Config {
        unsigned n_ref;
        char *path; /* main file as given */
        char *dir; /* its directory: relative paths are resolved against it */

        /* [daemon] */
        char *state_directory;
        int log_level;
        uint64_t drain_timeout_usec;

        /* [store] */
        char *store_name;
        char *store_catalog;
        char *store_zones;
        char *store_templates;
        char *store_timezone;

        /* [http] */
        char *http_listen;
        uint64_t http_max_body;
        uint64_t http_connection_timeout_usec;
        uint64_t http_header_timeout_usec;
        uint64_t http_body_timeout_usec;
        uint64_t http_max_connections;
        uint64_t http_max_connections_per_ip;
        char *http_public_url;
        char *http_api_token;
        char *http_api_token_file;

        /* [lmtp] */
        char *lmtp_listen;
        uint64_t lmtp_timeout_usec;
        uint64_t lmtp_max_recipients;
        uint64_t lmtp_max_connections;

        /* [sns] */
        char **sns_topics;
        char *sns_certificate_cache;
        uint64_t sns_min_signature_version;
        uint64_t sns_verify_threads;
        uint64_t sns_timestamp_max_age_usec;
        uint64_t sns_timestamp_max_ahead_usec;
        uint64_t sns_fetch_timeout_usec;

        /* [http_client] (outgoing requests: AWS, SNS certificates) */
        char **http_client_connect_to;
        char *http_client_ca_file;

        /* [mail] (inbound) */
        char **mail_addresses;
        uint64_t mail_max_size;
        char *mail_trust_local_mta;
        uint64_t mail_parser_timeout_usec;
        uint64_t mail_parser_memory_limit;

        /* [aws] */
        char *aws_region;
        char *aws_endpoint_sns;
        char *aws_endpoint_eum;
        char *aws_endpoint_bedrock;
        char *aws_endpoint_states;

        /* [pix] */
        char *pix_key;
        char *pix_merchant_name;
        char *pix_merchant_city;

        /* [control] */
        char *control_socket;

        /* backends */
        int nlu_backend; /* NluBackend */
        char *nlu_rules;
        uint64_t nlu_max_input;
        char *nlu_model_id;
        uint64_t nlu_timeout_ms;
        uint64_t nlu_max_calls_per_hour;
        uint64_t nlu_max_tokens;
        uint64_t conversation_idle_timeout, conversation_handoff_timeout;
        char *conversation_handoff_to;
        int engine_backend; /* EngineBackend */
        char *engine_definition;
        char *engine_state_machine_arn;
        uint64_t engine_payment_timeout_usec;
        uint64_t engine_heartbeat_usec;
        int engine_cancel_until; /* EngineCancelUntil */
        uint64_t engine_late_grace_usec;
        uint64_t engine_delay_step_usec;
        int sms_transport; /* SmsTransport */
        char *sms_sender_id;
        char *sms_origination_number;
        uint64_t sms_max_length;
        uint64_t sms_lifetime_usec;
        uint64_t sms_max_per_second;
        uint64_t sms_max_segments;
        bool sms_fold_accents;
        int mail_transport; /* MailTransport */
        uint64_t mail_lifetime_usec;
        char *mail_from;
        char *smtp_host;
        uint64_t smtp_port;
        int smtp_starttls; /* SmtpStarttls */
        uint64_t smtp_timeout_usec;
        char *smtp_credentials_file;

        ConfSource *sources; /* one per table row, where each value came from */
} Config;

typedef enum ConfType {
        CONF_STRING,
        CONF_PATH, /* relative to the directory of the file that sets it */
        CONF_LISTEN, /* "host:port", "[v6]:port", "unix:PATH" or an absolute path; "" = off */
        CONF_BOOL,
        CONF_UINT,
        CONF_SIZE, /* bytes, with K/M/G suffixes */
        CONF_DURATION, /* stored in microseconds; min/max are in microseconds */
        CONF_ENUM, /* stored as the index into choices */
        CONF_LIST, /* space-separated, stored as a strv */
        _CONF_TYPE_MAX,
} ConfType;

typedef struct ConfKey {
        const char *section;
        const char *key;
        ConfType type;
        const char *default_value; /* parsed like a value from a file */
        const char *(*default_fn)(void); /* overrides default_value when it returns non-NULL */
        uint64_t min, max; /* CONF_UINT, CONF_SIZE, CONF_DURATION */
        const char *const *choices; /* CONF_ENUM, NULL-terminated */
        size_t offset; /* into Config */
        bool reloadable;
        const char *help;
} ConfKey;

/* The table, for --dump-config, the man page check and tests. */
const ConfKey *conf_table(size_t *ret_n);
const char *conf_type_to_string(ConfType t);

typedef enum ConfLoadFlags {
        /* Return a Config even when problems were found (they are still in
         * diags; bad values keep their defaults).  For deliveryctl, which only
         * needs control.socket and must work while an admin fixes the file. */
        CONF_LOAD_KEEP_GOING = 1 << 0,
} ConfLoadFlags;

/* Parse path (NULL: the default /etc/deliveryd/deliveryd.conf), its drop-ins
 * and overrides (strv of "section.key=value", may be NULL).  On success
 * returns 0 and a new Config in *ret.  If any problem was found, all of them
 * are in diags and -EINVAL is returned (unless CONF_LOAD_KEEP_GOING);
 * -ENOMEM on allocation failure. */
int conf_load(const char *path, char *const *overrides, ConfLoadFlags flags, Config **ret, Diags *diags);

/* For every key that a reload may not change, keep old's value in new and
 * record a warning in diags.  -ENOMEM. */
int conf_carry_over(Config *new_config, const Config *old_config, Diags *diags);

/* Render one key's value as config text ("" for unset).  Caller frees; NULL on OOM. */
char *conf_format_value(const Config *c, const ConfKey *k);

Config *conf_ref(Config *c);
Config *conf_unref(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, conf_unref);

#define DELIVERYD_DEFAULT_CONFIG SYSCONFDIR "/deliveryd/deliveryd.conf"
