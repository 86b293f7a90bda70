/*
 * What the clients' tests share: a loopback server started as a child
 * process (fake_vendor.py, or s3rver through s3rver_launch.js) that prints
 * "PORT <n>" first, and small HTTP calls to its control endpoints. Every
 * helper fails the running test on an error; waits are bounded.
 */
#ifndef TW_VENDOR_FIXTURE_H
#define TW_VENDOR_FIXTURE_H

#include "s3.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct fx_server {
    pid_t pid;
    int port;
    int out_fd;        /* its standard output, kept open so it never gets SIGPIPE */
    char base_url[64]; /* http://127.0.0.1:<port> */
} fx_server;

/* Starts argv (argv[0] a path) and waits up to 20 s for its port. */
void fx_server_start(fx_server *s, char *const argv[]);
/* SIGTERM, then SIGKILL if it has not gone within 5 s. */
void fx_server_stop(fx_server *s);

/* fake_vendor.py serving tests/data/<vendor>, accepting key. */
void fx_fake_vendor_start(fx_server *s, const char *vendor, const char *key);

/* fake_stripe.py, accepting secret key key. */
void fx_fake_stripe_start(fx_server *s, const char *key);

/* s3rver (package.json) serving bucket from data_dir, through
 * s3rver_launch.js, which adds the multipart calls s3rver lacks. */
void fx_s3rver_start(fx_server *s, const char *data_dir, const char *bucket);

/* s3rver on a fresh temporary directory with bucket "tw-test", and a
 * client config for it (credentials S3RVER/S3RVER, quick retries). */
typedef struct fx_s3 {
    fx_server server;
    char dir[64];
    tw_s3_config cfg;
} fx_s3;
void fx_s3_start(fx_s3 *f);
/* Stops s3rver and removes its directory. */
void fx_s3_stop(fx_s3 *f);
/* How many incomplete multipart uploads s3rver holds on disk. */
int fx_s3_uploads_on_disk(const fx_s3 *f);

/* Queues fake_vendor script steps (a JSON array as text). */
void fx_fake_script(const fx_server *s, const char *steps_json);
/* Forgets the script and the recorded requests. */
void fx_fake_reset(const fx_server *s);
/* The requests fake_vendor received (a JSON array; json_decref it). */
json_t *fx_fake_requests(const fx_server *s);
/* Any control call (method, path such as "/_state", body or NULL); its
 * answer as JSON (json_decref it). */
json_t *fx_fake_control(const fx_server *s, const char *method, const char *path, const char *body);

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
int fx_closed_port(void);

#endif
