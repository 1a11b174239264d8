/*
 * test_http: the streaming parts of src/edge/http.c against a real client
 * (libcurl in a thread; the server runs on the loop in the test's thread):
 * streamed request bodies with a sink, backpressure (pause/resume), chunked
 * trailers, an answer given before the body, answers streamed over time
 * (the client sees the first piece before the producer ends), a producer
 * cut with an error, a client that leaves mid-stream, and file ranges.
 */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/util.h"
#include "edge/http.h"

/*=== the server side ===*/

struct fixture {
    struct loop *loop;
    struct http_server *srv;
    int port;
    /* what the handlers saw */
    size_t body_bytes;
    int pieces;
    int pauses;
    char trailer[64];
    int gone;
    struct http_req *producing; /* a streamed answer in progress */
    int writes_left;
};

static struct fixture fx;

static int count_sink(struct http_req *req, const char *data, size_t len, void *arg)
{
    (void)arg;
    if (!data) {
        const char *t = http_req_trailer(req, "X-Check");
        snprintf(fx.trailer, sizeof(fx.trailer), "%s", t ? t : "");
        char answer[64];
        int n = snprintf(answer, sizeof(answer), "%zu", fx.body_bytes);
        http_reply(req, 200, "text/plain", answer, (size_t)n);
        return 0;
    }
    fx.body_bytes += len;
    fx.pieces++;
    return 0;
}

static void resume_later(struct loop *loop, void *arg)
{
    (void)loop;
    http_req_resume_body(arg);
}

static int pausing_sink(struct http_req *req, const char *data, size_t len, void *arg)
{
    if (data && fx.pauses < 3) {
        fx.pauses++;
        http_req_pause_body(req);
        loop_timer_add(fx.loop, 20, resume_later, req);
    }
    return count_sink(req, data, len, arg);
}

static int refusing_sink(struct http_req *req, const char *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    (void)arg;
    static const char no[] = "refused";
    http_reply(req, 400, "text/plain", no, sizeof(no) - 1);
    return -1;
}

static void produce(struct loop *loop, void *arg)
{
    (void)arg;
    struct http_req *req = fx.producing;
    if (!req)
        return; /* the client left */
    if (fx.writes_left-- > 0) {
        char piece[32];
        int n = snprintf(piece, sizeof(piece), "piece%d;", fx.writes_left);
        http_stream_write(req, piece, (size_t)n);
        loop_timer_add(loop, 30, produce, NULL);
        return;
    }
    fx.producing = NULL;
    http_stream_end(req, 0);
}

static void on_gone(struct http_req *req, void *arg)
{
    (void)arg;
    if (req == fx.producing)
        fx.producing = NULL;
    fx.gone++;
}

static size_t body_cap(struct http_req *req, void *arg)
{
    (void)arg;
    if (str_has_prefix(http_req_path(req), "/in/"))
        http_req_stream(req);
    return 1024;
}

static void handler(struct http_req *req, void *arg)
{
    (void)arg;
    const char *path = http_req_path(req);
    if (str_has_prefix(path, "/in/")) {
        fx.body_bytes = 0;
        fx.pieces = 0;
    }
    if (strcmp(path, "/in/count") == 0) {
        http_req_read_body(req, count_sink, NULL);
    } else if (strcmp(path, "/in/pause") == 0) {
        http_req_read_body(req, pausing_sink, NULL);
    } else if (strcmp(path, "/in/refuse") == 0) {
        http_req_read_body(req, refusing_sink, NULL);
    } else if (strcmp(path, "/in/early") == 0) {
        static const char no[] = "early";
        http_reply(req, 403, "text/plain", no, sizeof(no) - 1);
    } else if (strcmp(path, "/out/slow") == 0 || strcmp(path, "/out/cut") == 0) {
        http_req_add_header(req, "X-Kind", "stream");
        http_reply_stream(req, 201, "text/plain");
        http_req_on_gone(req, on_gone, NULL);
        http_stream_write(req, "first;", 6);
        fx.producing = req;
        fx.writes_left = 3;
        if (strcmp(path, "/out/cut") == 0) {
            fx.producing = NULL;
            http_stream_end(req, 1);
        } else {
            loop_timer_add(fx.loop, 30, produce, NULL);
        }
    } else if (strcmp(path, "/out/forever") == 0) {
        http_reply_stream(req, 200, "text/plain");
        http_req_on_gone(req, on_gone, NULL);
        http_stream_write(req, "tick;", 5);
        fx.producing = req;
        fx.writes_left = 1000000;
        loop_timer_add(fx.loop, 5, produce, NULL);
    } else if (strcmp(path, "/query") == 0) {
        const char *a = http_req_query(req, "uploads"), *b = http_req_query(req, "x");
        const char *c = http_req_query(req, "missing");
        char answer[128];
        int n = snprintf(answer, sizeof(answer), "[%s][%s][%s]", a ? a : "NULL", b ? b : "NULL",
                         c ? c : "NULL");
        http_reply(req, 200, "text/plain", answer, (size_t)n);
    } else if (strcmp(path, "/file") == 0) {
        FILE *f = tmpfile();
        fputs("0123456789", f);
        fflush(f);
        http_reply_fd_at(req, 206, "text/plain", dup(fileno(f)), 3, 4);
        fclose(f);
    } else {
        size_t len;
        const char *body = http_req_body(req, &len);
        http_reply(req, 200, "text/plain", body, len);
    }
}

