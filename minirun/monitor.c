/* minirun-monitor: waits for a detached container's PID 1 and hands over to cleanup.
 *
 * A detached container needs a parent that collects its exit status and then
 * tears down its network. A Python process per container would cost ~10 MB
 * for the container's whole life; this costs well under 1 MB. When the
 * container exits, it execs the cleanup command given on its command line,
 * replacing the argument "{status}" with the exit code (128+N for signal N).
 *
 * usage: minirun-monitor PID CLEANUP-PROGRAM [ARG|{status}]...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PID CLEANUP-PROGRAM [ARG]...\n", argv[0]);
        return 2;
    }
    pid_t pid = (pid_t)atol(argv[1]);
    /* Terminal and hang-up signals are not ours: only the container's exit ends us. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    int status = 0;
    for (;;) {
        pid_t got = waitpid(-1, &status, 0);
        if (got == pid)
            break;
        if (got < 0 && errno != EINTR) {
            status = -1;
            break;
        }
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
