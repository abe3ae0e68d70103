/* minirun-monitor: waits for a detached container's PID 1, keeps its log, and hands
 * over to cleanup.
 *
 * A detached container needs a parent that collects its exit status and then
 * tears down its network. A Python process per container would cost ~10 MB
 * for the container's whole life; this costs well under 1 MB. When the
 * container exits, it execs the cleanup command given on its command line,
 * replacing the argument "{status}" with the exit code (128+N for signal N).
 *
 * With --log, it is also the container's log writer: PID 1's standard output and
 * error are the write ends of two pipes whose read ends are OUT and ERR; each line
 * read (or each 16 KiB of a longer one) becomes one line of LOGFD in Docker's
 * json-file format, {"log":"...","stream":"stdout|stderr","time":"RFC 3339"}, so
 * the two streams stay apart and every line has its time (the time it was read).
 * The records of one read are one write(2) on an O_APPEND file.
 *
 * With --tee (a foreground container, not --rm, no tty), there is no PID to wait
 * for: it logs OUT and ERR as above, also copies them to its own standard output
 * and error (the user's terminal), and exits when both pipes are closed.
 *
 * usage: minirun-monitor [--log LOGFD OUT ERR] PID CLEANUP-PROGRAM [ARG|{status}]...
 *        minirun-monitor --tee LOGFD OUT ERR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 16384

struct stream {
    int fd;
    int copy_to;  /* --tee: 1 or 2, -1 once that write failed (a closed pipe) */
    const char *name;
    size_t len;
    char buf[CHUNK];
};

#define RECMAX (CHUNK * 6 + 128)  /* one record: every byte escaped, and the rest */

static int logfd = -1;
static int wake[2] = {-1, -1};  /* SIGCHLD -> a byte here, so poll() wakes up */
/* The records of one read(), written with one write(2): a line a syscall would make
 * a chatty container's output several times slower. */
static char out[RECMAX * 3];
static size_t outlen;

static void flush_log(void) {
    for (size_t off = 0; off < outlen;) {
        ssize_t w = write(logfd, out + off, outlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;  /* a full disk loses log lines, never the container */
        off += (size_t)w;
    }
    outlen = 0;
}

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    if (write(wake[1], "x", 1) < 0) { /* full: a wake-up is pending anyway */ }
    errno = saved;
}

static char stamp[48];  /* the time of the read being logged, RFC 3339 in UTC */

static void take_time(void) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + k, sizeof stamp - k, ".%09ldZ", ts.tv_nsec);
}

static void emit(struct stream *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (outlen + RECMAX > sizeof out)
        flush_log();
    char *rec = out + outlen;
    size_t k = 0;
    k += (size_t)sprintf(rec, "{\"log\":\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s->buf[i];
        switch (ch) {
        case '"': rec[k++] = '\\'; rec[k++] = '"'; break;
        case '\\': rec[k++] = '\\'; rec[k++] = '\\'; break;
        case '\n': rec[k++] = '\\'; rec[k++] = 'n'; break;
        case '\r': rec[k++] = '\\'; rec[k++] = 'r'; break;
        case '\t': rec[k++] = '\\'; rec[k++] = 't'; break;
        default:
            if (ch < 0x20) {
                memcpy(rec + k, "\\u00", 4);
                k += 4;
                rec[k++] = hex[ch >> 4];
                rec[k++] = hex[ch & 15];
            } else {
                rec[k++] = (char)ch;  /* other bytes as they are (UTF-8 or not) */
            }
        }
    }
    k += (size_t)snprintf(rec + k, RECMAX - k, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
                          s->name, stamp);
    outlen += k;
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
}

/* Read what is there; log complete lines (and a full buffer). Returns 1 after
 * reading, 0 at EOF (the pipe is closed), -1 when a non-blocking pipe is empty. */
static int feed(struct stream *s) {
    ssize_t n = read(s->fd, s->buf + s->len, CHUNK - s->len);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n < 0 && errno == EAGAIN)
        return -1;
    take_time();
    if (n <= 0) {
        if (s->len)
            emit(s, s->len);  /* a last line without a newline */
        flush_log();
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    if (s->copy_to >= 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(s->copy_to, s->buf + s->len + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                s->copy_to = -1;  /* the reader went away: the log goes on */
                break;
            }
            off += w;
        }
    }
    s->len += (size_t)n;
    char *nl;
    while (s->len && (nl = memchr(s->buf, '\n', s->len)) != NULL)
        emit(s, (size_t)(nl - s->buf) + 1);
    if (s->len == CHUNK)
        emit(s, s->len);
    flush_log();
    return 1;
}

