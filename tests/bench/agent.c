/* Benchmark agent: the native side of tests/bench/bench.py.
 *
 * Python orchestrates and does the statistics; every timed operation happens
 * here, between two clock_gettime(CLOCK_MONOTONIC) calls, so the interpreter's
 * own cost (subprocess.run is ~0.3 ms, json+socket ~50 us) stays out of the
 * figures. Driven as a co-process: one command per line on stdin, one answer
 * per line on stdout.
 *
 *   fork PATH [ARG...]        fork + execve + drain stdout + waitpid
 *                             -> "US STATUS FIRST-LINE-OF-STDOUT"
 *   spawn PATH [ARG...]       the same with posix_spawn
 *   connect SOCK              open (and keep) a Unix stream connection -> "ok"
 *   req JSONLINE              write the line, read one response line
 *                             -> "US RESPONSE"
 *   loopfork SECS PATH [ARG...]   fork+exec+wait until SECS have passed (each
 *                             child must exit 0) -> "COUNT ELAPSED_US"
 *   loopspawn SECS PATH [ARG...]  the same with posix_spawn
 *   loopreq SECS JSONLINE     requests until SECS have passed; each answer
 *                             must have "ok":true and, for an invoke,
 *                             "status":"exited" and "exit_code":0
 *                             -> "COUNT ELAPSED_US"
 *   quit                      exit
 *
 * STATUS is the exit code, or -N for a child killed by signal N. Children get
 * stdin and stderr on /dev/null, stdout on a pipe the agent drains (as any
 * launcher that captures output must), and a minimal environment. Every loop
 * is bounded by its deadline (at most 600 s) and ends at the first failure,
 * answered "err MESSAGE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64
#define OUT_KEEP 4096             /* bytes of a child's stdout kept for the answer */
#define MAX_RESPONSE (64u << 20)  /* a daemon response longer than this is an error */
#define MAX_LOOP_SECS 600.0

static char *child_env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
static int devnull = -1;
static int sock = -1;
static char *rbuf;          /* socket read buffer */
static size_t rcap, rlen;   /* its capacity and the bytes in it */

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void answer_err(const char *what) {
    printf("err %s: %s\n", what, errno ? strerror(errno) : "failed");
    fflush(stdout);
}

/* Split s on spaces into argv (in place). Returns argc, or -1 if too many. */
static int split(char *s, char **argv) {
    int n = 0;
    for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " ")) {
        if (n == MAX_ARGS - 1)
            return -1;
        argv[n++] = tok;
    }
    argv[n] = NULL;
    return n;
}

/* Read the child's stdout to EOF, keeping its first OUT_KEEP bytes in out. */
static void drain(int fd, char *out) {
    size_t kept = 0;
    char buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (take > OUT_KEEP - 1 - kept)
            take = OUT_KEEP - 1 - kept;
        memcpy(out + kept, buf, take);
        kept += take;
    }
    out[kept] = 0;
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = 0;
}

static int wait_status(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -255;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* One launch of argv, timed from before fork/posix_spawn to after waitpid.
 * Returns 0 and sets *us, *status, out; -1 on a launcher error. */
static int launch(int use_spawn, char **argv, double *us, int *status, char *out) {
    int p[2];
    double t0 = now_us();
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid;
    if (use_spawn) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, devnull, 0);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_adddup2(&fa, devnull, 2);
        int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, child_env);
        posix_spawn_file_actions_destroy(&fa);
        if (e) {
            close(p[0]);
            close(p[1]);
            errno = e;
            return -1;
        }
    } else {
        pid = fork();
        if (pid < 0) {
            close(p[0]);
            close(p[1]);
            return -1;
        }
        if (pid == 0) {
            dup2(devnull, 0);
            dup2(p[1], 1);
            dup2(devnull, 2);
            execve(argv[0], argv, child_env);
            _exit(127);
        }
    }
    close(p[1]);
    drain(p[0], out);
    close(p[0]);
    *status = wait_status(pid);
    *us = now_us() - t0;
    return 0;
}

