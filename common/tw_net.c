#include "tw_net.h"

#include <string.h>

bool tw_net_split_listen(const char *listen, char *host, size_t size, const char **port)
{
    const char *colon = strrchr(listen, ':');
    size_t len = colon ? (size_t)(colon - listen) : 0;
    if (len == 0 || len >= size)
        return false;
    if (len >= 2 && listen[0] == '[' && listen[len - 1] == ']') {
        memcpy(host, listen + 1, len - 2);
        host[len - 2] = '\0';
    } else {
        memcpy(host, listen, len);
        host[len] = '\0';
    }
    *port = colon + 1;
    return true;
}
