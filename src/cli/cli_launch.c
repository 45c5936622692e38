/*
 * cli_launch.c - `partita launch`: runs a partita command on N processes
 * through mpirun. It only builds the mpirun command line (process count,
 * hosts, oversubscription, exported environment, the path of this very
 * binary) and waits for mpirun: MPI is the launcher and the transport, and
 * Partita has no launcher of its own. A parent process stays between the
 * shell and mpirun so that a later version can restart a failed job from
 * its newest checkpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

enum { L_NP = 1, L_HOSTS, L_HOSTFILE, L_OVERSUB, L_DRYRUN, L_MPIRUN, L_ENV };

/* Bounds the process count so that a typo (-n 1e9) is a usage error rather
 * than a fork storm; far above any single mpirun job we expect. */
#define LAUNCH_MAX_NP 1048576

#define LAUNCH_DEFAULT_MPIRUN "mpirun"

/* A growable NULL-terminated array of strings; the strings it owns are
 * those added with sv_push_own. */
typedef struct strvec {
    char **v;
    char *owned; /* owned[i]: free v[i] */
    int n, cap;
    int oom;
} strvec;

static void sv_push_flag(strvec *s, char *str, char own) {
    if (s->oom) {
        if (own) free(str);
        return;
    }
    if (s->n + 2 > s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        char *o = v ? realloc(s->owned, (size_t)cap) : NULL;
        if (v) s->v = v;
        if (!v || !o) {
            s->oom = 1;
            if (own) free(str);
            return;
        }
        s->owned = o;
        s->cap = cap;
    }
    if (!str) {
        s->oom = 1;
        return;
    }
    s->owned[s->n] = own;
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
}

static void sv_push(strvec *s, const char *str) {
    sv_push_flag(s, (char *)str, 0);
}
static void sv_push_own(strvec *s, char *str) {
    sv_push_flag(s, str, 1);
}

static void sv_free(strvec *s) {
    for (int i = 0; i < s->n; i++)
        if (s->owned[i]) free(s->v[i]);
    free(s->v);
    free(s->owned);
    memset(s, 0, sizeof *s);
}

static int sv_find(const strvec *s, const char *str) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0) return i;
    return -1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int is_env_name(const char *s, size_t len) {
    if (len == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Cores of this machine as Open MPI counts its default slots: physical
 * cores (not hardware threads) among the CPUs this process may run on.
 * Counting hardware threads would let -n 2 through on one hyperthreaded
 * core, where mpirun then refuses for want of slots. */
static int machine_cores(void) {
    cpu_set_t set;
    int ncpu = 0, ncores = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        /* (package, core) pairs seen so far; a linear scan is fine for the
         * at most CPU_SETSIZE CPUs of a set. */
        static long seen[CPU_SETSIZE][2];
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
            if (!CPU_ISSET(cpu, &set)) continue;
            ncpu++;
            long ids[2] = {-1, -1};
            static const char *const files[2] = {"physical_package_id", "core_id"};
            for (int k = 0; k < 2; k++) {
                char path[128];
                snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu,
                         files[k]);
                FILE *f = fopen(path, "r");
                if (f) {
                    if (fscanf(f, "%ld", &ids[k]) != 1) ids[k] = -1;
                    fclose(f);
                }
            }
            if (ids[1] < 0) {
                ncores = -1; /* no topology: fall back to the CPU count */
                continue;
            }
            if (ncores < 0) continue;
            int dup = 0;
            for (int i = 0; i < ncores && !dup; i++)
                dup = seen[i][0] == ids[0] && seen[i][1] == ids[1];
            if (!dup) {
                seen[ncores][0] = ids[0];
                seen[ncores][1] = ids[1];
                ncores++;
            }
        }
    }
    if (ncores > 0) return ncores;
    if (ncpu > 0) return ncpu;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Validates --hosts "h1,h2:4,...": non-empty names, slots a positive
 * integer. Returns 0 or a usage exit code. */
