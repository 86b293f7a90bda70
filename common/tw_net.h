/*
 * Listen addresses as configured ("host:port", "[v6]:port"), split the same
 * way wherever twd binds one, checks that it is free or asks whether it is
 * a loopback address.
 */
#ifndef TW_NET_H
#define TW_NET_H

#include <stdbool.h>
#include <stddef.h>

/* The host of listen, without an IPv6 literal's brackets, into host (size
 * bytes), and *port, the text after the last colon (pointing into listen,
 * borrowed). False when listen has no colon, an empty host, or a host that
 * does not fit. */
bool tw_net_split_listen(const char *listen, char *host, size_t size, const char **port);

#endif
