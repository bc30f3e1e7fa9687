/* SPDX-License-Identifier: MIT */
/*
 * test-curl-event.c — the HTTP client on a real sd-event loop against a
 * tiny HTTP server on 127.0.0.1 in a thread of this process: a 200 with a
 * body, a request body and headers echoed, an answer that never comes
 * (timeout), bodies and headers over the cap, a refused connection, no
 * redirects, no other protocols; cancelling a request, freeing the client
 * with requests in flight or from inside a handler; allocation failures;
 * and the SNS certificate download composed with the cache.
 */
#include "test-helpers.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "curl-event.h"
#include "sns.h"

/* The public SNS signing certificate of the shared test vectors
 * (vectors/sns/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem),
 * inline so that this test needs no files. */
static const char sns_cert_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                   "MIIF1zCCBL+gAwIBAgIQB9pYWG3Mi7xej22g9pobJTANBgkqhkiG9w0BAQsFADBG\n"
                                   "MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRUwEwYDVQQLEwxTZXJ2ZXIg\n"
                                   "Q0EgMUIxDzANBgNVBAMTBkFtYXpvbjAeFw0yMTA5MDcwMDAwMDBaFw0yMjA4MTcy\n"
                                   "MzU5NTlaMBwxGjAYBgNVBAMTEXNucy5hbWF6b25hd3MuY29tMIIBIjANBgkqhkiG\n"
                                   "9w0BAQEFAAOCAQ8AMIIBCgKCAQEAutFqueT3XgP13udzxE6UpbdjOtVO5DwoMpSM\n"
                                   "iDNMnGzF1TYH5/R2LPUOBeTB0SkKnR4kpNcUZhicpGD4aKciz/GEZ6wu65xncfT9\n"
                                   "H/KBOQwoXYTuClHwp6fYpGzcGFaFoEYMnijL/o4qmTSd+ukglQUgKpsDw4ofw6rU\n"
                                   "m2CttJo+GQSNQ9NfGR1h/0J+zsApkeSYrXRx5wNlu87z8os1C/6PBrUHwt3xXeaf\n"
                                   "Xzfwut8aRRYsS8BySOA9DAgLfNHlfdQCjKPXKrG/ussgReyWD6n/HH+j7Uha3xos\n"
                                   "TzQqJifcxlTq6MxWdPR6fDaJNvqw6DOE7UjUNxHguXHlVfxhlQIDAQABo4IC6TCC\n"
                                   "AuUwHwYDVR0jBBgwFoAUWaRmBlKge5WSPKOUByeWdFv5PdAwHQYDVR0OBBYEFAqz\n"
                                   "C+vyouneE7mWWLbi9i0UsWUbMBwGA1UdEQQVMBOCEXNucy5hbWF6b25hd3MuY29t\n"
                                   "MA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIw\n"
                                   "OwYDVR0fBDQwMjAwoC6gLIYqaHR0cDovL2NybC5zY2ExYi5hbWF6b250cnVzdC5j\n"
                                   "b20vc2NhMWIuY3JsMBMGA1UdIAQMMAowCAYGZ4EMAQIBMHUGCCsGAQUFBwEBBGkw\n"
                                   "ZzAtBggrBgEFBQcwAYYhaHR0cDovL29jc3Auc2NhMWIuYW1hem9udHJ1c3QuY29t\n"
                                   "MDYGCCsGAQUFBzAChipodHRwOi8vY3J0LnNjYTFiLmFtYXpvbnRydXN0LmNvbS9z\n"
                                   "Y2ExYi5jcnQwDAYDVR0TAQH/BAIwADCCAX0GCisGAQQB1nkCBAIEggFtBIIBaQFn\n"
                                   "AHYAKXm+8J45OSHwVnOfY6V35b5XfZxgCvj5TV0mXCVdx4QAAAF7vfDVkQAABAMA\n"
                                   "RzBFAiEA2XfHuy36aqRFiaL8c3md2mH451go8707+fRE0pEdSRACIE/g5FXTUXUZ\n"
                                   "PFcmOhm9TZ+uMY1i4CIQ/CKVWln6C3t+AHYAUaOw9f0BeZxWbbg3eI8MpHrMGyfL\n"
                                   "956IQpoN/tSLBeUAAAF7vfDVjAAABAMARzBFAiBF1MhhFP0+FQt3daDFfMYoWwnr\n"
                                   "muTInrjNpwfzlvQBugIhAPYadFzr+LaxSJoiZEbEHBvTts7bT0M3eCQONA2O7w6n\n"
                                   "AHUAQcjKsd8iRkoQxqE6CUKHXk4xixsD6+tLx2jwkGKWBvYAAAF7vfDVdAAABAMA\n"
                                   "RjBEAiAtPapmFAuA71ih4NoSd5hJelzAltNQpxDMcDfDyHyU8gIgWxmaa6+2KbBu\n"
                                   "9xdv379zvnJACFR7jc+4asl08Dn4aagwDQYJKoZIhvcNAQELBQADggEBAA54QX0u\n"
                                   "oFWXfMmv02CGZv4NWo5TapyeeixQ2kKpZHRdVZjxZrw+hoF6HD7P3kGjH8ztyJll\n"
                                   "tDxB0qgMltbPhQdScwhA6iTgoaBYqEUC/VHKd4PmmPT6yIsM36NBZVmkGlzl5uNo\n"
                                   "/dBgBaG0SsVJnhr5zro3c2quC7n6fVGEZhf/UgQwRnnvThnvbNKguglDMq4uEqv8\n"
                                   "njKyleht+glkcmXO0m9qLKt6BOS0amy6U2GlAwRn0Wx02ndJtnRCSC6kPuRWK/SQ\n"
                                   "FEjB7gCK4hdKaAOuWdZpI55vF6ifOeM8toC3g7ofO8qLTnJupAG+ZitY5J3cvHWr\n"
                                   "HqOUdKigPDHYLRo=\n"
                                   "-----END CERTIFICATE-----\n";