static int check_hosts(const char *text) {
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        size_t name_len = colon ? (size_t)(colon - p) : len;
        if (name_len == 0)
            return cli_usage_error("launch",
                                   "--hosts: empty host name in '%s' (e.g. node1,node2:4)", text);
        if (colon) {
            const char *d = colon + 1;
            size_t dlen = len - name_len - 1;
            int ok = dlen > 0 && dlen <= 7;
            long slots = 0;
            for (size_t i = 0; ok && i < dlen; i++) {
                ok = d[i] >= '0' && d[i] <= '9';
                slots = slots * 10 + (d[i] - '0');
            }
            if (!ok || slots < 1)
                return cli_usage_error("launch",
                                       "--hosts: '%.*s' has no valid slot count after ':' (a "
                                       "positive integer, e.g. node2:4)",
                                       (int)len, p);
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* Writes `s` as one shell word: bare when it holds only characters no
 * shell treats specially, else single-quoted with ' written as '\''. */
static void put_shell_word(FILE *out, const char *s) {
    int safe = *s != '\0';
    for (const char *c = s; *c && safe; c++)
        safe = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
               strchr("_-./,:=+@%^", *c) != NULL;
    if (safe) {
        fputs(s, out);
        return;
    }
    fputc('\'', out);
    for (const char *c = s; *c; c++) {
        if (*c == '\'')
            fputs("'\\''", out);
        else
            fputc(*c, out);
    }
    fputc('\'', out);
}

/* Environment assignments "NAME=value" are printed NAME=quoted-value so
 * that the line can be pasted into a shell as it is. */
static void put_assignment(FILE *out, const char *a) {
    const char *eq = strchr(a, '=');
    fwrite(a, 1, (size_t)(eq - a + 1), out);
    if (eq[1])
        put_shell_word(out, eq + 1);
    else
        fputs("''", out);
}

/* Sets NAME=VALUE in `env` (assignments this process adds to the child's
 * environment), replacing an earlier assignment to NAME. */
static void set_assignment(strvec *env, const char *name, const char *value) {
    size_t nl = strlen(name), vl = strlen(value);
    char *a = malloc(nl + vl + 2);
    if (a) {
        memcpy(a, name, nl);
        a[nl] = '=';
        memcpy(a + nl + 1, value, vl + 1);
    }
    for (int i = 0; a && i < env->n; i++) {
        if (strncmp(env->v[i], name, nl) == 0 && env->v[i][nl] == '=') {
            if (env->owned[i]) free(env->v[i]);
            env->v[i] = a;
            env->owned[i] = 1;
            return;
        }
    }
    sv_push_own(env, a);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_help(const cli_opt *opts) {
    printf("usage: partita launch -n N [--hosts H1,H2[:SLOTS],...] [--oversubscribe] [--dry-run]\n"
           "                      [--mpirun PATH] [--env NAME=VALUE ...] -- COMMAND [ARGS...]\n"
           "\n"
           "Runs a partita command (info, sql, stats, gen, ...) on N processes with\n"
           "mpirun, which does the launching; Partita has no launcher of its own. The\n"
           "command line is\n"
           "\n"
           "  mpirun -n N [--host HOSTS] [--hostfile FILE] [--oversubscribe] [-x NAME ...]\n"
           "         /path/of/this/partita COMMAND ARGS...\n"
           "\n"
           "Everything after '--' is the partita command every process runs. Rank 0\n"
           "prints for the job; the exit status is mpirun's (non-zero when a rank failed).\n"
           "\n"
           "Processes and hosts:\n"
           "  Without --hosts or --hostfile all processes run on this machine. When N is\n"
           "  larger than its cores, --oversubscribe is added (and said on stderr unless\n"
           "  --quiet), since Open MPI otherwise refuses to start more processes than\n"
           "  cores. With --hosts, a host without ':SLOTS' counts as one slot; give the\n"
           "  slots (node1:8,node2:8) or --oversubscribe when N is larger.\n"
           "\n"
           "Environment:\n"
           "  Every PARTITA_* variable that is set (PARTITA_THREADS, PARTITA_MEMORY_LIMIT,\n"
           "  PARTITA_LOG, PARTITA_COMM_TIMEOUT, ...) is exported to all ranks with -x, as\n"
           "  is each --env NAME=VALUE. The global options --threads and --memory-limit\n"
           "  given before '--' become PARTITA_THREADS and PARTITA_MEMORY_LIMIT of every\n"
           "  rank (threads per process: N processes on one machine share its cores).\n"
           "  When run as root, OMPI_ALLOW_RUN_AS_ROOT=1 and\n"
           "  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set for mpirun: Open MPI refuses to run\n"
           "  as root without them, and containers often run as root.\n"
           "\n"
           "Examples:\n"
           "  partita launch -n 4 -- info\n"
           "  partita launch -n 8 --hosts node1:4,node2:4 -- sql \"SELECT count(*) FROM 'x.csv'\"\n"
           "  partita launch -n 2 --dry-run --env PARTITA_COMM_TIMEOUT=5 -- stats G1.csv\n"
           "\n"
           "Exit status: mpirun's; 1 when mpirun cannot be started (apt-get install\n"
           "openmpi-bin); 2 on bad usage.\n");
    cli_print_options(stdout, opts);
}

/* mpirun's pid while it runs: a SIGTERM or SIGHUP sent to this process is
 * passed on, so that mpirun stops its ranks instead of being orphaned. */
static volatile pid_t launch_child;

static void forward_signal(int sig) {
    pid_t pid = launch_child;
    if (pid > 0) kill(pid, sig);
}

/* Runs argv with the assignments of `env` added to the environment, waits,
 * and returns its exit status (128 + signal when killed by a signal). */
static int run_mpirun(char **argv, const strvec *env, int explicit_path) {
    /* The child reports a failed exec through a close-on-exec pipe: an
     * exec that succeeds closes it, so an empty read means mpirun runs. */
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "partita launch: pipe: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    fflush(NULL);
    /* Like system(): a Ctrl-C reaches mpirun (same process group), which
     * stops the ranks and exits; this process waits for it to do so. */
    struct sigaction ign = {0}, fwd = {0}, old_int, old_quit, old_term, old_hup;
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    fwd.sa_handler = forward_signal;
    sigemptyset(&fwd.sa_mask);
    fwd.sa_flags = SA_RESTART;
    launch_child = 0;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigaction(SIGTERM, &fwd, &old_term);
    sigaction(SIGHUP, &fwd, &old_hup);
    pid_t pid = fork();
    if (pid > 0) launch_child = pid;
    if (pid < 0) {
        int e = errno;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        close(fds[0]);
        close(fds[1]);
        fprintf(stderr, "partita launch: fork: %s\n", strerror(e));
        return CLI_EXIT_FAIL;
    }
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
        close(fds[0]);
        /* Single-threaded here (launch starts no pool), so putenv is safe
         * between fork and exec. */
        for (int i = 0; i < env->n; i++)
            putenv(env->v[i]);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(fds[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(fds[1]);
    int exec_errno = 0;
    ssize_t r;
    do
        r = read(fds[0], &exec_errno, sizeof exec_errno);
    while (r < 0 && errno == EINTR);
    close(fds[0]);
    int status = 0;
    pid_t w;
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    launch_child = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    if (r == (ssize_t)sizeof exec_errno) {
        if (exec_errno == ENOENT && !explicit_path)
            fprintf(stderr, "partita launch: mpirun not found (apt-get install openmpi-bin)\n");
        else if (exec_errno == ENOENT)
            fprintf(stderr,
                    "partita launch: mpirun not found: '%s' (apt-get install openmpi-bin, "
                    "or check --mpirun)\n",
                    argv[0]);
        else
            fprintf(stderr, "partita launch: cannot run '%s': %s\n", argv[0], strerror(exec_errno));
        return CLI_EXIT_FAIL;
    }
    if (w < 0) {
        fprintf(stderr, "partita launch: waiting for %s: %s\n", argv[0], strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "partita launch: %s was killed by signal %d\n", argv[0], WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return CLI_EXIT_FAIL;
}

int cli_cmd_launch(int argc, char **argv) {
    static const cli_opt opts[] = {
        {L_NP, "np", 'n', "N", "number of processes (required)"},
        {L_HOSTS, "hosts", 'H', "H1,H2[:SLOTS]", "run on these hosts (mpirun --host)"},
        {L_HOSTFILE, "hostfile", 0, "FILE", "run on the hosts of an Open MPI hostfile"},
        {L_OVERSUB, "oversubscribe", 0, NULL, "allow more processes than slots"},
        {L_DRYRUN, "dry-run", 0, NULL, "print the command line and exit without running it"},
        {L_MPIRUN, "mpirun", 0, "PATH", "the mpirun to use (default: mpirun from PATH)"},
        {L_ENV, "env", 'e', "NAME=VALUE", "set NAME for every rank (repeatable)"},
        {0, NULL, 0, NULL, NULL},
    };
    /* Options end at the first "--"; everything after it is the command. */
    int sep = -1;
    for (int i = 1; i < argc && sep < 0; i++)
        if (strcmp(argv[i], "--") == 0) sep = i;
    cli_parser p;
    cli_parser_init(&p, "launch", sep < 0 ? argc : sep, argv, opts);
    const char *np_text = NULL, *hosts = NULL, *hostfile = NULL;
    const char *mpirun = LAUNCH_DEFAULT_MPIRUN;
    int oversub = 0, dry_run = 0, explicit_mpirun = 0;
    strvec env = {0};  /* assignments for the child's environment */
    strvec xvar = {0}; /* names exported to the ranks with -x */
    strvec cmd = {0};
    int rc = -1;
    for (int id; rc < 0 && (id = cli_next(&p)) != CLI_END;) {
        switch (id) {
        case CLI_HELP:
            print_help(opts);
            rc = 0;
            break;
        case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
        case CLI_POSITIONAL:
            rc = cli_usage_error("launch",
                                 "unexpected argument '%s' before '--' (the partita command goes "
                                 "after it: partita launch -n 2 -- %s ...)",
                                 p.value, p.value);
            break;
        case L_NP: np_text = p.value; break;
        case L_HOSTS:
            if (check_hosts(p.value)) rc = CLI_EXIT_USAGE;
            hosts = p.value;
            break;
        case L_HOSTFILE: hostfile = p.value; break;
        case L_OVERSUB: oversub = 1; break;
        case L_DRYRUN: dry_run = 1; break;
        case L_MPIRUN:
            if (!*p.value) {
                rc = cli_usage_error("launch", "--mpirun: empty path");
                break;
            }
            mpirun = p.value;
            explicit_mpirun = 1;
            break;
        case L_ENV: {
            const char *eq = strchr(p.value, '=');
            if (!eq || !is_env_name(p.value, (size_t)(eq - p.value))) {
                rc = cli_usage_error("launch",
                                     "--env: '%s' is not NAME=VALUE (NAME: letters, digits and _, "
                                     "not starting with a digit)",
                                     p.value);
                break;
            }
            char *name = malloc((size_t)(eq - p.value) + 1);
            if (name) {
                memcpy(name, p.value, (size_t)(eq - p.value));
                name[eq - p.value] = '\0';
                set_assignment(&env, name, eq + 1);
                if (sv_find(&xvar, name) < 0)
                    sv_push_own(&xvar, name);
                else
                    free(name);
            } else {
                xvar.oom = 1;
            }
            break;
        }
        }
    }
    long np = 0;
    if (rc < 0) {
        if (!np_text) {
            rc = cli_usage_error("launch", "missing -n N, the number of processes");
        } else {
            char *end;
            errno = 0;
            np = strtol(np_text, &end, 10);
            if (end == np_text || *end != '\0' || errno)
                rc = cli_usage_error("launch", "-n: '%s' is not a number of processes", np_text);
            else if (np < 1)
                rc = cli_usage_error("launch",
                                     "-n: the number of processes must be at least 1, "
                                     "got %ld",
                                     np);
            else if (np > LAUNCH_MAX_NP)
                rc = cli_usage_error("launch", "-n: %ld processes is more than the %d allowed", np,
                                     LAUNCH_MAX_NP);
        }
    }
    if (rc < 0 && sep < 0)
        rc = cli_usage_error("launch", "missing '--' before the partita command to run (e.g. "
                                       "partita launch -n 2 -- info)");
    if (rc < 0 && sep + 1 >= argc)
        rc = cli_usage_error("launch", "missing the partita command after '--' (e.g. info, sql, "
                                       "stats)");
    if (rc < 0 && strcmp(argv[sep + 1], "launch") == 0)
        rc = cli_usage_error("launch", "the command after '--' cannot be 'launch' itself (every "
                                       "rank would start an mpirun of its own)");
    if (rc >= 0) {
        sv_free(&env);
        sv_free(&xvar);
        return rc;
    }

    /* The ranks run this very binary, wherever it was started from. */
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr,
                "partita launch: cannot find the path of this program (/proc/self/exe): "
                "%s\n",
                len < 0 ? strerror(errno) : "empty");
        sv_free(&env);
        sv_free(&xvar);
        return CLI_EXIT_FAIL;
    }
    self[len] = '\0';

    /* Global options before "--" apply to every rank through the
     * environment, which each rank reads when it builds its context. */
    char buf[32];
    if (cli_g.threads > 0) {
        snprintf(buf, sizeof buf, "%d", cli_g.threads);
        set_assignment(&env, "PARTITA_THREADS", buf);
    }
    if (cli_g.memory_limit > 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)cli_g.memory_limit);
        set_assignment(&env, "PARTITA_MEMORY_LIMIT", buf);
    }
    /* Every PARTITA_* setting (present or added above) goes to the ranks,
     * in sorted order so that the command line is the same run to run. */
    strvec pvar = {0};
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "PARTITA_", 8) != 0 || !eq) continue;
        char *name = malloc((size_t)(eq - *e) + 1);
        if (name) {
            memcpy(name, *e, (size_t)(eq - *e));
            name[eq - *e] = '\0';
        }
        sv_push_own(&pvar, name);
    }
    for (int i = 0; i < env.n; i++) {
        if (strncmp(env.v[i], "PARTITA_", 8) != 0) continue;
        size_t nl = (size_t)(strchr(env.v[i], '=') - env.v[i]);
        char *name = malloc(nl + 1);
        if (name) {
            memcpy(name, env.v[i], nl);
            name[nl] = '\0';
        }
        sv_push_own(&pvar, name);
    }
    if (!pvar.oom && pvar.n > 1) qsort(pvar.v, (size_t)pvar.n, sizeof *pvar.v, cmp_str);
    for (int i = 0; !pvar.oom && i < pvar.n; i++) {
        if (sv_find(&xvar, pvar.v[i]) >= 0) continue;
        char *name = dup_str(pvar.v[i]);
        sv_push_own(&xvar, name);
    }
    sv_free(&pvar);
    if (geteuid() == 0) {
        set_assignment(&env, "OMPI_ALLOW_RUN_AS_ROOT", "1");
        set_assignment(&env, "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }

    int cores = machine_cores();
    if (!oversub && !hosts && !hostfile && np > cores) {
        oversub = 1;
        if (!cli_g.quiet)
            fprintf(stderr, "partita launch: %ld processes on %d core%s: adding --oversubscribe\n",
                    np, cores, cores == 1 ? "" : "s");
    }
    if (!cli_g.quiet && !dry_run) {
        char ver[64];
        if (strcmp(pt_comm_library_version(NULL, ver, sizeof ver), "none") == 0)
            fprintf(stderr,
                    "partita launch: this partita was built without MPI: each of the %ld "
                    "processes will run alone as rank 0 of 1\n",
                    np);
    }

    snprintf(buf, sizeof buf, "%ld", np);
    sv_push(&cmd, mpirun);
    sv_push(&cmd, "-n");
    sv_push(&cmd, buf);
    if (hosts) {
        sv_push(&cmd, "--host");
        sv_push(&cmd, hosts);
    }
    if (hostfile) {
        sv_push(&cmd, "--hostfile");
        sv_push(&cmd, hostfile);
    }
    if (oversub) sv_push(&cmd, "--oversubscribe");
    for (int i = 0; i < xvar.n; i++) {
        sv_push(&cmd, "-x");
        sv_push(&cmd, xvar.v[i]);
    }
    sv_push(&cmd, self);
    for (int i = sep + 1; i < argc; i++)
        sv_push(&cmd, argv[i]);

    if (cmd.oom || env.oom || xvar.oom) {
        fprintf(stderr, "partita launch: out of memory\n");
        rc = CLI_EXIT_FAIL;
    } else if (dry_run) {
        for (int i = 0; i < env.n; i++) {
            put_assignment(stdout, env.v[i]);
            fputc(' ', stdout);
        }
        for (int i = 0; i < cmd.n; i++) {
            if (i) fputc(' ', stdout);
            put_shell_word(stdout, cmd.v[i]);
        }
        fputc('\n', stdout);
        rc = fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
    } else {
        rc = run_mpirun(cmd.v, &env, explicit_mpirun);
    }
    sv_free(&cmd);
    sv_free(&env);
    sv_free(&xvar);
    return rc;
}
