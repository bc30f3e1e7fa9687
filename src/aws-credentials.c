/* SPDX-License-Identifier: MIT */
/*
 * aws-credentials.c — the credential chain: environment, shared credentials
 * file, container endpoint, IMDSv2; the provider that caches the result on
 * the loop and refreshes it before it expires.
 *
 * The provider is a small state machine: idle, or one fetch in flight (the
 * container GET, or IMDS's token PUT, role GET, credentials GET, one after
 * the other through curl-event).  Waiters are served from a defer source,
 * never from inside aws_credentials_provider_get(); one timer (CLOCK_REALTIME,
 * since expirations are wall-clock times) starts the refresh refresh_margin
 * before the expiration, and after a failed refresh retries every
 * retry_usec while the old credentials are kept.  Without credentials a
 * failure is remembered for retry_usec: waiters in that time get it at
 * once, so a misconfigured host does not ask IMDS for every request.
 *
 * Security: see aws-credentials.h.  Every string that may hold a secret (the
 * credentials, the copy of the environment, the IMDS session token, the
 * container authorization token, header lines carrying them) is wiped
 * before it is freed.
 */
#include "aws-credentials.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "ini.h"
#include "strutil.h"

#define ACCESS_KEY_ID_MAX 128
#define SECRET_MAX 256
#define TOKEN_MAX ((size_t) 16 * 1024)
#define ROLE_NAME_MAX 64
#define REFRESH_TIMER_ACCURACY_USEC (50 * USEC_PER_MSEC)
#define CONNECT_TIMEOUT_USEC_MAX (2 * USEC_PER_SEC)

extern char **environ;

/* ---- secrets ------------------------------------------------------------ */

/* Replace *dst with a copy of src (NULL: none), wiping the old one. */
static int wipe_replace(char **dst, const char *src) {
        char *c = NULL;

        if (src) {
                c = mem_strdup(src);
                if (!c)
                        return -ENOMEM;
        }
        wipe_free(*dst);
        *dst = c;
        return 0;
}

