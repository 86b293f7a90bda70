/* The wrappers of alloc_fail.h: each --wrap=f makes our objects call
 * __wrap_f, which asks should_fail() and otherwise calls the real f. */
#include "alloc_fail.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static atomic_bool armed;
static atomic_uint_fast64_t counted;
static atomic_bool fired;
/* Set while disarmed, read by allocating threads once they see armed. */
static _Atomic uint64_t fail_at;
static _Atomic alloc_scope scope;
static _Atomic(pthread_t) armer;

void alloc_fail_arm(uint64_t n, alloc_scope s)
{
    atomic_store(&armed, false);
    fail_at = n;
    scope = s;
    armer = pthread_self();
    atomic_store(&counted, 0);
    atomic_store(&fired, false);
    atomic_store(&armed, true); /* publishes the settings above */
}

uint64_t alloc_fail_disarm(void)
{
    atomic_store(&armed, false);
    return atomic_load(&counted);
}

uint64_t alloc_count(void)
{
    return atomic_load(&counted);
}

bool alloc_fail_fired(void)
{
    return atomic_load(&fired);
}

/* Counts this allocation when armed and in scope; true when it must fail. */
static bool should_fail(void)
{
    if (!atomic_load(&armed))
        return false;
    bool mine = pthread_equal(pthread_self(), armer) != 0;
    if (mine != (scope == ALLOC_THIS_THREAD))
        return false;
    uint64_t n = atomic_fetch_add(&counted, 1) + 1;
    if (n != fail_at)
        return false;
    atomic_store(&fired, true);
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return should_fail() ? NULL : __real_strndup(s, n);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    return should_fail() ? -1 : __real_vasprintf(out, fmt, ap);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
    if (should_fail())
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = __real_vasprintf(out, fmt, ap);
    va_end(ap);
    return n;
}