/* ---- the test's HTTP server --------------------------------------------- */

typedef struct Server {
        int fd;
        unsigned port;
        pthread_t thread;
        pthread_mutex_t lock;
        int held[64]; /* /slow connections, never answered */
        size_t n_held;
        const char *cert; /* served at /cert.pem */
} Server;

static Server server;

static void send_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return; /* the client went away (cap, cancel): fine */
                p = (const char *) p + k;
                n -= (size_t) k;
        }
}

static void send_str(int fd, const char *s) {
        send_all(fd, s, strlen(s));
}

/* Read one request (head and Content-Length body) into buf. */
static ssize_t read_request(int fd, char *buf, size_t size) {
        size_t len = 0, want = 0;
        char *end = NULL;

        for (;;) {
                ssize_t k;

                if (end && len >= want)
                        return (ssize_t) len;
                if (len + 1 >= size)
                        return -1;
                k = recv(fd, buf + len, size - 1 - len, 0);
                if (k <= 0)
                        return -1;
                len += (size_t) k;
                buf[len] = '\0';
                if (buf[0] < 'A' || buf[0] > 'Z')
                        return -1; /* not HTTP (a TLS ClientHello): hang up */
                if (!end && (end = strstr(buf, "\r\n\r\n"))) {
                        const char *cl = strcasestr(buf, "\r\nContent-Length:");
                        want = (size_t) (end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
                }
        }
}

static void serve(Server *s, int c) {
        static char buf[256 * 1024];
        char head[512], path[256] = "";
        ssize_t n = read_request(c, buf, sizeof buf);

        if (n < 0 || sscanf(buf, "%*s %255s", path) != 1) {
                close(c);
                return;
        }

        if (streq(path, "/slow")) {
                pthread_mutex_lock(&s->lock);
                if (s->n_held < ELEMENTSOF(s->held)) {
                        s->held[s->n_held++] = c;
                        c = -1;
                }
                pthread_mutex_unlock(&s->lock);
        } else if (streq(path, "/ok"))
                send_str(c,
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test:   yes\r\nContent-Length: 5\r\n"
                         "Connection: close\r\n\r\nhello");
        else if (streq(path, "/echo")) {
                snprintf(head, sizeof head, "HTTP/1.1 201 Created\r\nContent-Length: %zd\r\nConnection: close\r\n\r\n",
                         n);
                send_str(c, head);
                send_all(c, buf, (size_t) n);
        } else if (streq(path, "/big") || streq(path, "/big-stream")) {
                static char body[64 * 1024];
                memset(body, 'x', sizeof body);
                if (streq(path, "/big"))
                        snprintf(head, sizeof head,
                                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", sizeof body);
                else
                        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                send_str(c, head);
                send_all(c, body, sizeof body);
        } else if (streq(path, "/many-headers")) {
                send_str(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n");
                for (int i = 0; i < 500; i++) {
                        snprintf(head, sizeof head, "X-Header-%d: %0100d\r\n", i, i);
                        send_str(c, head);
                }
                send_str(c, "Content-Length: 0\r\n\r\n");
        } else if (streq(path, "/continue"))
                send_str(c,
                         "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-Final: 1\r\n"
                         "Content-Length: 2\r\nConnection: close\r\n\r\nok");
        else if (streq(path, "/redirect"))
                send_str(c,
                         "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                         "moved");
        else if (streq(path, "/cert.pem") && s->cert) {
                snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/x-pem-file\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         strlen(s->cert));
                send_str(c, head);
                send_str(c, s->cert);
        } else if (streq(path, "/nothing")) {
                /* close without a word */
        } else
                send_str(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");

        if (c >= 0)
                close(c);
}

static void *server_main(void *userdata) {
        Server *s = userdata;

        for (;;) {
                int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL; /* shut down */
                }
                struct timeval tv = { .tv_sec = 10 };
                (void) setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                serve(s, c);
        }
}

static unsigned listen_port(int fd) {
        struct sockaddr_in a;
        socklen_t l = sizeof a;

        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &l), 0);
        return ntohs(a.sin_port);
}

static int bound_socket(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        return fd;
}

static void release_held(void) {
        pthread_mutex_lock(&server.lock);
        for (size_t i = 0; i < server.n_held; i++)
                close(server.held[i]);
        server.n_held = 0;
        pthread_mutex_unlock(&server.lock);
}

static int setup(void **state _unused_) {
        /* The requests go to 127.0.0.1, never through a proxy. */
        unsetenv("http_proxy");
        unsetenv("https_proxy");
        unsetenv("HTTPS_PROXY");
        unsetenv("all_proxy");
        unsetenv("ALL_PROXY");
        assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);

        server.fd = bound_socket();
        assert_int_equal(listen(server.fd, 64), 0);
        server.port = listen_port(server.fd);
        pthread_mutex_init(&server.lock, NULL);
        assert_int_equal(pthread_create(&server.thread, NULL, server_main, &server), 0);
        return 0;
}