static bool no_controls(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

static uint64_t now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---- credentials -------------------------------------------------------- */

static const char *const source_names[_AWS_CREDENTIALS_SOURCE_MAX] = {
        [AWS_CREDENTIALS_ENVIRONMENT] = "environment",
        [AWS_CREDENTIALS_FILE] = "shared-credentials-file",
        [AWS_CREDENTIALS_CONTAINER] = "container",
        [AWS_CREDENTIALS_IMDS] = "imds",
};

const char *aws_credentials_source_to_string(AwsCredentialsSource s) {
        return s >= 0 && s < _AWS_CREDENTIALS_SOURCE_MAX ? source_names[s] : NULL;
}

AwsCredentialsSource aws_credentials_source_from_string(const char *s) {
        for (int i = 0; s && i < _AWS_CREDENTIALS_SOURCE_MAX; i++)
                if (streq(s, source_names[i]))
                        return (AwsCredentialsSource) i;
        return _AWS_CREDENTIALS_SOURCE_INVALID;
}

AwsCredentials *aws_credentials_free(AwsCredentials *c) {
        if (!c)
                return NULL;
        wipe_free(c->access_key_id);
        wipe_free(c->secret_access_key);
        wipe_free(c->session_token);
        free(c);
        return NULL;
}

int aws_credentials_new(const char *access_key_id, const char *secret_access_key, const char *session_token,
                        uint64_t expiration_usec, AwsCredentialsSource source, AwsCredentials **ret) {
        _cleanup_(aws_credentials_freep) AwsCredentials *c = NULL;

        if (isempty(access_key_id) || isempty(secret_access_key) || !ret)
                return -EINVAL;
        c = mem_new(AwsCredentials, 1);
        if (!c)
                return -ENOMEM;
        c->access_key_id = mem_strdup(access_key_id);
        c->secret_access_key = mem_strdup(secret_access_key);
        if (!isempty(session_token))
                c->session_token = mem_strdup(session_token);
        if (!c->access_key_id || !c->secret_access_key || (!isempty(session_token) && !c->session_token))
                return -ENOMEM;
        c->expiration_usec = expiration_usec;
        c->source = source;
        *ret = TAKE_PTR(c);
        return 0;
}

int aws_credentials_copy(const AwsCredentials *c, AwsCredentials **ret) {
        if (!c)
                return -EINVAL;
        return aws_credentials_new(c->access_key_id, c->secret_access_key, c->session_token, c->expiration_usec,
                                   c->source, ret);
}

AwsCredentialsFreshness aws_credentials_freshness(const AwsCredentials *c, uint64_t now_usec,
                                                  uint64_t refresh_margin_usec) {
        if (!c)
                return AWS_CREDENTIALS_EXPIRED;
        if (c->expiration_usec == 0)
                return AWS_CREDENTIALS_FRESH;
        if (now_usec >= c->expiration_usec)
                return AWS_CREDENTIALS_EXPIRED;
        if (c->expiration_usec - now_usec <= refresh_margin_usec)
                return AWS_CREDENTIALS_REFRESH_DUE;
        return AWS_CREDENTIALS_FRESH;
}

/* ---- environment -------------------------------------------------------- */

const char *aws_env_get(char *const *env, const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

int aws_credentials_from_env(char *const *env, AwsCredentials **ret) {
        const char *id = aws_env_get(env, "AWS_ACCESS_KEY_ID"), *secret = aws_env_get(env, "AWS_SECRET_ACCESS_KEY"),
                   *token = aws_env_get(env, "AWS_SESSION_TOKEN");

        if (isempty(id))
                return -ENOENT;
        /* Half a key pair is a mistake to report, not a reason to go on to
         * another source and another identity. */
        if (isempty(secret) || !no_controls(id) || !no_controls(secret) || (token && !no_controls(token)))
                return -EINVAL;
        return aws_credentials_new(id, secret, token, 0, AWS_CREDENTIALS_ENVIRONMENT, ret);
}

/* ---- shared credentials file -------------------------------------------- */

int aws_credentials_file_location(char *const *env, char **ret_path, char **ret_profile, bool *ret_explicit) {
        const char *file = aws_env_get(env, "AWS_SHARED_CREDENTIALS_FILE"), *home = aws_env_get(env, "HOME"),
                   *profile = aws_env_get(env, "AWS_PROFILE");
        _cleanup_free_ char *path = NULL, *prof = NULL;

        if (!isempty(file)) {
                if (strncmp(file, "~/", 2) == 0 && !isempty(home))
                        path = mem_printf("%s/%s", home, file + 2);
                else
                        path = mem_strdup(file);
        } else if (!isempty(home))
                path = mem_printf("%s/.aws/credentials", home);
        else
                return -ENOENT;
        prof = mem_strdup(isempty(profile) ? "default" : profile);
        if (!path || !prof)
                return -ENOMEM;
        *ret_path = TAKE_PTR(path);
        *ret_profile = TAKE_PTR(prof);
        *ret_explicit = !isempty(profile);
        return 0;
}

typedef struct FileState {
        const char *profile;
        bool in_profile, found;
        char *id, *secret, *token;
} FileState;

static int on_ini(const char *file _unused_, unsigned line _unused_, const char *section, const char *key,
                  const char *value, void *userdata) {
        FileState *st = userdata;

        if (!key) {
                st->in_profile = streq(section, st->profile);
                st->found = st->found || st->in_profile;
                return 0;
        }
        if (!st->in_profile)
                return 0;
        if (strcasecmp(key, "aws_access_key_id") == 0)
                return wipe_replace(&st->id, value);
        if (strcasecmp(key, "aws_secret_access_key") == 0)
                return wipe_replace(&st->secret, value);
        if (strcasecmp(key, "aws_session_token") == 0 || strcasecmp(key, "aws_security_token") == 0)
                return wipe_replace(&st->token, value);
        return 0;
}

int aws_credentials_from_file(const char *path, const char *profile, AwsCredentials **ret) {
        FileState st = { .profile = profile };
        Diags diags = {};
        int r;

        if (isempty(path) || isempty(profile) || !ret)
                return -EINVAL;
        r = ini_parse_file(path, on_ini, &st, &diags);
        /* Dropped unread: a message may quote a line holding a secret. */
        diags_clear(&diags);
        if (r >= 0 && (!st.found || isempty(st.id)))
                r = -ENOKEY;
        if (r >= 0 &&
            (isempty(st.secret) || !no_controls(st.id) || !no_controls(st.secret) ||
             (st.token && !no_controls(st.token))))
                r = -EINVAL;
        if (r >= 0)
                r = aws_credentials_new(st.id, st.secret, st.token, 0, AWS_CREDENTIALS_FILE, ret);
        wipe_free(st.id);
        wipe_free(st.secret);
        wipe_free(st.token);
        return r;
}

/* ---- the endpoints' answers --------------------------------------------- */

static bool digits(const char *s, size_t n, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return true;
}

int aws_credentials_parse_expiration(const char *s, uint64_t *ret_usec) {
        int year, mon, day, hour, min, sec, oh = 0, om = 0;
        long offset = 0;
        struct tm tm = {};
        time_t t;

        /* YYYY-MM-DDTHH:MM:SS */
        if (!s || strlen(s) < 20 || !digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &mon) || s[7] != '-' ||
            !digits(s + 8, 2, &day) || s[10] != 'T' || !digits(s + 11, 2, &hour) || s[13] != ':' ||
            !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec))
                return -EINVAL;
        s += 19;
        if (*s == '.') {
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                while (*s >= '0' && *s <= '9')
                        s++; /* below a second: dropped */
        }
        if (streq(s, "Z"))
                ;
        else if ((s[0] == '+' || s[0] == '-') && strlen(s) == 6 && digits(s + 1, 2, &oh) && s[3] == ':' &&
                 digits(s + 4, 2, &om) && oh <= 23 && om <= 59)
                offset = (s[0] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
        else
                return -EINVAL;
        if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
                return -EINVAL;

        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        t = timegm(&tm);
        /* timegm() normalises "02-31" into March: refuse what moved. */
        if (t == (time_t) -1 || tm.tm_mday != day || tm.tm_mon != mon - 1)
                return -EINVAL;
        t -= offset;
        if (t <= 0)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

/* A string member of 1 to max bytes without control characters, or NULL. */
static const char *json_member(json_t *o, const char *name, size_t max) {
        json_t *v = json_object_get(o, name);
        const char *s;

        if (!json_is_string(v))
                return NULL;
        s = json_string_value(v);
        if (json_string_length(v) != strlen(s) || isempty(s) || strlen(s) > max || !no_controls(s))
                return NULL;
        return s;
}

/* Best effort: jansson's copy of a secret, wiped before jansson frees it. */
static void json_wipe_member(json_t *o, const char *name) {
        json_t *v = json_object_get(o, name);

        if (json_is_string(v))
                explicit_bzero((char *) json_string_value(v), json_string_length(v));
}

int aws_credentials_parse_json(const char *body, size_t len, AwsCredentialsSource source, AwsCredentials **ret) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        const char *code, *id, *secret, *token, *expiration;
        unsigned long failures = alloc_failures();
        uint64_t exp = 0;
        json_error_t err;
        int r;

        if (!body || len > AWS_CREDENTIALS_MAX_RESPONSE || !ret)
                return -EBADMSG;
        o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
        if (!o) /* jansson words an allocation failure as a syntax error */
                return alloc_failures() != failures ? -ENOMEM : -EBADMSG;
        if (!json_is_object(o))
                return -EBADMSG;

        /* IMDS says "Success" or names what went wrong; the container
         * endpoints send no Code. */
        if (json_object_get(o, "Code")) {
                code = json_member(o, "Code", 256);
                if (!code)
                        r = -EBADMSG;
                else if (!streq(code, "Success"))
                        r = -EACCES;
                else
                        r = 0;
                if (r < 0) {
                        json_wipe_member(o, "SecretAccessKey");
                        json_wipe_member(o, "Token");
                        return r;
                }
        }
        id = json_member(o, "AccessKeyId", ACCESS_KEY_ID_MAX);
        secret = json_member(o, "SecretAccessKey", SECRET_MAX);
        token = json_member(o, "Token", TOKEN_MAX);
        expiration = json_member(o, "Expiration", 64);
        /* Temporary credentials, by definition: all four are needed. */
        if (!id || !secret || !token || !expiration || aws_credentials_parse_expiration(expiration, &exp) < 0)
                r = -EBADMSG;
        else
                r = aws_credentials_new(id, secret, token, exp, source, ret);
        json_wipe_member(o, "SecretAccessKey");
        json_wipe_member(o, "Token");
        return r;
}

static bool role_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("+=,.@_-", c);
}