/*=== the client side (a thread) ===*/

struct call {
    const char *method, *path;
    const char *body;
    size_t body_len;
    int chunked;
    const char *trailer; /* sent as X-Check when chunked */
    long abort_after;    /* stop reading after this many bytes (0: never) */
    int expect_continue; /* send "Expect: 100-continue", as clients of large uploads do */
    /* results */
    long status;
    struct buf got;
    double first_byte_s, total_s;
    int curl_rc;
    size_t sent;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct call *c = arg;
    buf_append(&c->got, ptr, size * nmemb);
    if (c->abort_after && (long)c->got.len >= c->abort_after)
        return 0;
    return size * nmemb;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg)
{
    struct call *c = arg;
    size_t n = size * nmemb, left = c->body_len - c->sent;
    if (n > left)
        n = left;
    if (n > 7000)
        n = 7000; /* many pieces */
    memcpy(dst, c->body + c->sent, n);
    c->sent += n;
    return n;
}

static int on_trailer(struct curl_slist **list, void *arg)
{
    struct call *c = arg;
    char line[128];
    snprintf(line, sizeof(line), "X-Check: %s", c->trailer);
    *list = curl_slist_append(*list, line);
    return CURL_TRAILERFUNC_OK;
}

static void do_call(struct call *c)
{
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx.port, c->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    struct curl_slist *hdrs = NULL;
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, c);
        if (c->chunked) {
            hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
            if (c->trailer) {
                curl_easy_setopt(h, CURLOPT_TRAILERFUNCTION, on_trailer);
                curl_easy_setopt(h, CURLOPT_TRAILERDATA, c);
            }
        } else {
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
        }
        hdrs = curl_slist_append(hdrs, c->expect_continue ? "Expect: 100-continue" : "Expect:");
        if (c->expect_continue) /* wait for the 100 (or the early answer) however long */
            curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 20000L);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    c->curl_rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME, &c->first_byte_s);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &c->total_s);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

struct batch {
    struct call *calls;
    int n;
};

static void stop_loop(struct loop *loop, void *arg)
{
    (void)arg;
    loop_stop(loop);
}

static void *client_thread(void *arg)
{
    struct batch *b = arg;
    for (int i = 0; i < b->n; i++)
        do_call(&b->calls[i]);
    loop_post(fx.loop, stop_loop, NULL);
    return NULL;
}

static void watchdog(struct loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    fail_msg("the loop is stuck");
}

static void run_calls(struct call *calls, int n)
{
    struct batch b = {calls, n};
    pthread_t t;
    struct loop_timer *wd = loop_timer_add(fx.loop, 30000, watchdog, NULL);
    assert_int_equal(pthread_create(&t, NULL, client_thread, &b), 0);
    loop_run(fx.loop);
    pthread_join(t, NULL);
    loop_timer_cancel(fx.loop, wd);
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = loop_new();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    fx.port = ntohs(sa.sin_port);
    struct http_server_opts opts = {
        .listen_fd = fd, .handler = handler, .body_cap = body_cap, .idle_timeout_s = 10};
    fx.srv = http_server_new(fx.loop, &opts);
    assert_non_null(fx.srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_server_free(fx.srv);
    loop_run_posted(fx.loop);
    loop_free(fx.loop);
    return 0;
}

static char *pattern(size_t n)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 26);
    return p;
}

/*=== tests ===*/

/* A body far over the whole-body cap reaches the sink in pieces; the answer
 * comes after the end; a keep-alive request after it still works. */
static void test_streamed_body(void **state)
{
    (void)state;
    size_t n = 3 * 1024 * 1024 + 17;
    char *body = pattern(n);
    struct call c[2] = {{.method = "PUT", .path = "/in/count", .body = body, .body_len = n},
                        {.method = "POST", .path = "/plain", .body = "hi", .body_len = 2}};
    run_calls(c, 2);
    assert_int_equal(c[0].status, 200);
    assert_string_equal(c[0].got.data, "3145745");
    assert_true(fx.pieces > 1);
    assert_int_equal(c[1].status, 200);
    assert_string_equal(c[1].got.data, "hi");
    buf_release(&c[0].got);
    buf_release(&c[1].got);
    free(body);
}