static int teardown(void **state _unused_) {
        /* Wakes accept() in the server thread. */
        shutdown(server.fd, SHUT_RDWR);
        pthread_join(server.thread, NULL);
        close(server.fd);
        release_held();
        pthread_mutex_destroy(&server.lock);
        curl_global_cleanup();
        return 0;
}

/* ---- the client side ---------------------------------------------------- */

typedef struct Result {
        unsigned calls;
        int result;
        long status;
        char body[70 * 1024];
        size_t body_len;
        char x_test[64];
        char location[64];
        bool has_final, has_interim;
        char error[256];
        /* what the handler does besides recording */
        CurlEvent **free_client;
        CurlTransfer **free_transfer;
        CurlEvent *start_on;
        struct Result *start_result;
} Result;

static char *url(const char *path) {
        char *u = mem_printf("http://127.0.0.1:%u%s", server.port, path);
        assert_non_null(u);
        return u;
}

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void on_done(int result, const CurlResponse *resp, void *userdata);

static void record(Result *res, int result, const CurlResponse *resp) {
        const char *h;

        res->calls++;
        res->result = result;
        res->status = resp->status;
        res->body_len = MIN(resp->body_len, sizeof res->body - 1);
        memcpy(res->body, resp->body, res->body_len);
        res->body[res->body_len] = '\0';
        h = curl_event_response_header(resp, "x-test");
        snprintf(res->x_test, sizeof res->x_test, "%s", strempty(h));
        h = curl_event_response_header(resp, "Location");
        snprintf(res->location, sizeof res->location, "%s", strempty(h));
        res->has_final = curl_event_response_header(resp, "X-Final");
        res->has_interim = curl_event_response_header(resp, "X-Interim");
        snprintf(res->error, sizeof res->error, "%s", resp->error);
}