int aws_imds_role_parse(const char *body, size_t len, char **ret) {
        size_t n = 0;
        char *role;

        if (!body)
                return -EBADMSG;
        while (n < len && body[n] != '\n' && body[n] != '\r')
                n++;
        if (n == 0)
                return -ENOENT;
        if (n > ROLE_NAME_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if (!role_char(body[i]))
                        return -EBADMSG; /* it goes into a URL path */
        role = mem_strndup(body, n);
        if (!role)
                return -ENOMEM;
        *ret = role;
        return 0;
}

/* http:// to these is allowed for a full URI: loopback, the ECS endpoint,
 * the EKS Pod Identity agent (the AWS SDKs allow the same). */
static bool container_host_allowed(const char *host) {
        char buf[64];
        struct in_addr a4;
        struct in6_addr a6, eks;
        size_t n = strlen(host);

        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
                if (n - 2 >= sizeof buf)
                        return false;
                memcpy(buf, host + 1, n - 2);
                buf[n - 2] = '\0';
                if (inet_pton(AF_INET6, buf, &a6) != 1 || inet_pton(AF_INET6, "fd00:ec2::23", &eks) != 1)
                        return false;
                return IN6_IS_ADDR_LOOPBACK(&a6) || memcmp(&a6, &eks, sizeof a6) == 0;
        }
        if (inet_pton(AF_INET, host, &a4) != 1)
                return false; /* a name: resolving it here would block */
        return (ntohl(a4.s_addr) >> 24) == 127 || streq(host, "169.254.170.2") || streq(host, "169.254.170.23");
}

static int container_full_uri_check(const char *uri) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        int r = -EINVAL;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, uri, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
                if (strcasecmp(scheme, "https") == 0)
                        r = 0;
                else if (strcasecmp(scheme, "http") == 0)
                        r = container_host_allowed(host) ? 0 : -EPERM;
        }
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return r;
}

/* The token file's content without surrounding white space. */
static int read_token_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_wipe_ char *buf = NULL;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = mem_malloc(TOKEN_MAX + 2);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, TOKEN_MAX + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > TOKEN_MAX)
                return -EINVAL;
        buf[n] = '\0';
        if (strlen(buf) != n)
                return -EINVAL; /* a NUL byte */
        *ret = mem_strdup(strstrip(buf));
        return *ret ? 0 : -ENOMEM;
}

