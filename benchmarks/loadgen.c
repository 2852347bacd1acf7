/*
 * The benchmark's load generator: Gearman clients and workers in C, cheap
 * enough that the job server, not the load, sets the pace.
 *
 *   loadgen MODE --port PORT [options]
 *
 * Modes (each checks every result it gets; a wrong or missing one is an
 * error, exit status 1, with the reason on stderr):
 *
 *   submit      --clients N connections each pipelining --jobs background
 *               jobs (SUBMIT_JOB_BG) of --size bytes, --window at a time
 *               (the next window once all of one is answered).  Every
 *               submission must get a JOB_CREATED, every handle new.
 *               With --unique 1 each job (here and in drain) has its own
 *               unique key, its number: gearmand's libpq, MySQL and redis
 *               queues key their rows by unique key and function, so they
 *               cannot store two jobs with the empty one.
 *   drain       first (unmeasured) queues --jobs background jobs, each with
 *               its own number in its data; then --workers connections
 *               GRAB_JOB_UNIQ / WORK_COMPLETE until NO_JOB.  Every job
 *               must be handed out exactly once with its data intact.
 *   foreground  --clients synchronous clients, each running --jobs
 *               SUBMIT_JOB of --size bytes one after another, and
 *               --workers echo workers on the GRAB_JOB_UNIQ / PRE_SLEEP /
 *               NOOP cycle.  Each result must be the job's own data.
 *   libgearman  the same clients, and --workers threads each running
 *               libgearman's gearman_worker_work() loop (GRAB_JOB_ALL,
 *               PRE_SLEEP) with an echo function: what PHP and the
 *               gearman command-line tool do.
 *
 * Everything but the libgearman workers runs in one thread: one epoll loop
 * over non-blocking sockets, one recv per readiness, the replies to what
 * one recv brought gathered into one send.
 *
 * It talks to whoever starts it over stdin/stdout: once connected (workers
 * registered, drain's jobs queued) it prints "ready", waits for
 * a line on stdin, runs, and prints one line
 *
 *   result jobs=N seconds=S user=U system=Y p50_ms=A p99_ms=B
 *
 * where seconds is the measured wall time and user/system its own CPU
 * seconds (all threads) over that time only.  --timeout bounds the whole
 * run.  --corrupt K is the generator's self-test, a fault the run must
 * then catch: the workers return a wrong result for the K-th job they
 * complete (drain: job K is queued with job K-1's number; submit: the K-th
 * handle counts as the one before it).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libgearman-1.0/gearman.h>

/* The packet types used here. */
enum {
    CAN_DO = 1, PRE_SLEEP = 4, NOOP = 6, SUBMIT_JOB = 7, JOB_CREATED = 8,
    NO_JOB = 10, WORK_COMPLETE = 13, ECHO_REQ = 16, ECHO_RES = 17,
    SUBMIT_JOB_BG = 18, ERROR = 19, GRAB_JOB_UNIQ = 30, JOB_ASSIGN_UNIQ = 31,
};

enum role { CLIENT, WORKER, SUBMITTER, DRAINER };

#define HEADER 12
#define READ_SIZE 65536
/* Each job's data starts with its identity, fixed width: "%c%08x:%08x:". */
#define TAG 19
#define FILL 'y'
/* --unique: each background job's unique key is its number, "%016llx". */
#define UNIQUE 16

struct conn {
    int fd;
    enum role role;
    int id;
    int synced;       /* its ECHO_RES has come back */
    int finished;     /* nothing more to do or to expect */
    int writing;      /* EPOLLOUT is on */
    unsigned char *in;
    size_t inlen, incap;
    unsigned char *out;
    size_t outoff, outlen, outcap;
    /* CLIENT */
    uint64_t done;
    int waiting;      /* 0 idle, 1 for JOB_CREATED, 2 for WORK_COMPLETE */
    double began;
    unsigned char *data;
    char handle[128];
    size_t handlelen;
    /* WORKER */
    int grabbing, woken;
    /* SUBMITTER */
    uint64_t sent, created, total, first;
};

/* Options. */
static const char *mode;
static int port;
static const char *function = "bench";
static size_t functionlen;
static int clients = 1, workers = 1;
static uint64_t jobs = 1000;
static size_t size = 100;
static uint64_t window = 500;
static double timeout = 300;
static uint64_t corrupt;
static int unique;