static void on_done(int result, const CurlResponse *resp, void *userdata) {
        Result *res = userdata;

        record(res, result, resp);
        if (res->free_transfer)
                *res->free_transfer = curl_event_transfer_free(*res->free_transfer);
        if (res->start_on) {
                _cleanup_free_ char *u = url("/ok");
                CurlRequest req = { .url = u };
                assert_int_equal(curl_event_request(res->start_on, &req, on_done, res->start_result, NULL), 0);
        }
        if (res->free_client)
                *res->free_client = curl_event_free(*res->free_client);
}

/* Run the loop until every result has been called or max_usec passed. */
static void run_until(sd_event *e, Result *const *results, size_t n, uint64_t max_usec) {
        uint64_t deadline = mono_usec() + max_usec;

        for (;;) {
                bool all = true;
                for (size_t i = 0; i < n; i++)
                        if (results[i]->calls == 0)
                                all = false;
                if (all || mono_usec() >= deadline)
                        return;
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
        }
}

static void run_for(sd_event *e, uint64_t usec) {
        uint64_t deadline = mono_usec() + usec;

        while (mono_usec() < deadline)
                assert_true(sd_event_run(e, 20 * USEC_PER_MSEC) >= 0);
}

static int fetch(sd_event *e, const CurlRequest *req, Result *res) {
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        Result *rs[] = { res };

        assert_int_equal(curl_event_new(e, &ce), 0);
        assert_int_equal(curl_event_request(ce, req, on_done, res, NULL), 0);
        assert_int_equal(curl_event_n_pending(ce), 1);
        run_until(e, rs, 1, 20 * USEC_PER_SEC);
        assert_int_equal(res->calls, 1);
        assert_int_equal(curl_event_n_pending(ce), 0);
        return res->result;
}

static sd_event *new_loop(void) {
        sd_event *e = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        return e;
}

static void test_ok(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *u = url("/ok");
        static Result res, head;

        CurlRequest req = { .url = u };
        assert_int_equal(fetch(e, &req, &res), 200);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.body, "hello");
        assert_int_equal(res.body_len, 5);
        assert_string_equal(res.x_test, "yes");
        assert_string_equal(res.error, "");

        CurlRequest hreq = { .url = u, .method = "HEAD" };
        assert_int_equal(fetch(e, &hreq, &head), 200);
        assert_int_equal(head.body_len, 0);
        assert_string_equal(head.x_test, "yes");
}