static int reap(pid_t pid, int flags, int *status) {
    for (;;) {
        pid_t got = waitpid(-1, status, flags);
        if (got == pid)
            return 1;
        if (got == 0)
            return 0;
        if (got < 0 && errno != EINTR) {
            *status = -1;
            return 1;
        }
    }
}

/* Log (and with --tee copy) the two pipes until PID exits (pid 0: until both pipes
 * are closed); returns PID's wait status. */
static int relay(pid_t pid, struct stream *st) {
    int status = 0;
    if (pid == 0) {
        while (st[0].fd >= 0 || st[1].fd >= 0) {
            struct pollfd p[2] = {{st[0].fd, POLLIN, 0}, {st[1].fd, POLLIN, 0}};
            if (poll(p, 2, -1) < 0 && errno != EINTR)
                break;
            for (int i = 0; i < 2; i++)
                if (st[i].fd >= 0 && p[i].revents)
                    feed(&st[i]);
        }
        return 0;
    }
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0)
        return reap(pid, 0, &status), status;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    int exited = reap(pid, WNOHANG, &status);
    while (!exited && (st[0].fd >= 0 || st[1].fd >= 0)) {
        struct pollfd p[3] = {{st[0].fd, POLLIN, 0}, {st[1].fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++)
            if (st[i].fd >= 0 && p[i].revents)
                feed(&st[i]);
        if (p[2].revents) {
            char junk[64];
            while (read(wake[0], junk, sizeof junk) > 0) {}
            exited = reap(pid, WNOHANG, &status);
        }
    }
    /* PID 1 is gone (its namespace's other processes with it): what its pipes
     * still hold is logged, without waiting for a writer that might linger. */
    for (int i = 0; i < 2; i++) {
        if (st[i].fd < 0)
            continue;
        fcntl(st[i].fd, F_SETFL, fcntl(st[i].fd, F_GETFL) | O_NONBLOCK);
        while (st[i].fd >= 0 && feed(&st[i]) == 1) {}
        if (st[i].fd >= 0) {
            take_time();
            if (st[i].len)
                emit(&st[i], st[i].len);
            flush_log();
            close(st[i].fd);
        }
    }
    if (!exited)
        reap(pid, 0, &status);
    signal(SIGCHLD, SIG_DFL);
    return status;
}

int main(int argc, char **argv) {
    static struct stream st[2];
    st[0].copy_to = st[1].copy_to = -1;
    int tee = argc == 5 && strcmp(argv[1], "--tee") == 0;
    int logging = tee || (argc > 5 && strcmp(argv[1], "--log") == 0);
    if (logging) {
        logfd = atoi(argv[2]);
        st[0].fd = atoi(argv[3]);
        st[0].name = "stdout";
        st[1].fd = atoi(argv[4]);
        st[1].name = "stderr";
        argv += 4;
        argc -= 4;
    }
    if (tee) {
        signal(SIGINT, SIG_IGN);  /* ctrl-C is the container's: we drain what it wrote */
        signal(SIGPIPE, SIG_IGN);
        st[0].copy_to = 1;
        st[1].copy_to = 2;
        relay(0, st);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: minirun-monitor [--log LOGFD OUT ERR] PID CLEANUP-PROGRAM [ARG]...\n");
        return 2;
    }
    pid_t pid = (pid_t)atol(argv[1]);
    /* Terminal and hang-up signals are not ours: only the container's exit ends us. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    int status = 0;
    if (logging) {
        status = relay(pid, st);
        close(logfd);
    } else {
        reap(pid, 0, &status);
    }
    char code[16];
    if (status == -1)
        snprintf(code, sizeof code, "-1");
    else if (WIFEXITED(status))
        snprintf(code, sizeof code, "%d", WEXITSTATUS(status));
    else
        snprintf(code, sizeof code, "%d", 128 + WTERMSIG(status));
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "{status}") == 0)
            argv[i] = code;
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    execv(argv[2], argv + 2);
    perror("minirun-monitor: exec cleanup");
    return 127;
}