int aws_container_endpoint(char *const *env, const char *base_url, char **ret_url, char **ret_token) {
        const char *rel = aws_env_get(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
                   *full = aws_env_get(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
                   *token_file = aws_env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
                   *token_env = aws_env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        _cleanup_free_ char *url = NULL;
        _cleanup_wipe_ char *token = NULL;
        int r;

        if (!isempty(rel)) {
                size_t n;

                if (rel[0] != '/' || !no_controls(rel) || strchr(rel, ' '))
                        return -EINVAL;
                base_url = base_url ?: AWS_CONTAINER_URL_DEFAULT;
                n = strlen(base_url);
                while (n > 0 && base_url[n - 1] == '/')
                        n--;
                url = mem_printf("%.*s%s", (int) n, base_url, rel);
        } else if (!isempty(full)) {
                if (!no_controls(full))
                        return -EINVAL;
                r = container_full_uri_check(full);
                if (r < 0)
                        return r;
                url = mem_strdup(full);
        } else
                return -ENOENT;
        if (!url)
                return -ENOMEM;

        if (!isempty(token_file)) {
                r = read_token_file(token_file, &token);
                if (r < 0)
                        return r;
        } else if (!isempty(token_env)) {
                token = mem_strdup(token_env);
                if (!token)
                        return -ENOMEM;
        }
        if (token && (!no_controls(token) || strlen(token) > TOKEN_MAX))
                return -EINVAL; /* it becomes a header line */
        if (token && !*token)
                wipe_free(TAKE_PTR(token)); /* an empty file: no token */

        *ret_url = TAKE_PTR(url);
        *ret_token = TAKE_PTR(token);
        return 0;
}

/* ---- the provider -------------------------------------------------------- */

typedef enum FetchStep {
        FETCH_IDLE,
        FETCH_CONTAINER,
        FETCH_IMDS_TOKEN,
        FETCH_IMDS_ROLE,
        FETCH_IMDS_CREDENTIALS,
} FetchStep;

struct AwsCredentialsWait {
        AwsCredentialsProvider *provider; /* NULL once served, or when the provider went away */
        AwsCredentialsHandler handler;
        void *userdata;
        bool floating; /* the provider's, freed when served */
        bool serving; /* waiting when the current delivery began */
        AwsCredentialsWait *prev, *next;
};

struct AwsCredentialsProvider {
        sd_event *event;
        CurlEvent *curl;
        char **env;
        char *imds_url, *container_url;
        uint64_t refresh_margin_usec, timeout_usec, retry_usec;

        AwsCredentials *creds;
        AwsCredentialsSource source; /* chosen by the chain; _INVALID before */
        FetchStep step;
        CurlTransfer *transfer;
        char *imds_token, *role;

        int error; /* of the last fetch; 0 after a success */
        char *error_text;
        uint64_t last_fetch_usec; /* CLOCK_REALTIME end of the last fetch; 0: none since creation or invalidation */

        sd_event_source *timer, *defer;
        AwsCredentialsWait *waiters;
        unsigned dispatching;
        bool free_pending;
};

static void fetch_start(AwsCredentialsProvider *p);

static void waiter_unlink(AwsCredentialsWait *w) {
        AwsCredentialsProvider *p = w->provider;

        if (!p)
                return;
        if (w->prev)
                w->prev->next = w->next;
        else
                p->waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
        w->prev = w->next = NULL;
        w->provider = NULL;
}

static void set_error(AwsCredentialsProvider *p, int error, const char *fmt, ...) _printf_(3, 4);
static void set_error(AwsCredentialsProvider *p, int error, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        free(p->error_text);
        p->error_text = mem_strdup(buf); /* on OOM the code alone tells */
        p->error = error;
}

static void clear_error(AwsCredentialsProvider *p) {
        p->error = 0;
        free(p->error_text);
        p->error_text = NULL;
}

static const char *describe(int result, char *buf, size_t size) {
        if (result < 0)
                return strerror(-result);
        snprintf(buf, size, "HTTP %d", result);
        return buf;
}

static int result_to_errno(int result) {
        if (result < 0)
                return result;
        if (result == 401 || result == 403)
                return -EACCES;
        if (result == 404)
                return -ENOKEY;
        return -EIO;
}

static bool usable(const AwsCredentialsProvider *p) {
        return p->creds && aws_credentials_freshness(p->creds, now_realtime(), 0) != AWS_CREDENTIALS_EXPIRED;
}

/* Why there are no usable credentials, when no fetch is running. */
static int unusable_error(const AwsCredentialsProvider *p) {
        return p->error < 0 ? p->error : p->creds ? -ESTALE : -ENOKEY;
}

static void schedule_delivery(AwsCredentialsProvider *p) {
        if (p->waiters)
                (void) sd_event_source_set_enabled(p->defer, SD_EVENT_ONESHOT);
}

/* The refresh: refresh_margin before the expiration, but not sooner than
 * retry_usec after the last fetch (which is how a failed refresh is
 * retried while the old credentials last, and how credentials that arrive
 * already due are not fetched in a loop). */
static void arm_timer(AwsCredentialsProvider *p) {
        uint64_t at;

        if (p->step != FETCH_IDLE || !p->creds || p->creds->expiration_usec == 0) {
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
                return;
        }
        at = p->creds->expiration_usec > p->refresh_margin_usec ? p->creds->expiration_usec - p->refresh_margin_usec
                                                                : 1;
        at = MAX(at, p->last_fetch_usec + p->retry_usec);
        (void) sd_event_source_set_time(p->timer, at);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

static void fetch_end(AwsCredentialsProvider *p) {
        p->step = FETCH_IDLE;
        p->last_fetch_usec = now_realtime();
        wipe_free(TAKE_PTR(p->imds_token));
        free(TAKE_PTR(p->role));
        arm_timer(p);
        schedule_delivery(p);
}

static void fetch_failed(AwsCredentialsProvider *p, int error, const char *fmt, ...) _printf_(3, 4);
static void fetch_failed(AwsCredentialsProvider *p, int error, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        set_error(p, error, "%s", buf);
        fetch_end(p);
}

static void fetch_succeeded(AwsCredentialsProvider *p, AwsCredentials *c) {
        if (aws_credentials_freshness(c, now_realtime(), 0) == AWS_CREDENTIALS_EXPIRED) {
                time_t t = (time_t) (c->expiration_usec / USEC_PER_SEC);
                char when[64] = "?";
                struct tm tm;

                if (gmtime_r(&t, &tm))
                        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
                fetch_failed(p, -ESTALE, "%s: the credentials returned expired at %s",
                             aws_credentials_source_to_string(c->source), when);
                aws_credentials_free(c);
                return;
        }
        aws_credentials_free(p->creds);
        p->creds = c;
        p->source = c->source;
        clear_error(p);
        fetch_end(p);
}

static int start_request(AwsCredentialsProvider *p, const char *method, const char *url, char *const *headers,
                         CurlEventHandler handler) {
        CurlRequest req = {
                .method = method,
                .url = url,
                .headers = headers,
                /* PUT with "Content-Length: 0" rather than none, which
                 * some proxies refuse. */
                .body = streq(method, "PUT") ? "" : NULL,
                .timeout_usec = p->timeout_usec,
                .connect_timeout_usec = MIN(p->timeout_usec, CONNECT_TIMEOUT_USEC_MAX),
                .max_response_body = AWS_CREDENTIALS_MAX_RESPONSE,
        };

        p->transfer = curl_event_transfer_free(p->transfer);
        return curl_event_request(p->curl, &req, handler, p, &p->transfer);
}

/* ---- IMDSv2 ---- */

static void on_imds_credentials(int result, const CurlResponse *resp, void *userdata) {
        AwsCredentialsProvider *p = userdata;
        AwsCredentials *c = NULL;
        char buf[32];
        int r;

        if (result != 200) {
                fetch_failed(p, result_to_errno(result), "IMDS GET /latest/meta-data/iam/security-credentials/%s: %s",
                             p->role, describe(result, buf, sizeof buf));
                return;
        }
        r = aws_credentials_parse_json(resp->body, resp->body_len, AWS_CREDENTIALS_IMDS, &c);
        if (r < 0) {
                fetch_failed(p, r, "IMDS GET /latest/meta-data/iam/security-credentials/%s: %s", p->role,
                             r == -EACCES           ? "Code is not \"Success\""
                                     : r == -ENOMEM ? strerror(ENOMEM)
                                                    : "malformed credentials");
                return;
        }
        fetch_succeeded(p, c);
}

static void on_imds_role(int result, const CurlResponse *resp, void *userdata) {
        AwsCredentialsProvider *p = userdata;
        _cleanup_free_ char *url = NULL;
        _cleanup_wipe_ char *header = NULL;
        char buf[32];
        int r;

        if (result == 404) {
                fetch_failed(p, -ENOKEY, "IMDS: no IAM role is attached to this instance");
                return;
        }
        if (result != 200) {
                fetch_failed(p, result_to_errno(result), "IMDS GET /latest/meta-data/iam/security-credentials/: %s",
                             describe(result, buf, sizeof buf));
                return;
        }
        r = aws_imds_role_parse(resp->body, resp->body_len, &p->role);
        if (r == -ENOENT) {
                fetch_failed(p, -ENOKEY, "IMDS: no IAM role is attached to this instance");
                return;
        }
        if (r < 0) {
                fetch_failed(p, r, "IMDS GET /latest/meta-data/iam/security-credentials/: %s",
                             r == -ENOMEM ? strerror(ENOMEM) : "malformed role name");
                return;
        }

        url = mem_printf("%s/latest/meta-data/iam/security-credentials/%s", p->imds_url, p->role);
        header = mem_printf("X-aws-ec2-metadata-token: %s", p->imds_token);
        if (!url || !header) {
                fetch_failed(p, -ENOMEM, "IMDS: %s", strerror(ENOMEM));
                return;
        }
        char *headers[] = { header, NULL };
        p->step = FETCH_IMDS_CREDENTIALS;
        r = start_request(p, "GET", url, headers, on_imds_credentials);
        if (r < 0)
                fetch_failed(p, r, "IMDS GET /latest/meta-data/iam/security-credentials/%s: %s", p->role, strerror(-r));
}

static bool imds_token_valid(const char *t) {
        if (isempty(t) || strlen(t) > 4096)
                return false;
        for (; *t; t++)
                if (*t <= ' ' || *t >= 0x7f)
                        return false;
        return true;
}

static void on_imds_token(int result, const CurlResponse *resp, void *userdata) {
        AwsCredentialsProvider *p = userdata;
        _cleanup_free_ char *url = NULL;
        _cleanup_wipe_ char *header = NULL;
        char buf[32];
        int r;

        if (result != 200) {
                fetch_failed(p, result_to_errno(result), "IMDS PUT /latest/api/token: %s",
                             describe(result, buf, sizeof buf));
                return;
        }
        wipe_free(p->imds_token);
        p->imds_token = mem_strndup(resp->body, resp->body_len);
        if (!p->imds_token) {
                fetch_failed(p, -ENOMEM, "IMDS: %s", strerror(ENOMEM));
                return;
        }
        strstrip(p->imds_token);
        /* It goes into a header line; a NUL byte would cut it short. */
        if (memchr(resp->body, '\0', resp->body_len) || !imds_token_valid(p->imds_token)) {
                fetch_failed(p, -EBADMSG, "IMDS PUT /latest/api/token: malformed token");
                return;
        }

        url = mem_printf("%s/latest/meta-data/iam/security-credentials/", p->imds_url);
        header = mem_printf("X-aws-ec2-metadata-token: %s", p->imds_token);
        if (!url || !header) {
                fetch_failed(p, -ENOMEM, "IMDS: %s", strerror(ENOMEM));
                return;
        }
        char *headers[] = { header, NULL };
        p->step = FETCH_IMDS_ROLE;
        r = start_request(p, "GET", url, headers, on_imds_role);
        if (r < 0)
                fetch_failed(p, r, "IMDS GET /latest/meta-data/iam/security-credentials/: %s", strerror(-r));
}

static void imds_start(AwsCredentialsProvider *p) {
        _cleanup_free_ char *url = mem_printf("%s/latest/api/token", p->imds_url);
        char ttl[64];
        char *headers[] = { ttl, NULL };
        int r;

        if (!url) {
                fetch_failed(p, -ENOMEM, "IMDS: %s", strerror(ENOMEM));
                return;
        }
        snprintf(ttl, sizeof ttl, "X-aws-ec2-metadata-token-ttl-seconds: %d", AWS_IMDS_TOKEN_TTL_SECONDS);
        p->step = FETCH_IMDS_TOKEN;
        r = start_request(p, "PUT", url, headers, on_imds_token);
        if (r < 0)
                fetch_failed(p, r, "IMDS PUT /latest/api/token: %s", strerror(-r));
}

/* ---- container ---- */

static void on_container(int result, const CurlResponse *resp, void *userdata) {
        AwsCredentialsProvider *p = userdata;
        AwsCredentials *c = NULL;
        char buf[32];
        int r;

        /* The URL is left out of messages: the relative one is the task's
         * own address for its credentials. */
        if (result != 200) {
                fetch_failed(p, result_to_errno(result), "container credentials endpoint: %s",
                             describe(result, buf, sizeof buf));
                return;
        }
        r = aws_credentials_parse_json(resp->body, resp->body_len, AWS_CREDENTIALS_CONTAINER, &c);
        if (r < 0) {
                fetch_failed(p, r, "container credentials endpoint: %s",
                             r == -ENOMEM ? strerror(ENOMEM) : "malformed credentials");
                return;
        }
        fetch_succeeded(p, c);
}

static void container_start(AwsCredentialsProvider *p, char *url, char *token) {
        _cleanup_free_ char *u = url;
        _cleanup_wipe_ char *t = token, *auth = NULL;
        char *headers[3] = { (char *) "Accept: application/json", NULL, NULL };
        int r;

        if (t) {
                auth = mem_printf("Authorization: %s", t);
                if (!auth) {
                        fetch_failed(p, -ENOMEM, "container credentials endpoint: %s", strerror(ENOMEM));
                        return;
                }
                headers[1] = auth;
        }
        p->step = FETCH_CONTAINER;
        r = start_request(p, "GET", u, headers, on_container);
        if (r < 0)
                fetch_failed(p, r, "container credentials endpoint: %s", strerror(-r));
}

/* ---- the chain ---- */

static void fetch_start(AwsCredentialsProvider *p) {
        _cleanup_(aws_credentials_freep) AwsCredentials *c = NULL;
        _cleanup_free_ char *path = NULL, *profile = NULL, *url = NULL;
        _cleanup_wipe_ char *token = NULL;
        const char *disabled;
        bool explicit = false, file_named;
        int r;

        if (p->step != FETCH_IDLE)
                return;
        /* A source once chosen is asked again (refreshes); the environment
         * and the file do not expire, so they are read again only after
         * aws_credentials_provider_invalidate(). */
        if (p->source == AWS_CREDENTIALS_IMDS) {
                imds_start(p);
                return;
        }

        if (p->source != AWS_CREDENTIALS_CONTAINER) {
                r = aws_credentials_from_env(p->env, &c);
                if (r == 0) {
                        fetch_succeeded(p, TAKE_PTR(c));
                        return;
                }
                if (r == -EINVAL) {
                        fetch_failed(p, r,
                                     "environment: AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY, or a "
                                     "value with control characters");
                        return;
                }
                if (r != -ENOENT) {
                        fetch_failed(p, r, "environment: %s", strerror(-r));
                        return;
                }

                file_named = !isempty(aws_env_get(p->env, "AWS_SHARED_CREDENTIALS_FILE"));
                r = aws_credentials_file_location(p->env, &path, &profile, &explicit);
                if (r == -ENOMEM) {
                        fetch_failed(p, r, "shared credentials file: %s", strerror(-r));
                        return;
                }
                if (r == 0) {
                        r = aws_credentials_from_file(path, profile, &c);
                        if (r == 0) {
                                fetch_succeeded(p, TAKE_PTR(c));
                                return;
                        }
                        /* A profile asked for by name is not replaced by
                         * another identity. */
                        if ((r == -ENOENT || r == -ENOKEY) && explicit) {
                                fetch_failed(p, -ENOKEY, "%s: no credentials for profile '%s' (AWS_PROFILE)", path,
                                             profile);
                                return;
                        }
                        if (r == -EINVAL) {
                                fetch_failed(p, r,
                                             "%s: profile '%s': aws_access_key_id without "
                                             "aws_secret_access_key, or a value with control characters",
                                             path, profile);
                                return;
                        }
                        /* The default path may sit in a home the
                         * sandbox hides (ProtectHome=): only a file named
                         * in AWS_SHARED_CREDENTIALS_FILE must be readable. */
                        if (!file_named && (r == -EACCES || r == -ENOTDIR))
                                r = -ENOENT;
                        if (r != -ENOENT && r != -ENOKEY) {
                                fetch_failed(p, r, "%s: %s", path, strerror(-r));
                                return;
                        }
                }
        }

        r = aws_container_endpoint(p->env, p->container_url, &url, &token);
        if (r == 0) {
                container_start(p, TAKE_PTR(url), TAKE_PTR(token));
                return;
        }
        if (r == -EPERM) {
                fetch_failed(p, r,
                             "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https, or name a loopback address "
                             "or the ECS/EKS link-local address");
                return;
        }
        if (r != -ENOENT || p->source == AWS_CREDENTIALS_CONTAINER) {
                fetch_failed(p, r == -ENOENT ? -ENOKEY : r, "container credentials endpoint: %s",
                             r == -EINVAL ? "malformed URI or authorization token" : strerror(-r));
                return;
        }

        disabled = aws_env_get(p->env, "AWS_EC2_METADATA_DISABLED");
        if (disabled && strcasecmp(disabled, "true") == 0) {
                fetch_failed(p, -ENOKEY,
                             "no AWS credentials: none in the environment or the shared credentials file, no "
                             "container endpoint, and IMDS is disabled (AWS_EC2_METADATA_DISABLED)");
                return;
        }
        imds_start(p);
}

/* Start a fetch when the credentials are missing, expired or due, unless
 * one is running or the last ended less than retry_usec ago. */
static void ensure(AwsCredentialsProvider *p) {
        uint64_t now = now_realtime();

        if (aws_credentials_freshness(p->creds, now, p->refresh_margin_usec) == AWS_CREDENTIALS_FRESH ||
            p->step != FETCH_IDLE)
                return;
        if (p->last_fetch_usec > 0 && now < p->last_fetch_usec + p->retry_usec)
                return;
        fetch_start(p);
}

/* Serve the waiters that were there when this began: the credentials if
 * they are valid, the reason if not and no fetch is running; otherwise
 * they wait for the fetch's end.  Handlers may add waiters (served on the
 * next round), free waiters, invalidate, or free the provider. */
static void deliver(AwsCredentialsProvider *p) {
        p->dispatching++;
        for (AwsCredentialsWait *w = p->waiters; w; w = w->next)
                w->serving = true;
        while (!p->free_pending) {
                AwsCredentialsWait *w = p->waiters;
                AwsCredentialsHandler handler;
                void *userdata;
                bool ok;

                while (w && !w->serving)
                        w = w->next;
                if (!w)
                        break;
                ok = usable(p);
                if (!ok && p->step != FETCH_IDLE)
                        break;
                handler = w->handler;
                userdata = w->userdata;
                waiter_unlink(w);
                w->serving = false;
                if (w->floating)
                        free(w);
                handler(ok ? 0 : unusable_error(p), ok ? p->creds : NULL, userdata);
        }
        if (!p->free_pending)
                for (AwsCredentialsWait *w = p->waiters; w; w = w->next)
                        w->serving = false;
        p->dispatching--;
        if (p->free_pending && p->dispatching == 0)
                free(p);
}

static int on_defer(sd_event_source *s _unused_, void *userdata) {
        deliver(userdata);
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        AwsCredentialsProvider *p = userdata;

        fetch_start(p);
        return 0;
}

static bool base_url_valid(const char *u) {
        return (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) && no_controls(u) &&
                !strpbrk(u, " ?#");
}

static char *base_url_dup(const char *u) {
        size_t n = strlen(u);

        while (n > 0 && u[n - 1] == '/')
                n--;
        return mem_strndup(u, n);
}

int aws_credentials_provider_new(sd_event *e, CurlEvent *ce, const AwsCredentialsOptions *o,
                                 AwsCredentialsProvider **ret) {
        static const AwsCredentialsOptions defaults = {};
        _cleanup_(aws_credentials_provider_freep) AwsCredentialsProvider *p = NULL;
        int r;

        o = o ?: &defaults;
        if (!e || !ce || !ret || (o->imds_url && !base_url_valid(o->imds_url)) ||
            (o->container_url && !base_url_valid(o->container_url)))
                return -EINVAL;

        p = mem_new(AwsCredentialsProvider, 1);
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->curl = ce;
        p->source = _AWS_CREDENTIALS_SOURCE_INVALID;
        p->refresh_margin_usec = o->refresh_margin_usec ?: AWS_CREDENTIALS_REFRESH_MARGIN_USEC_DEFAULT;
        p->timeout_usec = o->timeout_usec ?: AWS_CREDENTIALS_TIMEOUT_USEC_DEFAULT;
        p->retry_usec = o->retry_usec ?: AWS_CREDENTIALS_RETRY_USEC_DEFAULT;
        p->env = strv_copy(o->env ?: environ);
        p->imds_url = base_url_dup(o->imds_url ?: AWS_IMDS_URL_DEFAULT);
        p->container_url = base_url_dup(o->container_url ?: AWS_CONTAINER_URL_DEFAULT);
        if (!p->env || !p->imds_url || !p->container_url)
                return -ENOMEM;

        r = sd_event_add_time(e, &p->timer, CLOCK_REALTIME, 1, REFRESH_TIMER_ACCURACY_USEC, on_timer, p);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = sd_event_add_defer(e, &p->defer, on_defer, p);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(p->defer, SD_EVENT_OFF);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

AwsCredentialsProvider *aws_credentials_provider_free(AwsCredentialsProvider *p) {
        if (!p || p->free_pending)
                return NULL;
        p->transfer = curl_event_transfer_free(p->transfer);
        p->timer = sd_event_source_disable_unref(p->timer);
        p->defer = sd_event_source_disable_unref(p->defer);
        while (p->waiters) {
                AwsCredentialsWait *w = p->waiters;

                waiter_unlink(w);
                if (w->floating)
                        free(w);
        }
        aws_credentials_free(p->creds);
        wipe_strv_free(p->env);
        free(p->imds_url);
        free(p->container_url);
        free(p->error_text);
        wipe_free(p->imds_token);
        free(p->role);
        sd_event_unref(p->event);
        if (p->dispatching > 0) {
                /* deliver() is on the stack and looks at p once more. */
                p->free_pending = true;
                return NULL;
        }
        free(p);
        return NULL;
}

int aws_credentials_provider_get(AwsCredentialsProvider *p, AwsCredentialsHandler handler, void *userdata,
                                 AwsCredentialsWait **ret) {
        AwsCredentialsWait *w, **tail;

        if (!p || !handler || p->free_pending)
                return -EINVAL;
        w = mem_new(AwsCredentialsWait, 1);
        if (!w)
                return -ENOMEM;
        w->provider = p;
        w->handler = handler;
        w->userdata = userdata;
        w->floating = !ret;
        for (tail = &p->waiters; *tail; tail = &(*tail)->next)
                w->prev = *tail;
        *tail = w;

        ensure(p);
        schedule_delivery(p);
        if (ret)
                *ret = w;
        return 0;
}

AwsCredentialsWait *aws_credentials_wait_free(AwsCredentialsWait *w) {
        if (!w)
                return NULL;
        waiter_unlink(w);
        free(w);
        return NULL;
}

int aws_credentials_provider_peek(AwsCredentialsProvider *p, const AwsCredentials **ret) {
        if (!p || !ret)
                return -EINVAL;
        ensure(p);
        if (usable(p)) {
                *ret = p->creds;
                return 0;
        }
        return p->step != FETCH_IDLE ? -EAGAIN : unusable_error(p);
}

void aws_credentials_provider_invalidate(AwsCredentialsProvider *p) {
        if (!p)
                return;
        p->transfer = curl_event_transfer_free(p->transfer);
        p->step = FETCH_IDLE;
        wipe_free(TAKE_PTR(p->imds_token));
        free(TAKE_PTR(p->role));
        p->creds = aws_credentials_free(p->creds);
        p->source = _AWS_CREDENTIALS_SOURCE_INVALID;
        p->last_fetch_usec = 0;
        clear_error(p);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
        if (p->waiters) {
                fetch_start(p);
                schedule_delivery(p);
        }
}

const char *aws_credentials_provider_error(const AwsCredentialsProvider *p) {
        return p && p->error < 0 ? strempty(p->error_text) : NULL;
}

AwsCredentialsSource aws_credentials_provider_source(const AwsCredentialsProvider *p) {
        return p && p->creds ? p->creds->source : _AWS_CREDENTIALS_SOURCE_INVALID;
}