static void test_echo(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *u = url("/echo");
        char *headers[] = { "X-Custom: 42", "Content-Type: application/json", NULL };
        static char big[4000];
        static Result put, post, get;

        CurlRequest req = { .method = "PUT", .url = u, .headers = headers, .body = "payload", .body_len = 7 };
        assert_int_equal(fetch(e, &req, &put), 201);
        assert_true(strncmp(put.body, "PUT /echo HTTP/1.1\r\n", 20) == 0);
        assert_non_null(strstr(put.body, "\r\nX-Custom: 42\r\n"));
        assert_non_null(strstr(put.body, "\r\nContent-Length: 7\r\n"));
        assert_non_null(strstr(put.body, "\r\nUser-Agent: " PACKAGE_NAME "/" PACKAGE_VERSION "\r\n"));
        assert_true(strlen(put.body) > 7 && streq(put.body + strlen(put.body) - 11, "\r\n\r\npayload"));

        /* a larger POST goes out without "Expect: 100-continue" */
        memset(big, 'b', sizeof big);
        CurlRequest preq = { .method = "POST", .url = u, .body = big, .body_len = sizeof big };
        assert_int_equal(fetch(e, &preq, &post), 201);
        assert_true(strncmp(post.body, "POST /echo HTTP/1.1\r\n", 21) == 0);
        assert_null(strcasestr(post.body, "Expect:"));
        assert_non_null(strstr(post.body, "\r\nContent-Length: 4000\r\n"));
        assert_int_equal(post.body[post.body_len - 1], 'b');

        CurlRequest greq = { .url = u, .headers = headers };
        assert_int_equal(fetch(e, &greq, &get), 201);
        assert_true(strncmp(get.body, "GET /echo HTTP/1.1\r\n", 20) == 0);
        assert_null(strcasestr(get.body, "Content-Length:"));
}

static void test_timeout(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *u = url("/slow");
        static Result res;
        uint64_t start = mono_usec(), elapsed;

        CurlRequest req = { .url = u, .timeout_usec = 300 * USEC_PER_MSEC };
        assert_int_equal(fetch(e, &req, &res), -ETIMEDOUT);
        elapsed = mono_usec() - start;
        assert_true(elapsed >= 290 * USEC_PER_MSEC);
        assert_true(elapsed < 10 * USEC_PER_SEC);
        assert_int_equal(res.status, 0);
        assert_true(strlen(res.error) > 0);
        release_held();
}

static void test_caps(void **state _unused_) {
        static const struct {
                const char *path;
                size_t cap;
                int want;
                size_t len;
        } cases[] = {
                { "/big", 1024, -EMSGSIZE, 0 }, /* Content-Length over the cap */
                { "/big-stream", 1024, -EMSGSIZE, 0 }, /* no Content-Length */
                { "/big", 64 * 1024, 200, 64 * 1024 }, /* exactly the cap */
                { "/big-stream", 64 * 1024, 200, 64 * 1024 }, /* exactly the cap */
                { "/big-stream", 64 * 1024 - 1, -EMSGSIZE, 0 }, /* one byte over */
                { "/big", 0, 200, 64 * 1024 }, /* the default cap */
                { "/many-headers", 0, -EMSGSIZE, 0 }, /* header count */
        };
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *u = url(cases[i].path);
                static Result res;
                CurlRequest req = { .url = u, .max_response_body = cases[i].cap };

                memset(&res, 0, sizeof res);
                int r = fetch(e, &req, &res);
                if (r != cases[i].want)
                        fail_msg("%s cap %zu: got %d (%s), want %d", cases[i].path, cases[i].cap, r, res.error,
                                 cases[i].want);
                if (r > 0)
                        assert_int_equal(res.body_len, cases[i].len);
        }
}

static void test_refused(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        int fd = bound_socket();
        unsigned port = listen_port(fd);
        static Result res;

        /* bound, never listened on, closed: nobody is there */
        close(fd);
        _cleanup_free_ char *u = mem_printf("http://127.0.0.1:%u/ok", port);
        CurlRequest req = { .url = u };
        assert_int_equal(fetch(e, &req, &res), -ECONNREFUSED);
        assert_int_equal(res.status, 0);
}

