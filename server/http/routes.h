/*
 * twd's HTTP routes (http_server.h): one table, one row per endpoint. The
 * handlers get the tw_app as ctx. Add an endpoint by adding a row to
 * tw_httpd_routes in routes.c and its handler beside the others.
 */
#ifndef TW_HTTP_ROUTES_H
#define TW_HTTP_ROUTES_H

#include "http_server.h"

extern const tw_httpd_route tw_httpd_routes[];

/* health_pages.c */
void tw_httpd_health(void *app, const tw_httpd_request *req, tw_httpd_response *res);
void tw_httpd_health_db(void *app, const tw_httpd_request *req, tw_httpd_response *res);
void tw_httpd_health_detailed(void *app, const tw_httpd_request *req, tw_httpd_response *res);
/* stripe_webhook_page.c */
void tw_httpd_stripe_webhook(void *app, const tw_httpd_request *req, tw_httpd_response *res);
/* metrics_page.c */
void tw_httpd_metrics(void *app, const tw_httpd_request *req, tw_httpd_response *res);

#endif