/* State. */
static int epfd;
static struct conn *conns;
static int nconns;
static double deadline;
static uint64_t completed;            /* results checked (clients), or jobs drained */
static uint64_t expected;             /* what completed must reach */
static double *latencies;
static unsigned char *seen;           /* drain: one byte per job number */
static uint64_t *handles;             /* submit: a set of handle hashes */
static uint64_t handlemask;
static atomic_uint_fast64_t workedOn; /* jobs the workers have completed */
static char failure[512];
static atomic_int failed;

static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cpu(double *user, double *system) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    *user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
    *system = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

static int connectTo(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Output buffers: packets are appended, then flushed once per read. */

static unsigned char *reserve(struct conn *c, size_t n) {
    if (c->outoff && c->outoff == c->outlen) c->outoff = c->outlen = 0;
    if (c->outlen + n > c->outcap) {
        if (c->outoff) {
            memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
            c->outlen -= c->outoff;
            c->outoff = 0;
        }
        if (c->outlen + n > c->outcap) {
            c->outcap = (c->outlen + n) * 2;
            c->out = realloc(c->out, c->outcap);
            if (!c->out) die("out of memory");
        }
    }
    unsigned char *p = c->out + c->outlen;
    c->outlen += n;
    return p;
}

static unsigned char *header(unsigned char *p, uint32_t type, uint32_t len) {
    memcpy(p, "\0REQ", 4);
    uint32_t t = htonl(type), l = htonl(len);
    memcpy(p + 4, &t, 4);
    memcpy(p + 8, &l, 4);
    return p + HEADER;
}

/* A packet of up to three arguments (the last is raw data). */
static void append(struct conn *c, uint32_t type, int nargs, const void *a, size_t alen,
                   const void *b, size_t blen, const void *d, size_t dlen) {
    size_t len = alen + blen + dlen + (nargs > 1 ? nargs - 1 : 0);
    unsigned char *p = header(reserve(c, HEADER + len), type, len);
    if (nargs >= 1) { memcpy(p, a, alen); p += alen; }
    if (nargs >= 2) { *p++ = 0; memcpy(p, b, blen); p += blen; }
    if (nargs >= 3) { *p++ = 0; memcpy(p, d, dlen); }
}

static void watch(struct conn *c, int writing) {
    struct epoll_event ev = {.events = EPOLLIN | (writing ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    c->writing = writing;
}

static void flush(struct conn *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->writing) watch(c, 1);
                return;
            }
            if (errno == EINTR) continue;
            die("send: %s", strerror(errno));
        }
        c->outoff += n;
    }
    c->outoff = c->outlen = 0;
    if (c->writing) watch(c, 0);
}

/* Job data: an identity, then filler; the same function makes and checks it. */

static void tag(unsigned char *data, char kind, uint32_t a, uint32_t b) {
    static const char hex[] = "0123456789abcdef";
    data[0] = kind;
    for (int i = 0; i < 8; i++) {
        data[1 + i] = hex[(a >> (28 - 4 * i)) & 15];
        data[10 + i] = hex[(b >> (28 - 4 * i)) & 15];
    }
    data[9] = data[18] = ':';
}

static unsigned char *makeData(char kind, uint32_t a, uint32_t b) {
    unsigned char *data = xmalloc(size);
    memset(data, FILL, size);
    tag(data, kind, a, b);
    return data;
}

/* Clients. */

static void submitNext(struct conn *c) {
    tag(c->data, 'f', (uint32_t)c->id, (uint32_t)c->done);
    append(c, SUBMIT_JOB, 3, function, functionlen, "", 0, c->data, size);
    c->waiting = 1;
    c->began = now();
}

static void clientPacket(struct conn *c, uint32_t type, unsigned char *p, size_t len) {
    if (type == JOB_CREATED && c->waiting == 1) {
        if (len == 0 || len > sizeof c->handle) die("client %d: bad JOB_CREATED", c->id);
        memcpy(c->handle, p, len);
        c->handlelen = len;
        c->waiting = 2;
        return;
    }
    if (type == WORK_COMPLETE && c->waiting == 2) {
        if (len < c->handlelen + 1 || memcmp(p, c->handle, c->handlelen) || p[c->handlelen])
            die("client %d job %llu: WORK_COMPLETE for another handle", c->id, (unsigned long long)c->done);
        if (len - c->handlelen - 1 != size || memcmp(p + c->handlelen + 1, c->data, size))
            die("client %d job %llu: wrong result (%zu bytes, %zu sent)", c->id,
                (unsigned long long)c->done, len - c->handlelen - 1, size);
        latencies[completed++] = now() - c->began;
        c->waiting = 0;
        if (++c->done < jobs) submitNext(c);
        else c->finished = 1;
        return;
    }
    die("client %d job %llu: unexpected packet type %u (%zu bytes) while waiting for %s", c->id,
        (unsigned long long)c->done, type, len, c->waiting == 1 ? "JOB_CREATED" : "WORK_COMPLETE");
}

