/*
 * loop: the single-threaded epoll event loop that owns all daemon state
 * (Redis's ae, reduced). File descriptors get a callback each; timers live in
 * a binary heap on the monotonic clock; a before-sleep hook runs once per
 * iteration (the HTTP glue uses it to run libmicrohttpd after resumes, the
 * log writer to flush). Only the loop thread may call these functions, except
 * loop_wake, which any thread may call.
 */
#ifndef IGNIS_CORE_LOOP_H
#define IGNIS_CORE_LOOP_H

#include <stdint.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(struct loop *loop, int fd, uint32_t events, void *arg);
typedef void (*loop_cb)(struct loop *loop, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* events are EPOLLIN/EPOLLOUT...; returns 0 or -errno. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *arg);
int loop_mod_fd(struct loop *loop, int fd, uint32_t events);
void loop_del_fd(struct loop *loop, int fd);

/* Fires once, after delay_ms. The loop owns the timer; it is freed after it
 * fires or when cancelled. */
struct loop_timer *loop_timer_add(struct loop *loop, int64_t delay_ms, loop_cb cb, void *arg);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);

/* Up to 8 hooks run before every sleep, in the order added. */
int loop_add_before_sleep(struct loop *loop, loop_cb cb, void *arg);

/* Queues cb to run on the loop thread; safe from any thread. */
int loop_post(struct loop *loop, loop_cb cb, void *arg);

void loop_run(struct loop *loop);
/* Runs what loop_post queued and nothing else (shutdown: completions of work
 * finished after the loop stopped still get their callback). */
void loop_run_posted(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
