/* Child-process servers and control calls for the clients' tests. */
#include "vendor_fixture.h"

#include "tw_check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS  5000

extern char **environ;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fx_server_start(fx_server *s, char *const argv[])
{
    memset(s, 0, sizeof *s);
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, out[1]);
    int rc = posix_spawn(&s->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    ck_assert_msg(rc == 0, "cannot start %s: %s", argv[0], strerror(rc));

    /* Read the first line, "PORT <n>", within the time limit. */
    char line[128];
    size_t len = 0;
    long deadline = now_ms() + START_TIMEOUT_MS;
    while (len < sizeof line - 1 && memchr(line, '\n', len) == NULL) {
        long left = deadline - now_ms();
        ck_assert_msg(left > 0, "%s printed no port within %d ms", argv[0], START_TIMEOUT_MS);
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        ck_assert_msg(n > 0, "%s exited before printing its port", argv[0]);
        len += (size_t)n;
    }
    line[len] = '\0';
    s->out_fd = out[0];
    ck_assert_msg(sscanf(line, "PORT %d", &s->port) == 1, "unexpected first line: %s", line);
    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->port);
}

void fx_server_stop(fx_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    long deadline = now_ms() + STOP_TIMEOUT_MS;
    int status;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    s->pid = 0;
    close(s->out_fd);
}

void fx_fake_vendor_start(fx_server *s, const char *vendor, const char *key)
{
    char data[1024], key_arg[256];
    snprintf(data, sizeof data, "%s/%s", TW_TEST_DATA, vendor);
    snprintf(key_arg, sizeof key_arg, "%s", key);
    char *argv[] = {"/usr/bin/python3", TW_FAKE_VENDOR, "--data", data, "--key", key_arg, NULL};
    fx_server_start(s, argv);
}

void fx_fake_stripe_start(fx_server *s, const char *key)
{
    char key_arg[256];
    snprintf(key_arg, sizeof key_arg, "%s", key);
    char *argv[] = {"/usr/bin/python3", TW_FAKE_STRIPE, "--key", key_arg, NULL};
    fx_server_start(s, argv);
}

void fx_s3rver_start(fx_server *s, const char *data_dir, const char *bucket)
{
    char dir[1024], name[128];
    snprintf(dir, sizeof dir, "%s", data_dir);
    snprintf(name, sizeof name, "%s", bucket);
    char *argv[] = {TW_NODE, TW_S3RVER_LAUNCH, TW_NODE_MODULES, dir, name, NULL};
    fx_server_start(s, argv);
}

void fx_s3_start(fx_s3 *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tw-s3rver-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    fx_s3rver_start(&f->server, f->dir, "tw-test");
    f->cfg = (tw_s3_config){
        .endpoint = f->server.base_url,
        .region = "us-east-1",
        .bucket = "tw-test",
        .access_key_id = "S3RVER",
        .secret_access_key = "S3RVER",
        .policy = {.connect_timeout_ms = 2000,
                   .timeout_ms = 20000,
                   .max_attempts = 3,
                   .backoff_base_ms = 1,
                   .backoff_max_ms = 5},
    };
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void fx_s3_stop(fx_s3 *f)
{
    fx_server_stop(&f->server);
    if (f->dir[0] != '\0')
        nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    f->dir[0] = '\0';
}

int fx_s3_uploads_on_disk(const fx_s3 *f)
{
    char path[256];
    snprintf(path, sizeof path, "%s/tw-test/._S3rver_uploads", f->dir);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct got {
    char *data;
    size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    struct got *g = ctx;
    char *grown = realloc(g->data, g->len + size * n + 1);
    ck_assert_ptr_nonnull(grown);
    g->data = grown;
    memcpy(g->data + g->len, p, size * n);
    g->len += size * n;
    g->data[g->len] = '\0';
    return size * n;
}

/* A control call; returns the body (malloc'd). */
static char *control(const fx_server *s, const char *method, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    struct got g = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &g);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    ck_assert_msg(rc == CURLE_OK && status < 300, "%s %s: %s, HTTP %ld", method, path,
                  curl_easy_strerror(rc), status);
    return g.data;
}

void fx_fake_script(const fx_server *s, const char *steps_json)
{
    free(control(s, "POST", "/_script", steps_json));
}

void fx_fake_reset(const fx_server *s)
{
    free(control(s, "POST", "/_reset", ""));
}

json_t *fx_fake_control(const fx_server *s, const char *method, const char *path, const char *body)
{
    char *text = control(s, method, path, body);
    json_t *answer = json_loads(text ? text : "", 0, NULL);
    free(text);
    ck_assert_msg(answer != NULL, "%s %s: the answer is not JSON", method, path);
    return answer;
}

json_t *fx_fake_requests(const fx_server *s)
{
    json_t *list = fx_fake_control(s, "GET", "/_requests", NULL);
    ck_assert(json_is_array(list));
    return list;
}

int fx_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}