static void test_protocols_and_replies(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *ftp = mem_printf("ftp://127.0.0.1:%u/", server.port),
                            *https = mem_printf("https://127.0.0.1:%u/ok", server.port);
        static const struct {
                const char *path; /* NULL: use url */
                const char *url;
                int want;
        } cases[] = {
                { "/redirect", NULL, 302 }, /* not followed */
                { "/continue", NULL, 200 },
                { "/missing", NULL, 404 },
                { "/nothing", NULL, -ECONNRESET },
                { NULL, "file:///etc/hostname", -EINVAL },
                { NULL, "gopher://127.0.0.1/", -EINVAL },
                { NULL, "http://[::1", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *u = cases[i].path ? url(cases[i].path) : mem_strdup(cases[i].url);
                static Result res;
                CurlRequest req = { .url = u };

                memset(&res, 0, sizeof res);
                int r = fetch(e, &req, &res);
                if (r != cases[i].want)
                        fail_msg("%s: got %d (%s), want %d", u, r, res.error, cases[i].want);
                if (cases[i].want == 302) {
                        assert_string_equal(res.location, "/ok");
                        assert_string_equal(res.body, "moved");
                }
                if (cases[i].want == 200) {
                        /* the interim response's headers are dropped */
                        assert_true(res.has_final);
                        assert_false(res.has_interim);
                        assert_string_equal(res.body, "ok");
                }
        }

        static Result f, t;
        CurlRequest freq = { .url = ftp };
        assert_int_equal(fetch(e, &freq, &f), -EINVAL);
        /* TLS to a plain-text server: the handshake fails */
        CurlRequest treq = { .url = https, .timeout_usec = 5 * USEC_PER_SEC };
        assert_int_equal(fetch(e, &treq, &t), -EPROTO);
}

static void test_bad_arguments(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        _cleanup_free_ char *u = url("/ok");
        char *smuggle[] = { "X-A: 1\r\nX-B: 2", NULL };
        char *nameless[] = { ": value", NULL };
        char *no_colon[] = { "X-A value", NULL };
        static Result res;

        assert_int_equal(curl_event_new(e, &ce), 0);
        static const char *const methods[] = { "get", "", "GE T", "POST\r\n", "AVERYLONGMETHODNAME" };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                CurlRequest req = { .url = u, .method = methods[i] };
                assert_int_equal(curl_event_request(ce, &req, on_done, &res, NULL), -EINVAL);
        }
        CurlRequest nourl = { .url = NULL };
        assert_int_equal(curl_event_request(ce, &nourl, on_done, &res, NULL), -EINVAL);
        CurlRequest empty = { .url = "" };
        assert_int_equal(curl_event_request(ce, &empty, on_done, &res, NULL), -EINVAL);
        CurlRequest h1 = { .url = u, .headers = smuggle };
        assert_int_equal(curl_event_request(ce, &h1, on_done, &res, NULL), -EINVAL);
        CurlRequest h2 = { .url = u, .headers = nameless };
        assert_int_equal(curl_event_request(ce, &h2, on_done, &res, NULL), -EINVAL);
        CurlRequest h3 = { .url = u, .headers = no_colon };
        assert_int_equal(curl_event_request(ce, &h3, on_done, &res, NULL), -EINVAL);
        CurlRequest ok = { .url = u };
        assert_int_equal(curl_event_request(ce, &ok, NULL, &res, NULL), -EINVAL);
        assert_int_equal(curl_event_n_pending(ce), 0);
        run_for(e, 50 * USEC_PER_MSEC);
        assert_int_equal(res.calls, 0);
}