/* Raw echo workers: GRAB_JOB_UNIQ, PRE_SLEEP and NOOP, like python-gearman's. */

static void grab(struct conn *c) {
    append(c, GRAB_JOB_UNIQ, 0, NULL, 0, NULL, 0, NULL, 0);
    c->grabbing = 1;
}

/* JOB_ASSIGN_UNIQ: handle, function, unique, data. */
static size_t splitAssign(struct conn *c, unsigned char *p, size_t len, size_t *handlelen) {
    unsigned char *end = p + len, *q = p;
    unsigned char *fields[3];
    for (int i = 0; i < 3; i++) {
        unsigned char *z = memchr(q, 0, end - q);
        if (!z) die("worker %d: JOB_ASSIGN_UNIQ with too few arguments", c->id);
        fields[i] = z;
        q = z + 1;
    }
    *handlelen = fields[0] - p;
    if ((size_t)(fields[1] - fields[0] - 1) != functionlen || memcmp(fields[0] + 1, function, functionlen))
        die("worker %d: job for another function", c->id);
    return q - p;
}

static void workerPacket(struct conn *c, uint32_t type, unsigned char *p, size_t len) {
    switch (type) {
    case NOOP:
        if (c->grabbing) c->woken = 1;
        else grab(c);
        return;
    case NO_JOB:
        if (c->woken) {
            c->woken = 0;
            grab(c);
        } else {
            c->grabbing = 0;
            append(c, PRE_SLEEP, 0, NULL, 0, NULL, 0, NULL, 0);
        }
        return;
    case JOB_ASSIGN_UNIQ: {
        size_t handlelen, offset = splitAssign(c, p, len, &handlelen);
        size_t datalen = len - offset;
        size_t total = handlelen + 1 + datalen;
        unsigned char *q = header(reserve(c, HEADER + total), WORK_COMPLETE, total);
        memcpy(q, p, handlelen);
        q[handlelen] = 0;
        memcpy(q + handlelen + 1, p + offset, datalen);
        if (++workedOn == corrupt && datalen) q[handlelen + 1 + datalen - 1] ^= 1;
        grab(c);
        return;
    }
    }
    die("worker %d: unexpected packet type %u", c->id, type);
}

/* Background submissions, and the drain workers that take them. */

static uint64_t hashOf(const unsigned char *p, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h ? h : 1;
}

/* Queue up to `want` more submissions on c. */
static void submitMore(struct conn *c, uint64_t want) {
    uint64_t batch = c->total - c->sent < want ? c->total - c->sent : want;
    size_t uniquelen = unique ? UNIQUE : 0, len = functionlen + 2 + uniquelen + size;
    unsigned char *p = reserve(c, (HEADER + len) * batch);
    for (uint64_t i = 0; i < batch; i++) {
        unsigned char *q = header(p, SUBMIT_JOB_BG, len);
        uint64_t number = c->first + c->sent + i;
        memcpy(q, function, functionlen);
        q += functionlen;
        *q++ = 0;
        if (unique) {
            char key[UNIQUE + 1];
            snprintf(key, sizeof key, "%016llx", (unsigned long long)number);
            memcpy(q, key, UNIQUE);
            q += UNIQUE;
        }
        *q++ = 0;
        memset(q, FILL, size);
        /* Self-test for drain: job K carries job K-1's number. */
        if (corrupt && number == corrupt) number--;
        tag(q, 'd', 0, (uint32_t)number);
        p += HEADER + len;
    }
    c->sent += batch;
}

static void submitterPacket(struct conn *c, uint32_t type, unsigned char *p, size_t len) {
    if (type != JOB_CREATED || c->created >= c->sent)
        die("submitter %d: unexpected packet type %u", c->id, type);
    if (handles) {
        static uint64_t last;
        uint64_t h = hashOf(p, len);
        /* Self-test for submit: the K-th handle counts as the one before. */
        if (corrupt && completed + 1 == corrupt) h = last;
        last = h;
        for (uint64_t i = h & handlemask;; i = (i + 1) & handlemask) {
            if (!handles[i]) { handles[i] = h; break; }
            if (handles[i] == h) die("submitter %d: handle %.*s given twice", c->id, (int)len, p);
        }
    }
    completed++;
    /* The next window once this one is all answered. */
    if (++c->created == c->sent) {
        if (c->sent < c->total) submitMore(c, window);
        else c->finished = 1;
    }
}