static void test_chunked_body_with_trailer(void **state)
{
    (void)state;
    size_t n = 200000;
    char *body = pattern(n);
    struct call c = {.method = "POST",
                     .path = "/in/count",
                     .body = body,
                     .body_len = n,
                     .chunked = 1,
                     .trailer = "end-ok"};
    run_calls(&c, 1);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.got.data, "200000");
    assert_string_equal(fx.trailer, "end-ok");
    buf_release(&c.got);
    free(body);
}

static void test_paused_body_resumes(void **state)
{
    (void)state;
    size_t n = 1024 * 1024;
    char *body = pattern(n);
    struct call c = {.method = "PUT", .path = "/in/pause", .body = body, .body_len = n};
    run_calls(&c, 1);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.got.data, "1048576");
    assert_int_equal(fx.pauses, 3);
    buf_release(&c.got);
    free(body);
}

/* Answers before the body (at the headers) and from a sink mid-body. */
static void test_early_answers(void **state)
{
    (void)state;
    size_t n = 2 * 1024 * 1024;
    char *body = pattern(n);
    /* The answer at the headers goes to a client that waits for "100 Continue" first: one
     * that sends its body regardless may see the connection reset (the server closes with the
     * unread body in its buffer) before it reads the answer, a race of TCP's, not ours. */
    struct call c[3] = {
        {.method = "PUT", .path = "/in/early", .body = body, .body_len = n, .expect_continue = 1},
        {.method = "PUT", .path = "/in/refuse", .body = body, .body_len = n},
        {.method = "GET", .path = "/plain"}};
    run_calls(c, 3);
    assert_int_equal(c[0].status, 403);
    assert_string_equal(c[0].got.data, "early");
    assert_int_equal(c[1].status, 400);
    assert_string_equal(c[1].got.data, "refused");
    assert_int_equal(c[2].status, 200);
    for (int i = 0; i < 3; i++)
        buf_release(&c[i].got);
    free(body);
}

/* The first piece reaches the client long before the producer ends. */
static void test_streamed_answer(void **state)
{
    (void)state;
    struct call c[2] = {{.method = "GET", .path = "/out/slow"}, {.method = "GET", .path = "/x"}};
    run_calls(c, 2);
    assert_int_equal(c[0].curl_rc, CURLE_OK);
    assert_int_equal(c[0].status, 201);
    assert_string_equal(c[0].got.data, "first;piece2;piece1;piece0;");
    assert_true(c[0].total_s - c[0].first_byte_s > 0.05);
    assert_int_equal(c[1].status, 200);
    buf_release(&c[0].got);
    buf_release(&c[1].got);
}

static void test_cut_stream_is_an_error(void **state)
{
    (void)state;
    struct call c = {.method = "GET", .path = "/out/cut"};
    run_calls(&c, 1);
    assert_int_equal(c.status, 201);
    assert_int_not_equal(c.curl_rc, CURLE_OK);
    buf_release(&c.got);
}

/* A client that leaves mid-stream is reported; the server goes on serving. */
static void test_client_gone(void **state)
{
    (void)state;
    struct call c[2] = {{.method = "GET", .path = "/out/forever", .abort_after = 40},
                        {.method = "GET", .path = "/after"}};
    run_calls(c, 2);
    assert_int_equal(c[0].curl_rc, CURLE_WRITE_ERROR);
    assert_int_equal(c[1].status, 200);
    /* the producer learns it on its next write: run the loop a little */
    for (int i = 0; i < 50 && !fx.gone; i++) {
        loop_timer_add(fx.loop, 10, stop_loop, NULL);
        loop_run(fx.loop);
    }
    assert_int_equal(fx.gone, 1);
    assert_null(fx.producing);
    buf_release(&c[0].got);
    buf_release(&c[1].got);
}

/* "?k" is a present key with an empty value, not an absent one (S3's ?uploads). */
static void test_query_without_value(void **state)
{
    (void)state;
    struct call c = {.method = "GET", .path = "/query?uploads&x=a%20b"};
    run_calls(&c, 1);
    assert_string_equal(c.got.data, "[][a b][NULL]");
    buf_release(&c.got);
}

static void test_file_range(void **state)
{
    (void)state;
    struct call c = {.method = "GET", .path = "/file"};
    run_calls(&c, 1);
    assert_int_equal(c.status, 206);
    assert_string_equal(c.got.data, "3456");
    buf_release(&c.got);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as serve.c: http.h requires it */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streamed_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body_with_trailer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_body_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_stream_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_without_value, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
