/*
 * loop: epoll event loop with fd callbacks, a timer heap, before-sleep hooks
 * and a cross-thread post queue woken through an eventfd (see loop.h). It owns
 * the epoll fd, the eventfd and its own bookkeeping, never the fds it watches.
 */
#include "core/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

struct fd_entry {
    loop_fd_cb cb;
    void *arg;
};

struct loop_timer {
    int64_t due_us;
    uint64_t seq; /* ties broken by insertion order */
    size_t index; /* position in the heap */
    loop_cb cb;
    void *arg;
};

struct posted {
    loop_cb cb;
    void *arg;
    struct posted *next;
};

struct loop {
    int epfd;
    int wakefd;
    int running;
    struct fd_entry *fds;
    int nfds;
    struct loop_timer **heap;
    size_t nheap, heap_alloc;
    uint64_t timer_seq;
    struct {
        loop_cb cb;
        void *arg;
    } hooks[8];
    int nhooks;
    pthread_mutex_t post_lock;
    struct posted *post_head, *post_tail;
};

/*=== Timer heap ===*/

static int timer_less(const struct loop_timer *a, const struct loop_timer *b)
{
    return a->due_us < b->due_us || (a->due_us == b->due_us && a->seq < b->seq);
}

static void heap_swap(struct loop *l, size_t i, size_t j)
{
    struct loop_timer *t = l->heap[i];
    l->heap[i] = l->heap[j];
    l->heap[j] = t;
    l->heap[i]->index = i;
    l->heap[j]->index = j;
}

static void heap_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_less(l->heap[i], l->heap[p]))
            break;
        heap_swap(l, i, p);
        i = p;
    }
}

static void heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && timer_less(l->heap[a], l->heap[m]))
            m = a;
        if (b < l->nheap && timer_less(l->heap[b], l->heap[m]))
            m = b;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_remove(struct loop *l, size_t i)
{
    l->nheap--;
    if (i != l->nheap) {
        l->heap[i] = l->heap[l->nheap];
        l->heap[i]->index = i;
        heap_down(l, i);
        heap_up(l, i);
    }
}

struct loop_timer *loop_timer_add(struct loop *l, int64_t delay_ms, loop_cb cb, void *arg)
{
    if (l->nheap == l->heap_alloc) {
        size_t n = l->heap_alloc ? l->heap_alloc * 2 : 64;
        struct loop_timer **h = realloc(l->heap, n * sizeof(*h));
        if (!h)
            return NULL;
        l->heap = h;
        l->heap_alloc = n;
    }
    struct loop_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->due_us = mono_us() + delay_ms * 1000;
    t->seq = l->timer_seq++;
    t->cb = cb;
    t->arg = arg;
    t->index = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->index);
    return t;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    if (!t)
        return;
    heap_remove(l, t->index);
    free(t);
}

/*=== File descriptors ===*/

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
    if (fd >= l->nfds) {
        int n = l->nfds ? l->nfds : 256;
        while (n <= fd)
            n *= 2;
        struct fd_entry *f = realloc(l->fds, (size_t)n * sizeof(*f));
        if (!f)
            return -ENOMEM;
        memset(f + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*f));
        l->fds = f;
        l->nfds = n;
    }
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    l->fds[fd].cb = cb;
    l->fds[fd].arg = arg;
    return 0;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_del_fd(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->nfds || !l->fds[fd].cb)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->fds[fd].cb = NULL;
    l->fds[fd].arg = NULL;
}

/*=== Cross-thread posts ===*/

int loop_post(struct loop *l, loop_cb cb, void *arg)
{
    struct posted *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->cb = cb;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&l->post_lock);
    if (l->post_tail)
        l->post_tail->next = p;
    else
        l->post_head = p;
    l->post_tail = p;
    pthread_mutex_unlock(&l->post_lock);
    uint64_t one = 1;
    ssize_t w = write(l->wakefd, &one, sizeof(one));
    (void)w; /* EAGAIN means a wake-up is already pending */
    return 0;
}

static void run_posted(struct loop *l, int fd, uint32_t events, void *arg)
{
    (void)events;
    (void)arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&l->post_lock);
    struct posted *p = l->post_head;
    l->post_head = l->post_tail = NULL;
    pthread_mutex_unlock(&l->post_lock);
    while (p) {
        struct posted *next = p->next;
        p->cb(l, p->arg);
        free(p);
        p = next;
    }
}

void loop_run_posted(struct loop *l)
{
    run_posted(l, l->wakefd, EPOLLIN, NULL);
}

/*=== Lifecycle ===*/

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    pthread_mutex_init(&l->post_lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->wakefd < 0) {
        log_error("epoll_create1/eventfd: %s", strerror(errno));
        loop_free(l);
        return NULL;
    }
    if (loop_add_fd(l, l->wakefd, EPOLLIN, run_posted, NULL) < 0) {
        loop_free(l);
        return NULL;
    }
    return l;
}

int loop_add_before_sleep(struct loop *l, loop_cb cb, void *arg)
{
    if (l->nhooks == 8)
        return -ENOSPC;
    l->hooks[l->nhooks].cb = cb;
    l->hooks[l->nhooks].arg = arg;
    l->nhooks++;
    return 0;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nheap; i++)
        free(l->heap[i]);
    free(l->heap);
    struct posted *p = l->post_head;
    while (p) {
        struct posted *next = p->next;
        free(p);
        p = next;
    }
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    free(l->fds);
    pthread_mutex_destroy(&l->post_lock);
    free(l);
}

void loop_stop(struct loop *l)
{
    l->running = 0;
}

static void run_due_timers(struct loop *l)
{
    int64_t now = mono_us();
    while (l->nheap > 0 && l->heap[0]->due_us <= now) {
        struct loop_timer *t = l->heap[0];
        heap_remove(l, 0);
        t->cb(l, t->arg);
        free(t);
    }
}

void loop_run(struct loop *l)
{
    struct epoll_event events[256];
    l->running = 1;
    while (l->running) {
        for (int i = 0; i < l->nhooks; i++)
            l->hooks[i].cb(l, l->hooks[i].arg);
        int timeout = -1;
        if (l->nheap > 0) {
            int64_t wait_us = l->heap[0]->due_us - mono_us();
            timeout = wait_us <= 0 ? 0 : (int)((wait_us + 999) / 1000);
        }
        int n = epoll_wait(l->epfd, events, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd < l->nfds && l->fds[fd].cb)
                l->fds[fd].cb(l, fd, events[i].events, l->fds[fd].arg);
        }
        run_due_timers(l);
    }
}