static void test_cancel(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        _cleanup_free_ char *slow = url("/slow"), *ok = url("/ok");
        static Result s, o;
        CurlTransfer *t = NULL;
        Result *rs[] = { &o };

        assert_int_equal(curl_event_new(e, &ce), 0);
        CurlRequest sreq = { .url = slow };
        CurlRequest oreq = { .url = ok };
        assert_int_equal(curl_event_request(ce, &sreq, on_done, &s, &t), 0);
        assert_int_equal(curl_event_request(ce, &oreq, on_done, &o, NULL), 0);
        assert_int_equal(curl_event_n_pending(ce), 2);
        run_until(e, rs, 1, 20 * USEC_PER_SEC);
        assert_int_equal(o.result, 200);
        assert_int_equal(curl_event_n_pending(ce), 1);

        t = curl_event_transfer_free(t);
        assert_int_equal(curl_event_n_pending(ce), 0);
        run_for(e, 200 * USEC_PER_MSEC);
        assert_int_equal(s.calls, 0);
        release_held();

        /* cancelled before the loop ever ran */
        static Result never;
        assert_int_equal(curl_event_request(ce, &oreq, on_done, &never, &t), 0);
        t = curl_event_transfer_free(t);
        run_for(e, 100 * USEC_PER_MSEC);
        assert_int_equal(never.calls, 0);

        /* an owned transfer outlives its completion until freed */
        static Result kept;
        Result *kr[] = { &kept };
        assert_int_equal(curl_event_request(ce, &oreq, on_done, &kept, &t), 0);
        run_until(e, kr, 1, 20 * USEC_PER_SEC);
        assert_int_equal(kept.result, 200);
        t = curl_event_transfer_free(t);
}

static void test_free_in_flight(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *slow = url("/slow");
        CurlEvent *ce = NULL;
        CurlTransfer *owned = NULL;
        static Result a, b, c;

        assert_int_equal(curl_event_new(e, &ce), 0);
        CurlRequest req = { .url = slow };
        assert_int_equal(curl_event_request(ce, &req, on_done, &a, NULL), 0);
        assert_int_equal(curl_event_request(ce, &req, on_done, &b, NULL), 0);
        assert_int_equal(curl_event_request(ce, &req, on_done, &c, &owned), 0);
        /* let them connect and send */
        run_for(e, 200 * USEC_PER_MSEC);
        assert_int_equal(curl_event_n_pending(ce), 3);

        ce = curl_event_free(ce);
        run_for(e, 100 * USEC_PER_MSEC);
        assert_int_equal(a.calls + b.calls + c.calls, 0);
        owned = curl_event_transfer_free(owned);
        release_held();
}

static void test_free_from_handler(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *slow = url("/slow"), *ok = url("/ok");
        CurlEvent *ce = NULL;
        static Result s, o1, o2;

        assert_int_equal(curl_event_new(e, &ce), 0);
        CurlRequest sreq = { .url = slow };
        CurlRequest oreq = { .url = ok };
        assert_int_equal(curl_event_request(ce, &sreq, on_done, &s, NULL), 0);
        o1.free_client = &ce;
        o2.free_client = &ce;
        assert_int_equal(curl_event_request(ce, &oreq, on_done, &o1, NULL), 0);
        assert_int_equal(curl_event_request(ce, &oreq, on_done, &o2, NULL), 0);
        for (uint64_t deadline = mono_usec() + 20 * USEC_PER_SEC; o1.calls + o2.calls == 0 && mono_usec() < deadline;)
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
        assert_null(ce);
        /* the first handler to run freed the client; nothing else ran */
        assert_int_equal(o1.calls + o2.calls, 1);
        run_for(e, 100 * USEC_PER_MSEC);
        assert_int_equal(s.calls, 0);
        assert_int_equal(o1.calls + o2.calls, 1);
        release_held();
}

static void test_chain_and_self_free(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        _cleanup_free_ char *ok = url("/ok");
        static Result first, second;
        CurlTransfer *t = NULL;
        Result *rs[] = { &first, &second };

        assert_int_equal(curl_event_new(e, &ce), 0);
        first.free_transfer = &t;
        first.start_on = ce;
        first.start_result = &second;
        CurlRequest req = { .url = ok };
        assert_int_equal(curl_event_request(ce, &req, on_done, &first, &t), 0);
        run_until(e, rs, 2, 20 * USEC_PER_SEC);
        assert_null(t);
        assert_int_equal(first.result, 200);
        assert_int_equal(second.result, 200);
        assert_int_equal(curl_event_n_pending(ce), 0);
}