static void drainerPacket(struct conn *c, uint32_t type, unsigned char *p, size_t len) {
    if (type == NO_JOB) {
        c->finished = 1;
        return;
    }
    if (type != JOB_ASSIGN_UNIQ) die("drainer %d: unexpected packet type %u", c->id, type);
    size_t handlelen, offset = splitAssign(c, p, len, &handlelen);
    unsigned char *data = p + offset;
    if (len - offset != size) die("drainer %d: job data of %zu bytes, not %zu", c->id, len - offset, size);
    unsigned int zero, number;
    char kind, text[TAG + 1];
    memcpy(text, data, TAG);
    text[TAG] = 0;
    if (sscanf(text, "%c%08x:%08x:", &kind, &zero, &number) != 3 || kind != 'd' || number >= expected)
        die("drainer %d: job data mangled: %.*s", c->id, TAG, data);
    for (size_t i = TAG; i < size; i++)
        if (data[i] != FILL) die("drainer %d: job %u's data mangled", c->id, number);
    if (seen[number]) die("drainer %d: job %u handed out twice", c->id, number);
    seen[number] = 1;
    completed++;
    append(c, WORK_COMPLETE, 2, p, handlelen, "", 0, NULL, 0);
    append(c, GRAB_JOB_UNIQ, 0, NULL, 0, NULL, 0, NULL, 0);
}

static void packetFor(struct conn *c, uint32_t type, unsigned char *p, size_t len) {
    if (type == ECHO_RES && !c->synced) {
        c->synced = 1;
        return;
    }
    if (type == ERROR) die("server sent ERROR: %.*s", (int)(len > 200 ? 200 : len), p);
    switch (c->role) {
    case CLIENT: clientPacket(c, type, p, len); break;
    case WORKER: workerPacket(c, type, p, len); break;
    case SUBMITTER: submitterPacket(c, type, p, len); break;
    case DRAINER: drainerPacket(c, type, p, len); break;
    }
}

/* Read once, handle every whole packet, send the replies at once. */
static void readable(struct conn *c) {
    size_t want = READ_SIZE;
    if (c->inlen >= HEADER) {
        uint32_t l;
        memcpy(&l, c->in + 8, 4);
        size_t need = HEADER + ntohl(l);
        if (need > c->inlen && need - c->inlen > want) want = need - c->inlen;
    }
    if (c->inlen + want > c->incap) {
        c->incap = c->inlen + want;
        c->in = realloc(c->in, c->incap);
        if (!c->in) die("out of memory");
    }
    ssize_t n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        die("recv: %s", strerror(errno));
    }
    if (n == 0) die("the server closed a connection (%s %d)", c->role == CLIENT ? "client" : "worker", c->id);
    c->inlen += n;
    size_t pos = 0;
    while (c->inlen - pos >= HEADER) {
        unsigned char *h = c->in + pos;
        uint32_t type, l;
        memcpy(&type, h + 4, 4);
        memcpy(&l, h + 8, 4);
        type = ntohl(type);
        l = ntohl(l);
        if (memcmp(h, "\0RES", 4)) die("bad magic from the server");
        if (c->inlen - pos < HEADER + (size_t)l) break;
        packetFor(c, type, h + HEADER, l);
        pos += HEADER + l;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    flush(c);
}

static int allSynced(void) {
    for (int i = 0; i < nconns; i++)
        if (!conns[i].synced) return 0;
    return 1;
}

static int fillerFinished(void) {
    return conns[0].finished;
}

static int allFinished(void) {
    for (int i = 0; i < nconns; i++)
        if (!conns[i].finished && (conns[i].role == CLIENT || conns[i].role == SUBMITTER || conns[i].role == DRAINER))
            return 0;
    return 1;
}

/* Run the loop until done() or the deadline. */
static void loop(int (*done)(void), const char *what) {
    struct epoll_event events[64];
    while (!done()) {
        if (atomic_load(&failed)) die("%s", failure);
        double left = deadline - now();
        if (left <= 0)
            die("timed out %s: %llu of %llu done", what, (unsigned long long)completed, (unsigned long long)expected);
        int n = epoll_wait(epfd, events, 64, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].events & EPOLLOUT) flush(c);
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(c);
        }
    }
}

