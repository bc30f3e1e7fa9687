/* SPDX-License-Identifier: MIT */
/*
 * listen.c — listening sockets, own or from systemd.
 *
 * Security: see listen.h.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "macro.h"
#include "strutil.h"

#define ACTIVATED_MAX 16

static struct {
        int fd;
        char name[64];
} activated[ACTIVATED_MAX];
static size_t n_activated;

static int parse_port(const char *s, unsigned *ret) {
        uint64_t p;

        if (parse_uint64(s, &p) < 0 || p > 65535)
                return -EINVAL;
        *ret = (unsigned) p;
        return 0;
}

int listen_address_parse(const char *s, ListenAddress *ret, const char **ret_reason) {
        ListenAddress a = {};
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon, *port_s;
        unsigned port;

        if (strncmp(s, "unix:", 5) == 0 || s[0] == '/') {
                const char *path = s[0] == '/' ? s : s + 5;
                struct sockaddr_un *un = (struct sockaddr_un *) &a.sa;

                if (path[0] != '/') {
                        *ret_reason = "Unix socket path must be absolute";
                        return -EINVAL;
                }
                if (strlen(path) >= sizeof un->sun_path) {
                        *ret_reason = "Unix socket path too long";
                        return -EINVAL;
                }
                un->sun_family = AF_UNIX;
                strscpy(un->sun_path, sizeof un->sun_path, path);
                a.family = AF_UNIX;
                a.salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
                *ret = a;
                return 0;
        }

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':' || (size_t) (close - s - 1) >= sizeof host) {
                        *ret_reason = "expected [IPv6]:port";
                        return -EINVAL;
                }
                memcpy(host, s + 1, (size_t) (close - s - 1));
                host[close - s - 1] = '\0';
                port_s = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon || (size_t) (colon - s) >= sizeof host) {
                        *ret_reason = "expected host:port";
                        return -EINVAL;
                }
                memcpy(host, s, (size_t) (colon - s));
                host[colon - s] = '\0';
                port_s = colon + 1;
        }
        if (parse_port(port_s, &port) < 0) {
                *ret_reason = "port must be a number from 0 to 65535";
                return -EINVAL;
        }

        if (streq(host, "*") || streq(host, "::")) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a.sa;
                in6->sin6_family = AF_INET6;
                in6->sin6_addr = in6addr_any;
                in6->sin6_port = htons((uint16_t) port);
                a.family = AF_INET6;
                a.salen = sizeof *in6;
        } else if (streq(host, "localhost") || strchr(host, ':') == NULL) {
                struct sockaddr_in *in = (struct sockaddr_in *) &a.sa;
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                if (streq(host, "localhost"))
                        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                else if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
                        *ret_reason = "host must be a numeric IP address, 'localhost' or '*'";
                        return -EINVAL;
                }
                a.family = AF_INET;
                a.salen = sizeof *in;
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a.sa;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
                        *ret_reason = "invalid IPv6 address";
                        return -EINVAL;
                }
                a.family = AF_INET6;
                a.salen = sizeof *in6;
        }
        *ret = a;
        return 0;
}

int listen_collect_activated(void) {
        char **names = NULL;
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0)
                return n;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (n_activated >= ACTIVATED_MAX) {
                        close(fd);
                        continue;
                }
                activated[n_activated].fd = fd;
                strscpy(activated[n_activated].name, sizeof activated[n_activated].name,
                        names && names[i] ? names[i] : "unknown");
                n_activated++;
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        strv_free(names);
        return n;
}

int listen_take_activated(const char *name) {
        for (size_t i = 0; i < n_activated; i++)
                if (activated[i].fd >= 0 && streq(activated[i].name, name)) {
                        int fd = activated[i].fd;
                        activated[i].fd = -EBADF;
                        int fl = fcntl(fd, F_GETFL);
                        if (fl >= 0)
                                (void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                        return fd;
                }
        return -ENOENT;
}

const char *const *listen_activated_leftovers(void) {
        static const char *left[ACTIVATED_MAX + 1];
        size_t k = 0;

        for (size_t i = 0; i < n_activated; i++)
                if (activated[i].fd >= 0)
                        left[k++] = activated[i].name;
        left[k] = NULL;
        return left;
}

int listen_bind(const ListenAddress *a, int backlog, unsigned mode) {
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (a->family == AF_UNIX) {
                const struct sockaddr_un *un = (const struct sockaddr_un *) &a->sa;
                struct stat st;
                /* Replace a stale socket left by a previous run, but never
                 * another kind of file. */
                if (lstat(un->sun_path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        (void) unlink(un->sun_path);
                }
        } else {
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (a->family == AF_INET6 &&
                    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) &a->sa)->sin6_addr)) {
                        /* "*" means IPv4 and IPv6, whatever net.ipv6.bindv6only says. */
                        int zero = 0;
                        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
                }
        }
        if (bind(fd, (const struct sockaddr *) &a->sa, a->salen) < 0)
                return -errno;
        if (a->family == AF_UNIX) {
                const struct sockaddr_un *un = (const struct sockaddr_un *) &a->sa;
                if (chmod(un->sun_path, mode) < 0)
                        return -errno;
        }
        if (listen(fd, backlog) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int listen_socket_describe(int fd, char *buf, size_t size, unsigned *ret_port) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        char host[INET6_ADDRSTRLEN];

        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        switch (sa.ss_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *) &sa;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
                snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
                *ret_port = ntohs(in->sin_port);
                return 0;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
                *ret_port = ntohs(in6->sin6_port);
                return 0;
        }
        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un *) &sa;
                snprintf(buf, size, "unix:%s", len > offsetof(struct sockaddr_un, sun_path) ? un->sun_path : "");
                *ret_port = 0;
                return 0;
        }
        default:
                return -EAFNOSUPPORT;
        }
}
