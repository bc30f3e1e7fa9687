/* SPDX-License-Identifier: MIT */
/*
 * listen.h — listening sockets for the HTTP and LMTP services: parse
 * "host:port" / "[v6]:port" / "unix:PATH" addresses, take sockets handed
 * over by systemd socket activation (by FileDescriptorName=), or bind our
 * own.  Port 0 binds an ephemeral port; listen_socket_describe() tells which.
 *
 * Security: addresses come from the admin's config; the bound Unix socket
 * gets the mode the caller asks for.
 */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct ListenAddress {
        int family; /* AF_INET, AF_INET6, AF_UNIX */
        struct sockaddr_storage sa;
        socklen_t salen;
} ListenAddress;

/* Parse s.  A Unix path must be absolute (conf resolves relative ones).
 * Accepted hosts: numeric IPv4/IPv6, "localhost", "*" (all IPv4 and IPv6).
 * -EINVAL with a short reason in *ret_reason (static string). */
int listen_address_parse(const char *s, ListenAddress *ret, const char **ret_reason);

/* Systemd socket activation: the fds passed with their names.  Call once
 * at start, before anything else opens fds.  Returns the number of fds
 * received (>= 0) or -errno. */
int listen_collect_activated(void);

/* Take the activated fd named name (ownership moves to the caller), or
 * -ENOENT if systemd passed none by that name. */
int listen_take_activated(const char *name);

/* Names of activated fds nobody took (for a warning); NULL-terminated,
 * static storage. */
const char *const *listen_activated_leftovers(void);

/* Bind and listen on a; for AF_UNIX an existing socket file is replaced
 * and the new one gets mode.  Returns a non-blocking, close-on-exec fd or
 * -errno. */
int listen_bind(const ListenAddress *a, int backlog, unsigned mode);

/* "127.0.0.1:43123", "[::1]:8080", "unix:/run/x.sock" for a bound fd, into
 * buf; *ret_port gets the TCP port (0 for Unix).  Returns 0 or -errno. */
int listen_socket_describe(int fd, char *buf, size_t size, unsigned *ret_port);