static struct conn *addConn(enum role role, int id) {
    struct conn *c = &conns[nconns++];
    memset(c, 0, sizeof *c);
    c->fd = connectTo();
    c->role = role;
    c->id = id;
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    return c;
}

/* libgearman workers: one thread each, gearman_worker_work() in a loop. */

static void *echoFunction(gearman_job_st *job, void *context, size_t *resultSize, gearman_return_t *ret) {
    (void)context;
    size_t n = gearman_job_workload_size(job);
    unsigned char *result = xmalloc(n);
    memcpy(result, gearman_job_workload(job), n);
    if (atomic_fetch_add(&workedOn, 1) + 1 == corrupt && n) result[n - 1] ^= 1;
    *resultSize = n;
    *ret = GEARMAN_SUCCESS;
    return result;
}

static void *libgearmanWorker(void *arg) {
    (void)arg;
    gearman_worker_st *worker = gearman_worker_create(NULL);
    if (!worker) die("gearman_worker_create failed");
    gearman_return_t rc = gearman_worker_add_server(worker, "127.0.0.1", (in_port_t)port);
    if (rc == GEARMAN_SUCCESS) rc = gearman_worker_add_function(worker, function, 0, echoFunction, NULL);
    /* No timeout: the thread ends with the process, once the run is over. */
    while (rc == GEARMAN_SUCCESS) rc = gearman_worker_work(worker);
    if (!atomic_exchange(&failed, 1))
        snprintf(failure, sizeof failure, "libgearman worker: %s", gearman_worker_error(worker));
    return NULL;
}

/* How many workers the server's "status" lists for our function. */
static int registeredWorkers(void) {
    int fd = connectTo();
    const char *line = "status\n";
    if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) die("send: %s", strerror(errno));
    char reply[65536];
    size_t got = 0;
    while (got < sizeof reply - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0) die("no reply to status");
        ssize_t n = recv(fd, reply + got, sizeof reply - 1 - got, 0);
        if (n <= 0) break;
        got += n;
        reply[got] = 0;
        if (!strcmp(reply, ".\n") || strstr(reply, "\n.\n")) break;
    }
    close(fd);
    reply[got] = 0;
    for (char *line = reply; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        unsigned long queued, running, available;
        if (!strncmp(line, function, functionlen) && line[functionlen] == '\t' &&
            sscanf(line + functionlen, "\t%lu\t%lu\t%lu", &queued, &running, &available) == 3)
            return (int)available;
    }
    return 0;
}