static int do_connect(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (sock >= 0)
        close(sock);
    sock = fd;
    rlen = 0;
    return 0;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Send line (which ends in '\n') and read one response line into rbuf.
 * Returns the response's length (without '\n', NUL-terminated), -1 on error. */
static long request(const char *line, size_t n) {
    if (sock < 0) {
        errno = ENOTCONN;
        return -1;
    }
    if (write_all(sock, line, n) < 0)
        return -1;
    size_t scanned = 0;
    for (;;) {
        char *nl = memchr(rbuf + scanned, '\n', rlen - scanned);
        if (nl) {
            size_t len = (size_t)(nl - rbuf);
            *nl = 0;
            return (long)len;
        }
        scanned = rlen;
        if (rcap - rlen < 65536) {
            if (rcap >= MAX_RESPONSE) {
                errno = EMSGSIZE;
                return -1;
            }
            rcap *= 2;
            char *nb = realloc(rbuf, rcap);
            if (!nb)
                return -1;
            rbuf = nb;
        }
        ssize_t r = read(sock, rbuf + rlen, rcap - rlen - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = ECONNRESET;
        if (r <= 0)
            return -1;
        rlen += (size_t)r;
    }
}

/* Drop the response just returned by request() (and its '\n') from rbuf. */
static void consume(long len) {
    size_t used = (size_t)len + 1;
    memmove(rbuf, rbuf + used, rlen - used);
    rlen -= used;
}

static int parse_secs(const char *s, double *secs) {
    char *end;
    *secs = strtod(s, &end);
    if (end == s || *secs <= 0 || *secs > MAX_LOOP_SECS) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int main(void) {
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    rcap = 1 << 20;
    rbuf = malloc(rcap);
    if (devnull < 0 || !rbuf) {
        perror("agent");
        return 1;
    }
    static char out[OUT_KEEP];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] != '\n') {
            /* getline always ends a line in '\n' but the last: add one. */
            char *nl = realloc(line, (size_t)n + 2);
            if (!nl)
                return 1;
            line = nl;
            line[n++] = '\n';
            line[n] = 0;
        }
        char *rest = strchr(line, ' ');
        char *cmd = line;
        if (rest)
            *rest++ = 0;
        else
            line[n - 1] = 0;
        errno = 0;
        if (!strcmp(cmd, "quit")) {
            break;
        } else if (!strcmp(cmd, "fork") || !strcmp(cmd, "spawn")) {
            char *argv[MAX_ARGS];
            double us;
            int status;
            if (!rest || (rest[strlen(rest) - 1] = 0, split(rest, argv) < 1)) {
                errno = EINVAL;
                answer_err(cmd);
                continue;
            }
            if (launch(cmd[0] == 's', argv, &us, &status, out) < 0) {
                answer_err(argv[0]);
                continue;
            }
            printf("%.1f %d %s\n", us, status, out);
        } else if (!strcmp(cmd, "loopfork") || !strcmp(cmd, "loopspawn")) {
            char *argv[MAX_ARGS + 1];
            double secs, us;
            int status;
            if (!rest || (rest[strlen(rest) - 1] = 0, split(rest, argv) < 2) ||
                parse_secs(argv[0], &secs) < 0) {
                errno = EINVAL;
                answer_err(cmd);
                continue;
            }
            long count = 0;
            int failed = 0;
            double t0 = now_us(), end = t0 + secs * 1e6;
            while (now_us() < end) {
                if (launch(cmd[4] == 's', argv + 1, &us, &status, out) < 0) {
                    answer_err(argv[1]);
                    failed = 1;
                    break;
                }
                if (status != 0) {
                    printf("err %s exited with status %d after %ld runs\n", argv[1], status, count);
                    failed = 1;
                    break;
                }
                count++;
            }
            if (!failed)
                printf("%ld %.0f\n", count, now_us() - t0);
        } else if (!strcmp(cmd, "connect")) {
            if (!rest) {
                errno = EINVAL;
                answer_err(cmd);
                continue;
            }
            rest[strlen(rest) - 1] = 0;
            if (do_connect(rest) < 0) {
                answer_err(rest);
                continue;
            }
            printf("ok\n");
        } else if (!strcmp(cmd, "req")) {
            if (!rest) {
                errno = EINVAL;
                answer_err(cmd);
                continue;
            }
            double t0 = now_us();
            long len = request(rest, strlen(rest));
            double us = now_us() - t0;
            if (len < 0) {
                answer_err("request");
                continue;
            }
            printf("%.1f %s\n", us, rbuf);
            consume(len);
        } else if (!strcmp(cmd, "loopreq")) {
            double secs;
            char *json = rest ? strchr(rest, ' ') : NULL;
            if (!json) {
                errno = EINVAL;
                answer_err(cmd);
                continue;
            }
            *json++ = 0;
            if (parse_secs(rest, &secs) < 0) {
                answer_err(cmd);
                continue;
            }
            int invoke = strstr(json, "\"op\":\"invoke\"") != NULL;
            size_t jlen = strlen(json);
            long count = 0;
            int failed = 0;
            double t0 = now_us(), end = t0 + secs * 1e6;
            while (now_us() < end) {
                long len = request(json, jlen);
                if (len < 0) {
                    answer_err("request");
                    failed = 1;
                    break;
                }
                if (!strstr(rbuf, "\"ok\":true") ||
                    (invoke && (!strstr(rbuf, "\"status\":\"exited\"") ||
                                !strstr(rbuf, "\"exit_code\":0,")))) {
                    printf("err after %ld requests: %.300s\n", count, rbuf);
                    failed = 1;
                    break;
                }
                consume(len);
                count++;
            }
            if (!failed)
                printf("%ld %.0f\n", count, now_us() - t0);
        } else {
            errno = EINVAL;
            answer_err(cmd);
            continue;
        }
        fflush(stdout);
    }
    free(line);
    return 0;
}