static void test_parallel(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        _cleanup_free_ char *ok = url("/ok");
        static Result res[16];
        Result *rs[ELEMENTSOF(res)];

        assert_int_equal(curl_event_new(e, &ce), 0);
        CurlRequest req = { .url = ok };
        for (size_t i = 0; i < ELEMENTSOF(res); i++) {
                rs[i] = &res[i];
                assert_int_equal(curl_event_request(ce, &req, on_done, &res[i], NULL), 0);
        }
        assert_int_equal(curl_event_n_pending(ce), ELEMENTSOF(res));
        run_until(e, rs, ELEMENTSOF(res), 20 * USEC_PER_SEC);
        for (size_t i = 0; i < ELEMENTSOF(res); i++) {
                assert_int_equal(res[i].calls, 1);
                assert_int_equal(res[i].result, 200);
                assert_string_equal(res[i].body, "hello");
        }
}

static void test_oom(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *ok = url("/ok");
        char *headers[] = { "X-Custom: 1", NULL };
        unsigned long n;

        for (n = 1;; n++) {
                CurlEvent *ce = NULL;
                static Result res;
                Result *rs[] = { &res };
                bool injected;
                int r;

                memset(&res, 0, sizeof res);
                alloc_fail_after(n);
                r = curl_event_new(e, &ce);
                if (r >= 0) {
                        CurlRequest req = { .url = ok, .headers = headers, .body = "x", .body_len = 1 };
                        r = curl_event_request(ce, &req, on_done, &res, NULL);
                }
                if (r >= 0) {
                        run_until(e, rs, 1, 20 * USEC_PER_SEC);
                        assert_int_equal(res.calls, 1);
                        r = res.result;
                }
                injected = alloc_count() >= n;
                alloc_fail_after(0);
                curl_event_free(ce);
                if (r != -ENOMEM) {
                        assert_int_equal(r, 200);
                        assert_false(injected);
                        break;
                }
        }
        assert_true(n > 4);
}

/* The SNS certificate download: fetch, check, store, load. */
static void test_cert_fetch(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = new_loop();
        _cleanup_free_ char *u = url("/cert.pem"), *cache = make_tmpdir(), *got = NULL;
        static Result res;
        size_t len;

        server.cert = sns_cert_pem;

        CurlRequest req = { .url = u, .max_response_body = SNS_CERT_MAX_SIZE };
        assert_int_equal(fetch(e, &req, &res), 200);
        server.cert = NULL;
        assert_int_equal(res.body_len, strlen(sns_cert_pem));
        /* The URL a message names; the download came from the test server. */
        const char *cert_url =
                "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem";
        assert_int_equal(sns_signing_cert_url_check(cert_url, NULL), 0);
        assert_int_equal(sns_cert_cache_load(cache, cert_url, &got, NULL), -ENOENT);
        assert_int_equal(sns_cert_cache_store(cache, cert_url, res.body, res.body_len), 0);
        assert_int_equal(sns_cert_cache_load(cache, cert_url, &got, &len), 0);
        assert_int_equal(len, res.body_len);
        assert_memory_equal(got, sns_cert_pem, len);
        rm_rf(cache);
}

int main(void) {
        alloc_init();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ok),
                cmocka_unit_test(test_echo),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_caps),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_protocols_and_replies),
                cmocka_unit_test(test_bad_arguments),
                cmocka_unit_test(test_cancel),
                cmocka_unit_test(test_free_in_flight),
                cmocka_unit_test(test_free_from_handler),
                cmocka_unit_test(test_chain_and_self_free),
                cmocka_unit_test(test_parallel),
                cmocka_unit_test(test_oom),
                cmocka_unit_test(test_cert_fetch),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