static int compareDoubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    die("usage: loadgen submit|drain|foreground|libgearman --port PORT [--function NAME] [--clients N] "
        "[--workers N] [--jobs N] [--size BYTES] [--window N] [--timeout SECONDS] [--corrupt K] [--unique 0|1]");
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    mode = argv[1];
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *name = argv[i], *value = argv[++i];
        if (!strcmp(name, "--port")) port = atoi(value);
        else if (!strcmp(name, "--function")) function = value;
        else if (!strcmp(name, "--clients")) clients = atoi(value);
        else if (!strcmp(name, "--workers")) workers = atoi(value);
        else if (!strcmp(name, "--jobs")) jobs = strtoull(value, NULL, 10);
        else if (!strcmp(name, "--size")) size = strtoull(value, NULL, 10);
        else if (!strcmp(name, "--window")) window = strtoull(value, NULL, 10);
        else if (!strcmp(name, "--timeout")) timeout = atof(value);
        else if (!strcmp(name, "--corrupt")) corrupt = strtoull(value, NULL, 10);
        else if (!strcmp(name, "--unique")) unique = atoi(value);
        else usage();
    }
    int submit = !strcmp(mode, "submit"), drain = !strcmp(mode, "drain");
    int foreground = !strcmp(mode, "foreground"), lib = !strcmp(mode, "libgearman");
    if (!(submit || drain || foreground || lib) || port <= 0 || clients < 1 || workers < 1 || jobs < 1 ||
        window < 1 || size < TAG || clients > 1000 || workers > 1000)
        usage();
    functionlen = strlen(function);
    deadline = now() + timeout;
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1: %s", strerror(errno));
    conns = xmalloc(sizeof *conns * (clients + workers + 1));

    /* Connect, register, and wait for every connection's ECHO_RES. */
    pthread_t *threads = NULL;
    if (submit) {
        expected = jobs * clients;
        handlemask = 1;
        while (handlemask < expected * 2) handlemask <<= 1;
        handles = calloc(handlemask, sizeof *handles);
        if (!handles) die("out of memory");
        handlemask--;
        for (int i = 0; i < clients; i++) {
            struct conn *c = addConn(SUBMITTER, i);
            c->total = jobs;
            c->first = (uint64_t)i * jobs;
        }
    } else if (drain) {
        expected = jobs;
        seen = calloc(jobs, 1);
        if (!seen) die("out of memory");
        struct conn *filler = addConn(SUBMITTER, 0);
        filler->total = jobs;
        for (int i = 0; i < workers; i++) {
            struct conn *c = addConn(DRAINER, i);
            append(c, CAN_DO, 1, function, functionlen, NULL, 0, NULL, 0);
        }
    } else {
        expected = jobs * clients;
        latencies = xmalloc(sizeof *latencies * expected);
        for (int i = 0; i < clients; i++) {
            struct conn *c = addConn(CLIENT, i);
            c->data = makeData('f', (uint32_t)i, 0);
        }
        if (foreground)
            for (int i = 0; i < workers; i++) {
                struct conn *c = addConn(WORKER, i);
                append(c, CAN_DO, 1, function, functionlen, NULL, 0, NULL, 0);
                append(c, PRE_SLEEP, 0, NULL, 0, NULL, 0, NULL, 0);
            }
    }
    for (int i = 0; i < nconns; i++) {
        append(&conns[i], ECHO_REQ, 1, "ready", 5, NULL, 0, NULL, 0);
        flush(&conns[i]);
    }
    loop(allSynced, "connecting");
    if (drain) {
        /* Queue the jobs to drain, unmeasured. */
        submitMore(&conns[0], window);
        flush(&conns[0]);
        loop(fillerFinished, "queueing the jobs to drain");
        completed = 0;
    }
    if (lib) {
        threads = xmalloc(sizeof *threads * workers);
        for (int i = 0; i < workers; i++)
            if (pthread_create(&threads[i], NULL, libgearmanWorker, NULL)) die("pthread_create failed");
        while (registeredWorkers() < workers) {
            if (atomic_load(&failed)) die("%s", failure);
            if (now() > deadline) die("timed out waiting for the libgearman workers to register");
            usleep(20000);
        }
    }

    printf("ready\n");
    fflush(stdout);
    {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        double left = deadline - now();
        if (left <= 0 || poll(&pfd, 1, (int)(left * 1000)) <= 0) die("timed out waiting for the go");
        char line[64];
        if (!fgets(line, sizeof line, stdin)) die("stdin closed before the go");
    }

    double user0, system0, user1, system1;
    cpu(&user0, &system0);
    double began = now();
    if (submit) {
        for (int i = 0; i < nconns; i++) submitMore(&conns[i], window);
    } else if (drain) {
        for (int i = 1; i < nconns; i++) append(&conns[i], GRAB_JOB_UNIQ, 0, NULL, 0, NULL, 0, NULL, 0);
    } else {
        for (int i = 0; i < clients; i++) submitNext(&conns[i]);
    }
    for (int i = 0; i < nconns; i++) flush(&conns[i]);
    loop(allFinished, "running");
    double elapsed = now() - began;
    cpu(&user1, &system1);

    if (atomic_load(&failed)) die("%s", failure);
    if (completed != expected)
        die("%llu of %llu jobs done", (unsigned long long)completed, (unsigned long long)expected);
    if (drain)
        for (uint64_t i = 0; i < jobs; i++)
            if (!seen[i]) die("job %llu was never handed out", (unsigned long long)i);
    if ((foreground || lib) && atomic_load(&workedOn) != expected)
        die("the workers did %llu jobs for %llu results", (unsigned long long)atomic_load(&workedOn),
            (unsigned long long)expected);
    double p50 = 0, p99 = 0;
    if (latencies) {
        qsort(latencies, expected, sizeof *latencies, compareDoubles);
        p50 = latencies[expected / 2] * 1000;
        p99 = latencies[(size_t)(expected * 0.99)] * 1000;
    }
    printf("result jobs=%llu seconds=%.6f user=%.6f system=%.6f p50_ms=%.4f p99_ms=%.4f\n",
           (unsigned long long)completed, elapsed, user1 - user0, system1 - system0, p50, p99);
    fflush(stdout);
    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    /* libgearman's workers, if any, are still waiting for jobs: exit ends them. */
    exit(0);
}
